package transport

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
)

var (
	errDigestShort = fmt.Errorf("%w (digest: shorter than a digest)", ErrBadValue)
	errDigestSum   = fmt.Errorf("%w (digest: mismatch)", ErrBadValue)
)

// Digest returns a Transformer that appends a salted SHA-256 digest to a
// value, for parity with Ktor's SessionTransportTransformerDigest (removed
// in Ktor 2.0): the output is data || SHA-256(salt || data).
//
// INTEGRITY ONLY, NOT SECURITY. Digest detects accidental corruption (a
// truncated or mangled cookie), not tampering: the salt is not a key, it
// is as good as public, and anyone who knows or guesses it can change the
// value and recompute the digest. Never use Digest alone for a client-side
// session; use Encrypt (or Sign if the value may be readable). It is here
// for applications migrating from Ktor 1.x, or to checksum a value that is
// already authenticated by other means.
//
// The salt may be empty (nil included); it only separates the digests of
// applications that use different salts. It is copied. Digest has no
// configuration error.
func Digest(salt []byte) Transformer {
	return &digester{salt: bytes.Clone(salt), hashes: newHasherPool(sha256.New)}
}

// digester is the Transformer of Digest.
type digester struct {
	salt   []byte
	hashes *hasherPool
}

func (d *digester) configErr() error { return nil }

// Transform implements Transformer.
func (d *digester) Transform(_ string, data []byte) ([]byte, error) {
	out := make([]byte, len(data), len(data)+sha256.Size)
	copy(out, data)
	h := d.hashes.get()
	h.h.Write(d.salt)
	h.h.Write(data)
	out = h.h.Sum(out)
	d.hashes.put(h)
	return out, nil
}

// Untransform implements Transformer.
func (d *digester) Untransform(_ string, data []byte) ([]byte, error) {
	if len(data) < sha256.Size {
		return nil, errDigestShort
	}
	msg, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	h := d.hashes.get()
	h.h.Write(d.salt)
	h.h.Write(msg)
	ok := subtle.ConstantTimeCompare(h.h.Sum(h.sum[:0]), sum) == 1
	d.hashes.put(h)
	if !ok {
		return nil, errDigestSum
	}
	return bytes.Clone(msg), nil
}
