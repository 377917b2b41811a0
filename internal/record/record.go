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
//	            2 a session value with an owner
//	bytes 2-9   creation time, Unix nanoseconds, big endian; for an alias,
//	            when the session was renewed
//	bytes 10-17 expiry time, Unix nanoseconds, big endian (0: none)
//	bytes 18-   the session value, or for an alias the Digest of the ID
//	            the session was renewed to; for an owned value, first one
//	            byte n (1-255) and the n bytes of the owner
//
// Version 2 (this one) stores sessions under the digest of their ID
// (Digest.StorageID) and aliases that hold a digest and their renewal
// time; version 1 stored them under the ID itself. Version 1 records and
// client-side values read as no session.
const (
	Version   = 2
	HeaderLen = 18

	typeValue = 0
	typeAlias = 1
	typeOwned = 2

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
}

// Encode frames r into a fresh slice.
// The payload always ends the slice. An Owner longer than MaxOwnerLen is
// cut to it (callers check it first).
func Encode(r Record) []byte {
	owner := r.Owner
	if r.Alias {
		owner = ""
	}
	if len(owner) > MaxOwnerLen {
		owner = owner[:MaxOwnerLen]
	}
	ext := 0
	if owner != "" {
		ext = 1 + len(owner)
	}
	b := make([]byte, HeaderLen+ext+len(r.Payload))
	b[0] = Version
	switch {
	case r.Alias:
		b[1] = typeAlias
	case owner != "":
		b[1] = typeOwned
		b[HeaderLen] = byte(len(owner))
		copy(b[HeaderLen+1:], owner)
	}
	binary.BigEndian.PutUint64(b[2:], uint64(r.Created))
	binary.BigEndian.PutUint64(b[10:], uint64(r.Expires))
	copy(b[HeaderLen+ext:], r.Payload)
	return b
}

// Decode parses b. The payload aliases b.
func Decode(b []byte) (Record, error) {
	if len(b) < HeaderLen || b[0] != Version || b[1] > typeOwned {
		return Record{}, ErrMalformed
	}
	r := Record{
		Alias:   b[1] == typeAlias,
		Created: int64(binary.BigEndian.Uint64(b[2:])),
		Expires: int64(binary.BigEndian.Uint64(b[10:])),
		Payload: b[HeaderLen:],
	}
	if b[1] == typeOwned {
		n := 0
		if len(r.Payload) > 0 {
			n = int(r.Payload[0])
		}
		if n == 0 || len(r.Payload) < 1+n {
			return Record{}, ErrMalformed
		}
		r.Owner, r.Payload = string(r.Payload[1:1+n]), r.Payload[1+n:]
	}
	if r.Created <= 0 || r.Expires < 0 || (r.Expires != 0 && r.Expires < r.Created) ||
		(r.Alias && len(r.Payload) != sha256.Size) {
		return Record{}, ErrMalformed
	}
	return r, nil
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
