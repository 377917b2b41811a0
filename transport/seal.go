package transport

import (
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

// MaxValueLen is the most bytes a cookie (its whole Set-Cookie line: name,
// value and attributes) or a header value may take when it carries a
// transformed session ID or a client-side session value. 4096 bytes is what
// every browser keeps of a cookie.
const MaxValueLen = 4096

// ErrTooLarge is returned by a write to a client-side session whose sealed
// value would not fit in MaxValueLen bytes. Nothing is sent: keep the value
// smaller, or move the kind to a server-side storage.
var ErrTooLarge = fmt.Errorf("transport: session value too large: over the %d-byte limit of a cookie", MaxValueLen)

// errTooLong is the reading-side twin of ErrTooLarge.
var errTooLong = errors.New("transport: session value longer than any we send")

// wire is base64url without padding, in its one canonical form; its
// alphabet is the session ID alphabet, so wire values need no escaping in a
// cookie or a header.
var wire = base64.RawURLEncoding.Strict()

// validWire reports whether s could be a value this package sent: 1 to max
// bytes of the session ID alphabet.
func validWire(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i += storage.MaxIDLen {
		if !storage.ValidID(s[i:min(i+storage.MaxIDLen, len(s))]) {
			return false
		}
	}
	return true
}

// sealer carries what travels through one Binding's transformers: it
// implements engine.Sealer for client-side kinds and seals session IDs for
// server-side kinds with transformers.
type sealer struct {
	name     string        // the kind's name, the transformers' associated data
	ts       []Transformer // applied in order on write
	overhead int           // bytes the transport adds around the value (cookie name and attributes)
}

// Open implements engine.Sealer.
func (s *sealer) Open(v string) ([]byte, error) {
	if len(v)+s.overhead > MaxValueLen {
		return nil, errTooLong
	}
	raw, err := wire.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64url: %v", ErrBadValue, err)
	}
	return untransformChain(s.ts, s.name, raw)
}

// Seal implements engine.Sealer.
func (s *sealer) Seal(payload []byte) (string, error) {
	out, err := transformChain(s.ts, s.name, payload)
	if err != nil {
		return "", err
	}
	if wire.EncodedLen(len(out))+s.overhead > MaxValueLen {
		return "", ErrTooLarge
	}
	return wire.EncodeToString(out), nil
}

// openID turns what the client sent into a session ID, "" if it does not
// verify.
func (s *sealer) openID(v string) string {
	if v == "" {
		return ""
	}
	raw, err := s.Open(v)
	if err != nil || !storage.ValidID(string(raw)) {
		return ""
	}
	return string(raw)
}

// Authenticator is implemented by a user-written Transformer that makes a
// forged value fail to verify (a MAC or an AEAD of its own) and says so:
// a client-side binding needs Sign, Encrypt or such a Transformer.
type Authenticator interface {
	Authenticates() bool
}

// authenticates reports whether t makes a forged value fail to verify:
// Sign and Encrypt do, Digest does not, and a user-written Transformer
// does if it is an Authenticator that says so.
func authenticates(t Transformer) bool {
	switch t := t.(type) {
	case *signer, *encrypter:
		return true
	case *chain:
		return authenticatesAny(t.ts)
	case Authenticator:
		return t.Authenticates()
	}
	return false
}

func authenticatesAny(ts []Transformer) bool {
	for _, t := range ts {
		if authenticates(t) {
			return true
		}
	}
	return false
}

// withTransformers completes b, made by Cookie, Header or Custom, with its
// transformers, and checks what they can carry.
func (b Binding) withTransformers(ts []Transformer, overhead int) Binding {
	if b.err != nil {
		return b
	}
	if err := checkChain(ts); err != nil {
		b.err = err
		return b
	}
	b.client = b.kind.ClientSide()
	if b.client && !authenticatesAny(ts) {
		b.err = fmt.Errorf("%w: transport: session %q is client-side: its value travels to the client and needs Encrypt or Sign (or an Authenticator) among its transformers", engine.ErrConfig, b.kind.Name())
		return b
	}
	if b.client || len(ts) > 0 {
		b.seal = &sealer{name: b.kind.Name(), ts: append([]Transformer(nil), ts...), overhead: overhead}
	}
	return b
}
