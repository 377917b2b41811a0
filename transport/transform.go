package transport

import (
	"bytes"
	"errors"
	"fmt"
	"hash"
	"sync"

	"github.com/steward-sessions/steward/engine"
)

// Transformer transforms the bytes a session sends to the client, the
// counterpart of Ktor's SessionTransportTransformer: a chain of them is
// applied in chain order on write, and undone in reverse order on read.
// Use [Encrypt] for client-side sessions (the value travels in the cookie),
// [Sign] when the value may be readable but must not be forged, and write
// your own to compress or re-encode.
//
// A Transformer is used from many requests at once, so an implementation
// must be safe for concurrent use.
type Transformer interface {
	// Transform returns a new slice; data is not modified. name is the
	// session's name.
	Transform(name string, data []byte) ([]byte, error)

	// Untransform undoes Transform. Any error means the input is not
	// trustworthy: the caller treats it as "no session". It must not
	// panic, whatever data holds, and must not modify data. The
	// transformers of this package return a new slice and wrap every
	// error in ErrBadValue.
	Untransform(name string, data []byte) ([]byte, error)
}

// ErrBadValue is wrapped by every Untransform failure of this package's
// transformers: a value that was tampered with, truncated, moved from
// another session name, or made under a key that is no longer configured.
// Treat it as "no session", never as a server error; test for it with
// errors.Is.
var ErrBadValue = errors.New("transport: session value failed verification")

// CheckTransformer returns the configuration error that t carries, wrapping
// engine.ErrConfig, or nil for a valid one. Sign, Encrypt and Chain return
// no error of their own: a bad configuration (a short key, say) is held in
// the Transformer they return, and every call of it fails. Call
// CheckTransformer at start-up, where a transport is configured, to fail
// there rather than on the first request. A user-written Transformer is
// assumed valid; a nil one is an error.
func CheckTransformer(t Transformer) error {
	if isNil(t) {
		return fmt.Errorf("%w: transport: nil Transformer", engine.ErrConfig)
	}
	if c, ok := t.(configChecker); ok {
		return c.configErr()
	}
	return nil
}

// configChecker is implemented by the transformers of this package.
type configChecker interface {
	configErr() error // the configuration error, wrapping engine.ErrConfig, or nil
}

// Chain returns a Transformer that applies ts in order on Transform and
// undoes them in reverse order on Untransform, as a transport does with the
// transformers it is given. Use it to hand several transformers to code
// that takes one. Its configuration error (see CheckTransformer) joins
// those of ts, and a nil element is one; an empty Chain copies the bytes.
// Errors from Untransform wrap ErrBadValue, whatever the elements return.
func Chain(ts ...Transformer) Transformer {
	c := &chain{ts: append([]Transformer(nil), ts...)}
	c.err = checkChain(c.ts)
	return c
}

type chain struct {
	ts  []Transformer
	err error // configuration error, or nil
}

func (c *chain) configErr() error { return c.err }

// Transform implements Transformer.
func (c *chain) Transform(name string, data []byte) ([]byte, error) {
	if c.err != nil {
		return nil, c.err
	}
	return transformChain(c.ts, name, data)
}

// Untransform implements Transformer.
func (c *chain) Untransform(name string, data []byte) ([]byte, error) {
	if c.err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadValue, c.err)
	}
	return untransformChain(c.ts, name, data)
}

// checkChain returns the configuration errors of ts, joined.
func checkChain(ts []Transformer) error {
	var errs []error
	for _, t := range ts {
		if err := CheckTransformer(t); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// transformChain applies ts to data in order. It returns a new slice, even
// for an empty chain, and never modifies data.
func transformChain(ts []Transformer, name string, data []byte) ([]byte, error) {
	if len(ts) == 0 {
		return bytes.Clone(data), nil
	}
	for _, t := range ts {
		if isNil(t) {
			return nil, fmt.Errorf("%w: transport: nil Transformer", engine.ErrConfig)
		}
		var err error
		if data, err = t.Transform(name, data); err != nil {
			return nil, err
		}
	}
	return data, nil
}

// untransformChain undoes ts on data in reverse order. Every error it
// returns wraps ErrBadValue, so that a user-written Transformer's error is
// also read as "no session".
func untransformChain(ts []Transformer, name string, data []byte) ([]byte, error) {
	if len(ts) == 0 {
		return bytes.Clone(data), nil
	}
	for i := len(ts) - 1; i >= 0; i-- {
		t := ts[i]
		if isNil(t) {
			return nil, fmt.Errorf("%w: %w: transport: nil Transformer", ErrBadValue, engine.ErrConfig)
		}
		var err error
		if data, err = t.Untransform(name, data); err != nil {
			if !errors.Is(err, ErrBadValue) {
				err = fmt.Errorf("%w: %w", ErrBadValue, err)
			}
			return nil, err
		}
	}
	return data, nil
}

// broken is the Transformer returned by a constructor given a bad
// configuration: every call fails with its error.
type broken struct{ err error }

func (b broken) configErr() error { return b.err }

// Transform implements Transformer: it returns the configuration error.
func (b broken) Transform(string, []byte) ([]byte, error) { return nil, b.err }

// Untransform implements Transformer: it returns the configuration error,
// also wrapping ErrBadValue.
func (b broken) Untransform(string, []byte) ([]byte, error) {
	return nil, fmt.Errorf("%w: %w", ErrBadValue, b.err)
}

// configError returns a broken Transformer whose error wraps
// engine.ErrConfig.
func configError(format string, args ...any) Transformer {
	return broken{fmt.Errorf("%w: transport: %s", engine.ErrConfig, fmt.Sprintf(format, args...))}
}

// copyKeys returns deep copies of keys, so that callers may reuse their
// slices.
func copyKeys(keys [][]byte) [][]byte {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = bytes.Clone(k)
	}
	return out
}

// allZero reports whether k holds only zero bytes, the mark of a key buffer
// that was never filled.
func allZero(k []byte) bool {
	for _, b := range k {
		if b != 0 {
			return false
		}
	}
	return true
}

// hasher is a pooled hash.Hash with room for a sum and a small scratch
// buffer, so that hashing allocates nothing in the steady state.
type hasher struct {
	h       hash.Hash
	sum     [64]byte // large enough for any sum we compute
	scratch []byte
}

// hasherPool pools hashers made by newHash.
type hasherPool struct{ p sync.Pool }

func newHasherPool(newHash func() hash.Hash) *hasherPool {
	hp := &hasherPool{}
	hp.p.New = func() any { return &hasher{h: newHash()} }
	return hp
}

// get returns a reset hasher; give it back with put.
func (hp *hasherPool) get() *hasher {
	h := hp.p.Get().(*hasher)
	h.h.Reset()
	return h
}

// maxScratch is the largest scratch buffer a pooled hasher keeps.
const maxScratch = 256

func (hp *hasherPool) put(h *hasher) {
	if cap(h.scratch) > maxScratch {
		h.scratch = nil
	}
	hp.p.Put(h)
}
