package transport

import (
	"io"
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
// WriteHeader with a final status, its first Write, a Flush, or its return
// if it wrote nothing) the middleware asks each binding what to send: a
// cleared session is removed from the client, a new or renewed ID is sent,
// and a refreshed expiry is sent again by transports that are Refreshers.
// Nothing is sent otherwise. Session changes made after that point cannot
// reach the client; the engine logs them.
//
// The ResponseWriter handed to the handler implements http.Flusher and
// io.ReaderFrom, and has an Unwrap method, so http.ResponseController
// reaches the underlying writer's other capabilities (Hijack, deadlines).
// Handlers must write the response through it: headers written directly to
// an unwrapped writer do not carry the session.
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
}

// apply sends what each binding's outcome asks for, once.
func (w *responseWriter) apply() {
	w.applied = true
	for i, b := range w.bs {
		o := b.Outcome()
		t := &w.h.bindings[i]
		switch {
		case o.Cleared:
			t.transport.Clear(w.ResponseWriter)
		case t.client:
			if o.Changed && o.Value != "" {
				t.transport.Send(w.ResponseWriter, o.Value)
			}
		case o.ID != "" && (o.Changed || o.Refreshed && t.refresh):
			id := o.ID
			if t.seal != nil {
				v, err := t.seal.Seal([]byte(id))
				if err != nil {
					t.kind.Logger().Error("transport: sealing a session ID", "kind", t.kind.Name(), "error", err)
					continue
				}
				id = v
			}
			t.transport.Send(w.ResponseWriter, id)
		}
	}
}

// Unwrap returns the underlying ResponseWriter, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

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
