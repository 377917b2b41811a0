package transport

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/steward-sessions/steward/engine"
)

// Middleware returns net/http middleware that carries the session IDs of
// the given bindings, the counterpart of installing Ktor's Sessions plugin.
// Configuration errors (those held in the bindings, a kind bound twice, two
// kinds sent in the same cookie or header, no binding at all) are reported
// here, joined, each wrapping engine.ErrConfig; the middleware is nil then.
//
// For each request the middleware reads every binding's incoming ID and
// puts one engine.Binding per kind in the request's context, where the
// kinds' methods (Get, Set, Update, Clear, Renew, ...) find them. This is
// lazy: a request that never touches a session costs no actor and no
// storage read, and gets no Set-Cookie.
//
// Just before the response headers are written (the handler's first
// WriteHeader with a final status or 101, its first Write, a Flush, a
// Hijack, or its return if it wrote nothing) the middleware asks each
// binding what to send: a cleared session is removed from the client, a
// new or renewed ID is sent, and a refreshed expiry is sent again by
// transports that are Refreshers. Nothing is sent otherwise. Session
// changes made after that point cannot reach the client; the engine logs
// them. A response whose handler looked at a session (engine.Outcome.Read)
// is marked "Vary: Cookie", or "Vary: <name>" for a header, whether or not
// anything is sent; see "Caches" in the package documentation.
//
// The ResponseWriter handed to the handler passes on the optional
// interfaces of the writer it wraps: http.Flusher (with FlushError, the
// method http.ResponseController calls), http.Hijacker, http.Pusher,
// io.ReaderFrom and io.StringWriter. Hijack and Push return an error
// wrapping http.ErrNotSupported when no writer underneath can do it. Its
// Unwrap method lets http.ResponseController set deadlines and enable full
// duplex, and lets code that looks for other interfaces find them; see
// "Hijacking and other interfaces" in the package documentation. Handlers
// must write the response through it: headers written directly to an
// unwrapped writer do not carry the session.
//
// Wrapping a nil handler panics.
func Middleware(bindings ...Binding) (func(http.Handler) http.Handler, error) {
	if err := checkBindings(bindings); err != nil {
		return nil, err
	}
	bs := append([]Binding(nil), bindings...)
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("transport: Middleware applied to a nil http.Handler")
		}
		return &handler{next: next, bindings: bs}
	}, nil
}

// handler is the http.Handler that Middleware wraps around next.
type handler struct {
	next     http.Handler
	bindings []Binding // valid and read-only
}

// inlineBindings is how many bindings a request carries without an
// allocation beyond its responseWriter.
const inlineBindings = 2

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &responseWriter{ResponseWriter: w, h: h}
	bs := rw.inline[:0]
	if len(h.bindings) > len(rw.inline) {
		bs = make([]*engine.Binding, 0, len(h.bindings))
	}
	for i := range h.bindings {
		bs = append(bs, h.bindings[i].bind(r))
	}
	rw.bs = bs
	h.next.ServeHTTP(rw, r.WithContext(engine.WithBindings(r.Context(), bs...)))
	if !rw.applied {
		rw.apply()
	}
}

// responseWriter applies the bindings' outcomes just before the response
// headers are written.
type responseWriter struct {
	http.ResponseWriter
	h       *handler
	bs      []*engine.Binding // one per h.bindings, same order
	applied bool              // the outcomes were applied (or are being)
	inline  [inlineBindings]*engine.Binding
	vary    [1]string // the Vary line, when the middleware adds the first (see addVary)
}

// apply sends what each binding's outcome asks for, once.
func (w *responseWriter) apply() {
	w.applied = true
	for i, b := range w.bs {
		o := b.Outcome()
		t := &w.h.bindings[i]
		if o.Read && t.vary != "" {
			// Before Send and Clear, which then find the token listed.
			w.addVary(t.vary)
		}
		switch {
		case o.Cleared:
			t.transport.Clear(w.ResponseWriter)
		case t.client:
			if o.Changed && o.Value != "" {
				t.transport.Send(w.ResponseWriter, o.Value)
			}
		case o.ID != "" && (o.Changed || o.Refreshed && (t.refresh || !o.Expires.IsZero())):
			id := o.ID
			if t.seal != nil {
				v, err := t.seal.Seal([]byte(id))
				if err != nil {
					t.kind.Logger().Error("transport: sealing a session ID", "kind", t.kind.Name(), "error", err)
					continue
				}
				id = v
			}
			if es, ok := t.transport.(ExpirySender); ok && !o.Expires.IsZero() {
				es.SendUntil(w.ResponseWriter, id, o.Expires)
				continue
			}
			t.transport.Send(w.ResponseWriter, id)
		}
	}
}

// addVary adds token to the response's Vary header. A response that has
// none gets w.vary as its value, which spares an allocation on the common
// request that reads its session and sends nothing.
func (w *responseWriter) addVary(token string) {
	h := w.ResponseWriter.Header()
	if len(h["Vary"]) == 0 {
		w.vary[0] = token
		h["Vary"] = w.vary[:1:1] // full: an append copies it
		return
	}
	addToken(h, "Vary", token)
}

