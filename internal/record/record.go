// Package record holds the two rules that server-side and client-side
// sessions share: how a session value is framed with its metadata, and when
// a session expires. The session actors frame what they store with it; the
// engine frames what travels to the client with it.
package record

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// Every stored or sealed value is framed so that its age survives
// passivation, restarts, any storage and the round trip to a client:
//
//	byte 0      format version (Version)
//	byte 1      type: 0 a session value, 1 an alias (the ID it was renewed to),
//	            2 a session value with metadata, 3 the engine's own record
//	            (an owner's index), which is no session
//	bytes 2-9   creation time, Unix nanoseconds, big endian; for an alias,
//	            when the session was renewed
//	bytes 10-17 expiry time, Unix nanoseconds, big endian (0: none)
//	bytes 18-   the session value, or for an alias the Digest of the ID
//	            the session was renewed to; for a value with metadata,
//	            first a flags byte, then if flag 1: one byte n (1-255) and
//	            the n bytes of the owner; if flag 2: the session's own idle
//	            timeout and lifetime, nanoseconds, 8 bytes each (0: none)
//
// Version 2 (this one) stores sessions under the digest of their ID
// (Digest.StorageID) and aliases that hold a digest and their renewal
// time; version 1 stored them under the ID itself. Version 1 records and
// client-side values read as no session.
const (
	Version   = 2
	HeaderLen = 18

	typeValue  = 0
	typeAlias  = 1
	typeMeta   = 2
	typeIntern = 3

	flagOwner  = 1
	flagPolicy = 2

	// MaxOwnerLen is the longest owner a record holds, in bytes.
	MaxOwnerLen = 255
)

// ErrMalformed is returned by Decode for bytes that are not a record.
var ErrMalformed = errors.New("steward: malformed session record")

// Record is one framed session value.
type Record struct {
	// Alias says Payload is the Digest of the ID the session was renewed
	// to.
	Alias bool
	// Created is when the session was created, Unix nanoseconds (> 0);
	// for an alias, when it was renewed.
	Created int64
	// Expires is when it expires, Unix nanoseconds; 0 for never.
	Expires int64
	// Payload is the session value or, for an alias, the new ID.
	Payload []byte
	// Owner is who the session belongs to (a user ID), "" for nobody; at
	// most MaxOwnerLen bytes. Aliases have none.
	Owner string
	// Own, when not nil, is the session's own expiry policy, in place of
	// its kind's (remember-me). Aliases have none.
	Own *Policy
	// Intern says the record is the engine's own (an owner's index), not
	// a session; it carries nothing but its payload.
	Intern bool
}

// Encode frames r into a fresh slice.
// The payload always ends the slice. An Owner longer than MaxOwnerLen is
// cut to it (callers check it first).
func Encode(r Record) []byte {
	owner, own := r.Owner, r.Own
	if r.Alias || r.Intern {
		owner, own = "", nil
	}
	if len(owner) > MaxOwnerLen {
		owner = owner[:MaxOwnerLen]
	}
	ext, flags := 0, byte(0)
	if owner != "" {
		ext, flags = ext+1+len(owner), flags|flagOwner
	}
	if own != nil {
		ext, flags = ext+16, flags|flagPolicy
	}
	if flags != 0 {
		ext++
	}
	b := make([]byte, HeaderLen+ext+len(r.Payload))
	b[0] = Version
	switch {
	case r.Alias:
		b[1] = typeAlias
	case r.Intern:
		b[1] = typeIntern
	case flags != 0:
		b[1] = typeMeta
		m := b[HeaderLen:]
		m[0], m = flags, m[1:]
		if owner != "" {
			m[0] = byte(len(owner))
			m = m[1+copy(m[1:], owner):]
		}
		if own != nil {
			binary.BigEndian.PutUint64(m, uint64(own.Idle))
			binary.BigEndian.PutUint64(m[8:], uint64(own.Lifetime))
		}
	}
	binary.BigEndian.PutUint64(b[2:], uint64(r.Created))
	binary.BigEndian.PutUint64(b[10:], uint64(r.Expires))
	copy(b[HeaderLen+ext:], r.Payload)
	return b
}

