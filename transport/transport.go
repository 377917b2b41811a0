package transport

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"reflect"
	"strings"
	"time"

	"github.com/steward-sessions/steward/engine"
)

// Transport carries a session ID between client and server, as Ktor's
// SessionTransport does. The cookie and header transports (see Cookie and
// Header) implement it; implement it yourself to carry IDs some other way
// and bind it to a kind with Custom.
//
// The middleware calls the methods of one Transport from many requests at
// once, so an implementation must be safe for concurrent use. It calls Send
// and Clear at most once per request, before the response headers are
// written: they must only set response headers (w.Header()), never write
// the status or the body.
type Transport interface {
	// Receive returns the session ID the request carries, "" for none. It
	// may return anything the client sent: the engine drops a malformed
	// ID, and never adopts an unknown one. It must not read the body.
	Receive(r *http.Request) string

	// Send gives the client id, a new or renewed session ID (or the
	// current one again, see Refresher).
	Send(w http.ResponseWriter, id string)

	// Clear removes the session ID from the client.
	Clear(w http.ResponseWriter)
}

// Refresher is implemented by a Transport whose ID carries an expiry on the
// client, such as a cookie with a Max-Age. The middleware finds it by type
// assertion when the Binding is made: if SendsOnRefresh returns true, the ID
// is sent again whenever the session's expiry moved forward on the server
// (engine.Outcome.Refreshed), so that the client's copy does not expire
// before the session does. A Transport that is not a Refresher sends the ID
// only when it changed.
type Refresher interface {
	SendsOnRefresh() bool
}

// ExpirySender is implemented by a Transport that can tell the client when
// the session it sends expires, such as a cookie (Max-Age). The middleware
// uses it for a session given its own lifetime (engine.Kind.SetLifetime:
// remember-me), whose Outcome carries Expires, in place of Send; such an
// ID is also sent again whenever its expiry is refreshed.
type ExpirySender interface {
	SendUntil(w http.ResponseWriter, id string, expires time.Time)
}

// Kind is a registered session kind, as given to Cookie, Header and Custom.
// Both *engine.Kind[T] and *engine.RawKind implement it.
type Kind interface {
	Raw() *engine.RawKind
}

// Binding ties one session kind to one Transport. Make it with Cookie,
// Header or Custom and give it to Middleware. A Binding that was made with
// a bad configuration holds the error, which Middleware reports; the zero
// Binding is not valid.
type Binding struct {
	kind      *engine.RawKind
	transport Transport
	refresh   bool    // the transport sends the ID again when its expiry moved
	vary      string  // the request header the ID is read from, for Vary; "" if unknown (Custom)
	slot      string  // where on the wire the ID travels, "" if unknown
	client    bool    // the kind is client-side: the value travels
	seal      *sealer // the transformers; nil for a plain server-side ID
	err       error
}

// Custom binds kind k to the user-written Transport t, with transformers ts
// applied to what it carries (see Cookie). If t is a Refresher, its
// SendsOnRefresh is asked once, here. What Receive returns and Send is
// given is then base64url text of at most MaxValueLen bytes.
func Custom(k Kind, t Transport, ts ...Transformer) Binding {
	raw, err := rawOf(k)
	if err != nil {
		return Binding{err: err}
	}
	if isNil(t) {
		return Binding{err: fmt.Errorf("%w: transport: nil Transport for session %q", engine.ErrConfig, raw.Name())}
	}
	b := Binding{kind: raw, transport: t}
	if r, ok := t.(Refresher); ok {
		b.refresh = r.SendsOnRefresh()
	}
	return b.withTransformers(ts, 0)
}

// rawOf returns k's RawKind, or a configuration error for a nil kind.
func rawOf(k Kind) (*engine.RawKind, error) {
	if isNil(k) {
		return nil, fmt.Errorf("%w: transport: nil session kind", engine.ErrConfig)
	}
	raw := k.Raw()
	if raw == nil {
		return nil, fmt.Errorf("%w: transport: nil session kind", engine.ErrConfig)
	}
	return raw, nil
}

// isNil reports whether v is nil or holds a nil pointer, so that a nil
// *engine.Kind[T] is reported instead of panicking in its Raw method.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return rv.IsNil()
	}
	return false
}

// checkBindings returns the configuration errors of bs, joined.
func checkBindings(bs []Binding) error {
	if len(bs) == 0 {
		return fmt.Errorf("%w: transport: Middleware needs at least one Binding", engine.ErrConfig)
	}
	var errs []error
	kinds := make(map[*engine.RawKind]bool, len(bs))
	slots := make(map[string]string, len(bs))
	for i, b := range bs {
		switch {
		case b.err != nil:
			errs = append(errs, b.err)
			continue
		case b.kind == nil || b.transport == nil:
			errs = append(errs, fmt.Errorf("%w: transport: binding %d is the zero Binding (make it with Cookie, Header or Custom)", engine.ErrConfig, i))
			continue
		}
		name := b.kind.Name()
		if kinds[b.kind] {
			errs = append(errs, fmt.Errorf("%w: transport: session %q is bound twice", engine.ErrConfig, name))
		}
		kinds[b.kind] = true
		if b.slot == "" {
			continue
		}
		if other, dup := slots[b.slot]; dup {
			errs = append(errs, fmt.Errorf("%w: transport: sessions %q and %q would travel in the same %s", engine.ErrConfig, other, name, b.slot))
		}
		slots[b.slot] = name
	}
	return errors.Join(errs...)
}

// addToken adds token to the comma-separated list header key of h, unless
// it is already listed (compared case-insensitively) or, for Vary, "*" is.
func addToken(h http.Header, key, token string) {
	for _, line := range h[key] {
		for part := range strings.SplitSeq(line, ",") {
			p := textproto.TrimString(part)
			if strings.EqualFold(p, token) || (p == "*" && key == "Vary") {
				return
			}
		}
	}
	h[key] = append(h[key], token)
}

// isToken reports whether s is a non-empty RFC 9110 token, the syntax of
// header and cookie names.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