// Unwrap returns the underlying ResponseWriter, for http.ResponseController
// and for code that looks for an interface this writer does not pass on.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// find returns the first writer of w's Unwrap chain, w included, that
// implements T, the way http.ResponseController looks for its interfaces.
func find[T any](w http.ResponseWriter) (T, bool) {
	for {
		if t, ok := w.(T); ok {
			return t, true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			var zero T
			return zero, false
		}
		w = u.Unwrap()
	}
}

// Hijack implements http.Hijacker, for WebSocket upgrades and other
// protocols that take the connection over. It applies the sessions'
// outcomes to w.Header() (Set-Cookie, Vary, ...), then hijacks the first
// writer of the Unwrap chain that is an http.Hijacker. If there is none
// (HTTP/2, HTTP/3, a recorder) it applies nothing and returns an error
// wrapping http.ErrNotSupported.
//
// Once the connection is hijacked only the bytes written on it reach the
// client. If the handler called WriteHeader first (coder/websocket writes
// its 101 Switching Protocols so), net/http sends that status line and
// w.Header(), the session's headers included, as it hands the connection
// over. A handler that writes its own response on the connection must
// write the lines of w.Header(), read after Hijack returns, itself;
// gorilla/websocket does when Upgrade is given w.Header() as its
// responseHeader.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := find[http.Hijacker](w.ResponseWriter)
	if !ok {
		return nil, nil, fmt.Errorf("transport: the connection cannot be hijacked: %w", http.ErrNotSupported)
	}
	if !w.applied {
		w.apply()
	}
	return hj.Hijack()
}

// Push implements http.Pusher: it hands the push to the first writer of
// the Unwrap chain that is an http.Pusher (HTTP/2), or returns an error
// wrapping http.ErrNotSupported if there is none. The pushed request is
// served as a request of its own, through the middleware.
func (w *responseWriter) Push(target string, opts *http.PushOptions) error {
	p, ok := find[http.Pusher](w.ResponseWriter)
	if !ok {
		return fmt.Errorf("transport: the connection cannot push: %w", http.ErrNotSupported)
	}
	return p.Push(target, opts)
}

// WriteHeader implements http.ResponseWriter. Informational statuses
// (1xx, but 101 Switching Protocols which ends the exchange) pass through:
// the session headers go with the final status.
func (w *responseWriter) WriteHeader(code int) {
	if !w.applied && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.apply()
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.applied {
		w.apply()
	}
	return w.ResponseWriter.Write(p)
}

// WriteString implements io.StringWriter, sparing io.WriteString a copy.
func (w *responseWriter) WriteString(s string) (int, error) {
	if !w.applied {
		w.apply()
	}
	if sw, ok := w.ResponseWriter.(io.StringWriter); ok {
		return sw.WriteString(s)
	}
	return w.ResponseWriter.Write([]byte(s))
}

// ReadFrom implements io.ReaderFrom, so that io.Copy (and http.ServeContent)
// keep the underlying writer's sendfile path.
func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.applied {
		w.apply()
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, src)
}

// writerOnly hides every method of a writer but Write, so that io.Copy does
// not loop back into ReadFrom.
type writerOnly struct{ io.Writer }

// Flush implements http.Flusher.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError flushes the underlying writer and returns its error; it is the
// method http.ResponseController.Flush calls.
func (w *responseWriter) FlushError() error {
	if !w.applied {
		w.apply()
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// maxValues bounds the values of one session cookie or header that a
// request is searched for (see multiReceiver).
const maxValues = 128

// multiReceiver is implemented by the cookie and header transports: the
// first well-formed value, and all of them (at most maxValues) when there
// are several, so that a planted, forged or stale value never hides the
// valid one. Scanning for the first allocates nothing.
type multiReceiver interface {
	receiveAll(r *http.Request) (first string, all []string)
}

// bind makes the request's engine.Binding of b's kind. With several values
// under the kind's name, those that fail verification are skipped, and the
// engine keeps the first that has a session.
func (b *Binding) bind(r *http.Request) *engine.Binding {
	var in string
	var all []string
	if mr, ok := b.transport.(multiReceiver); ok {
		in, all = mr.receiveAll(r)
	} else {
		in = b.transport.Receive(r)
	}
	switch {
	case all != nil && b.client:
		return b.kind.BindClientCandidates(all, b.seal)
	case all != nil:
		ids := all[:0]
		for _, v := range all {
			if b.seal != nil {
				v = b.seal.openID(v)
			}
			if v != "" {
				ids = append(ids, v)
			}
		}
		return b.kind.BindCandidates(ids)
	case b.client:
		return b.kind.BindClient(in, b.seal)
	case b.seal != nil:
		return b.kind.Bind(b.seal.openID(in))
	}
	return b.kind.Bind(in)
}
