package transport

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"strings"

	"github.com/steward-sessions/steward/engine"
)

// signKeyMin is the smallest key Sign accepts, in bytes: the size of an
// HMAC-SHA256 output.
const signKeyMin = 32

// signMACSize is the size of the MAC Sign appends.
const signMACSize = sha256.Size

var (
	errSignShort = fmt.Errorf("%w (signed: shorter than a MAC)", ErrBadValue)
	errSignMAC   = fmt.Errorf("%w (signed: MAC mismatch)", ErrBadValue)
	errSignName  = fmt.Errorf("%w (signed: session name holds a NUL byte)", ErrBadValue)
)

// Sign returns a Transformer that authenticates a value with HMAC-SHA256,
// the counterpart of Ktor's SessionTransportTransformerMessageAuthentication.
// Use it when the client may read the value but must not change it: a
// server-side session ID (to reject forged IDs before any storage lookup),
// or a client-side value that holds no secret. For a client-side value that
// must also stay private, use Encrypt instead, which authenticates too:
// adding Sign to it gains nothing.
//
// The output is data || HMAC-SHA256(key, name || 0x00 || data): the MAC
// also covers the session's name, so a value signed for one session kind is
// refused by another. A session name holding a NUL byte would make that
// encoding ambiguous, so Transform refuses it and Untransform fails.
//
// The first key signs; every key verifies, in order, so that keys can be
// rotated: put the new key first and keep the old one after it until every
// value signed with it has expired, then drop it. Keys must be at least
// 32 random bytes (from crypto/rand, not a passphrase); an empty list, a shorter key or an
// all-zero key is a configuration error, reported by CheckTransformer and
// returned by every call. The keys are copied: the caller may reuse the
// slices. MACs are compared in constant time.
func Sign(keys ...[]byte) Transformer {
	if len(keys) == 0 {
		return configError("Sign: no key (give at least one key of %d or more random bytes)", signKeyMin)
	}
	var errs []error
	for i, k := range keys {
		switch {
		case len(k) < signKeyMin:
			errs = append(errs, fmt.Errorf("Sign: key %d is %d bytes; HMAC-SHA256 keys need at least %d random bytes", i, len(k), signKeyMin))
		case allZero(k):
			errs = append(errs, fmt.Errorf("Sign: key %d is all zero bytes (was it ever filled?)", i))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return configError("%v", err)
	}
	s := &signer{macs: make([]*hasherPool, len(keys))}
	for i, k := range copyKeys(keys) {
		s.macs[i] = newHasherPool(func() hash.Hash { return hmac.New(sha256.New, k) })
	}
	return s
}

// signer is the Transformer of Sign.
type signer struct {
	macs []*hasherPool // one per key, the signing key first
}

func (s *signer) configErr() error { return nil }

// Transform implements Transformer.
func (s *signer) Transform(name string, data []byte) ([]byte, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return nil, fmt.Errorf("%w: transport: Sign: session name %q holds a NUL byte", engine.ErrConfig, name)
	}
	out := make([]byte, len(data), len(data)+signMACSize)
	copy(out, data)
	h := s.macs[0].get()
	writeSigned(h, name, data)
	out = h.h.Sum(out)
	s.macs[0].put(h)
	return out, nil
}

// Untransform implements Transformer.
func (s *signer) Untransform(name string, data []byte) ([]byte, error) {
	if len(data) < signMACSize {
		return nil, errSignShort
	}
	if strings.IndexByte(name, 0) >= 0 {
		return nil, errSignName
	}
	msg, mac := data[:len(data)-signMACSize], data[len(data)-signMACSize:]
	for _, p := range s.macs {
		h := p.get()
		writeSigned(h, name, msg)
		ok := hmac.Equal(h.h.Sum(h.sum[:0]), mac)
		p.put(h)
		if ok {
			return bytes.Clone(msg), nil
		}
	}
	return nil, errSignMAC
}

// writeSigned writes what Sign authenticates, name || 0x00 || data, to h.
func writeSigned(h *hasher, name string, data []byte) {
	h.scratch = append(h.scratch[:0], name...)
	h.scratch = append(h.scratch, 0)
	h.h.Write(h.scratch)
	h.h.Write(data)
}
