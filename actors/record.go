package actors

import (
	"encoding/binary"
	"errors"
	"time"
)

// The engine frames every stored value in a small record so that expiry and
// renewal survive passivation, restarts and any storage:
//
//	byte 0      format version (recordVersion)
//	byte 1      record type (recordValue or recordAlias)
//	bytes 2-9   creation time, Unix nanoseconds, big endian
//	bytes 10-17 expiry time, Unix nanoseconds, big endian (0: none)
//	bytes 18-   the session value (recordValue) or the ID it was renewed to (recordAlias)
const (
	recordVersion = 1
	recordValue   = 0
	recordAlias   = 1
	headerLen     = 18
)

var errBadRecord = errors.New("steward: malformed session record")

type record struct {
	alias   bool
	created int64 // Unix nanoseconds
	expires int64 // Unix nanoseconds, 0 for none
	payload []byte
}

func encodeRecord(r record) []byte {
	b := make([]byte, headerLen+len(r.payload))
	b[0] = recordVersion
	if r.alias {
		b[1] = recordAlias
	}
	binary.BigEndian.PutUint64(b[2:], uint64(r.created))
	binary.BigEndian.PutUint64(b[10:], uint64(r.expires))
	copy(b[headerLen:], r.payload)
	return b
}

// decodeRecord parses b. The payload aliases b.
func decodeRecord(b []byte) (record, error) {
	if len(b) < headerLen || b[0] != recordVersion || b[1] > recordAlias {
		return record{}, errBadRecord
	}
	r := record{
		alias:   b[1] == recordAlias,
		created: int64(binary.BigEndian.Uint64(b[2:])),
		expires: int64(binary.BigEndian.Uint64(b[10:])),
		payload: b[headerLen:],
	}
	if r.created <= 0 || r.expires < 0 {
		return record{}, errBadRecord
	}
	return r, nil
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