// Decode parses b. The payload aliases b.
func Decode(b []byte) (Record, error) {
	if len(b) < HeaderLen || b[0] != Version || b[1] > typeIntern {
		return Record{}, ErrMalformed
	}
	r := Record{
		Alias:   b[1] == typeAlias,
		Intern:  b[1] == typeIntern,
		Created: int64(binary.BigEndian.Uint64(b[2:])),
		Expires: int64(binary.BigEndian.Uint64(b[10:])),
		Payload: b[HeaderLen:],
	}
	if b[1] == typeMeta {
		var ok bool
		if r, ok = decodeMeta(r); !ok {
			return Record{}, ErrMalformed
		}
	}
	if r.Created <= 0 || r.Expires < 0 || (r.Expires != 0 && r.Expires < r.Created) ||
		(r.Alias && len(r.Payload) != sha256.Size) {
		return Record{}, ErrMalformed
	}
	return r, nil
}

// decodeMeta reads the metadata at the start of r.Payload.
func decodeMeta(r Record) (Record, bool) {
	m := r.Payload
	if len(m) == 0 || m[0] == 0 || m[0]&^(flagOwner|flagPolicy) != 0 {
		return r, false
	}
	flags := m[0]
	m = m[1:]
	if flags&flagOwner != 0 {
		if len(m) == 0 {
			return r, false
		}
		n := int(m[0])
		if n == 0 || len(m) < 1+n {
			return r, false
		}
		r.Owner, m = string(m[1:1+n]), m[1+n:]
	}
	if flags&flagPolicy != 0 {
		if len(m) < 16 {
			return r, false
		}
		p := Policy{Idle: time.Duration(binary.BigEndian.Uint64(m)), Lifetime: time.Duration(binary.BigEndian.Uint64(m[8:]))}
		if p.Idle < 0 || p.Lifetime < 0 {
			return r, false
		}
		r.Own, m = &p, m[16:]
	}
	r.Payload = m
	return r, true
}

// Policy is a kind's expiry rule: a sliding idle timeout and an absolute
// lifetime, either 0 for none.
type Policy struct {
	Idle     time.Duration
	Lifetime time.Duration
}

// Expiry is the instant, Unix nanoseconds, at which a session created at
// created and last used at used expires: the sooner of its idle timeout and
// its lifetime; 0 for never.
func (p Policy) Expiry(created, used int64) int64 {
	var e int64
	if p.Idle > 0 {
		e = used + int64(p.Idle)
	}
	if p.Lifetime > 0 {
		if l := created + int64(p.Lifetime); e == 0 || l < e {
			e = l
		}
	}
	return e
}

// Touch is how far a session's sliding expiry may move before it is
// written again (to the storage, or by resealing a client-side value): a
// tenth of the idle timeout, at most a minute. A session in use thus costs
// one refresh per interval at most.
func (p Policy) Touch() time.Duration {
	t := time.Minute
	if p.Idle > 0 && p.Idle/10 < t {
		t = p.Idle / 10
	}
	return t
}

// Expired reports whether a session whose expiry is expires (0: never) has
// expired at now.
func Expired(expires, now int64) bool { return expires != 0 && now >= expires }

// Unix converts Unix nanoseconds to a time, 0 to the zero time (never).
func Unix(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Digest is how the engine knows a session inside and at rest: the SHA-256
// of its ID. The ID itself is a bearer secret that only travels to the
// client; storages, registries and logs see digests, so a directory listing
// or a key dump reveals no usable ID.
type Digest [sha256.Size]byte

// DigestOf returns the digest of session ID id.
func DigestOf(id string) Digest {
	// Session IDs are short (at most storage.MaxIDLen bytes): hash them
	// from the stack, without allocating.
	var buf [len(digestDomain) + 128]byte
	if len(id) > len(buf)-len(digestDomain) {
		return Digest(sha256.Sum256([]byte(digestDomain + id)))
	}
	n := copy(buf[:], digestDomain)
	n += copy(buf[n:], id)
	return Digest(sha256.Sum256(buf[:n]))
}

// digestDomain separates these digests from any other SHA-256 of an ID.
const digestDomain = "steward session id\x00"

// StorageID is the name a storage is given for the session: the digest in
// unpadded base64url, 43 characters of the storage ID alphabet.
func (d Digest) StorageID() string { return base64.RawURLEncoding.EncodeToString(d[:]) }

// ParseStorageID returns the digest whose StorageID is id, and false if id
// is no StorageID.
func ParseStorageID(id string) (Digest, bool) {
	var d Digest
	if base64.RawURLEncoding.EncodedLen(len(d)) != len(id) {
		return d, false
	}
	n, err := base64.RawURLEncoding.Decode(d[:], []byte(id))
	return d, err == nil && n == len(d) && d.StorageID() == id
}
