package engine

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/steward-sessions/steward/actors"
	"github.com/steward-sessions/steward/storage"
)

// Binding ties one request to one session kind: the ID the request came
// with and what the request did to its session. Transports create one per
// request and kind with RawKind.Bind, put it in the request's context with
// WithBindings, and after the handler ran (or when the response headers are
// about to be written) read Outcome to know what to send back.
//
// Binding is lazy: creating one costs no actor and no storage read; only
// the first operation does. A Binding is safe for concurrent use, and its
// operations run one at a time.
type Binding struct {
	kind *RawKind

	idView atomic.Pointer[string] // a copy of id for ID, which does not lock
	in     string                 // the incoming ID if well-formed; never modified

	mu        sync.Mutex // protects the fields below and serializes operations
	incoming  bool       // the request carried an ID (well-formed or not)
	id        string     // the current ID, "" for none; set with setIDLocked
	changed   bool       // id is new to the client: send it
	cleared   bool       // the client's ID must go
	refreshed bool       // the session's expiry moved forward
	sealed    bool       // Outcome was taken

	// Client-side kinds only.
	sealer  Sealer
	wire    string // what the client sent, until opened; then what to send
	opened  bool   // wire was opened
	value   []byte // the current value, nil for none
	created int64  // when the session was created, Unix ns
}

// Outcome says what a transport must send back for a Binding.
type Outcome struct {
	// ID is the session's current ID, "" if the request has no session
	// (always "" for a client-side kind).
	ID string
	// Value is, for a client-side kind whose value changed, the sealed
	// value to send.
	Value string
	// Changed says ID is new to the client (first set, renewal, or the
	// client used an ID that was renewed): it must be sent.
	Changed bool
	// Cleared says the client's ID must be removed (cookie expired, header
	// sent empty). Changed and Cleared are never both true.
	Cleared bool
	// Refreshed says the session's expiry moved forward: a transport that
	// carries an expiry (a cookie with Max-Age) should send ID again.
	Refreshed bool
}

// Bind starts a Binding for a request that carried incoming ("" for none).
// A malformed incoming ID is dropped here: the request has no session.
func (k *RawKind) Bind(incoming string) *Binding {
	b := &Binding{kind: k, incoming: incoming != ""}
	if storage.ValidID(incoming) {
		// No allocation for the common case: the view points into b, at a
		// field that never changes.
		b.id, b.in = incoming, incoming
		b.idView.Store(&b.in)
	}
	return b
}

// Kind returns the kind the Binding belongs to.
func (b *Binding) Kind() *RawKind { return b.kind }

// ID returns the request's current session ID, "" if it has none known to
// be valid yet. An incoming ID is returned before any operation confirmed
// it exists.
func (b *Binding) ID() string {
	if p := b.idView.Load(); p != nil {
		return *p
	}
	return ""
}

// setIDLocked changes the current ID. ID reads a copy without b.mu, so
// that an update function may call it while its operation holds b.mu.
func (b *Binding) setIDLocked(id string) {
	b.id = id
	b.idView.Store(&id)
}

// Outcome returns what the transport must send, and seals the Binding:
// changes made afterwards cannot reach the client and are logged.
func (b *Binding) Outcome() Outcome {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sealed = true
	o := Outcome{ID: b.id, Changed: b.changed, Cleared: b.cleared, Refreshed: b.refreshed}
	if b.sealer != nil && b.changed {
		o.Value = b.wire
	}
	return o
}

// lateLocked logs a change that can no longer reach the client.
func (b *Binding) lateLocked(what string) {
	if b.sealed {
		b.kind.eng.log.Warn("engine: session "+what+" after the response headers were sent; the client will not see it",
			"kind", b.kind.Name())
	}
}

// observeLocked records what an operation's result says about the ID.
func (b *Binding) observeLocked(res actors.Result) {
	if res.Err != nil {
		return
	}
	if res.ID != "" && res.ID != b.id && res.Found {
		// Reached through a renewed ID, or a new session: the client must
		// learn the current ID.
		b.setIDLocked(res.ID)
		b.changed, b.cleared = true, false
		b.lateLocked("ID changed")
	}
	if res.Refreshed {
		b.refreshed = true
	}
}

// get reads the request's session.
func (b *Binding) get(ctx context.Context) actors.Result {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sealer != nil {
		b.openLocked()
		return actors.Result{Value: b.value, Found: b.value != nil}
	}
	if b.id == "" {
		return actors.Result{}
	}
	res := b.kind.do(ctx, b.id, &actors.Op{Code: actors.OpGet})
	if res.Err == nil && !res.Found {
		b.setIDLocked("") // unknown or expired: the client's ID is not ours
	}
	b.observeLocked(res)
	return res
}

// update runs fn on the request's session, creating the session under a
// new server-generated ID when the request has none (an unknown incoming ID
// is not adopted).
func (b *Binding) update(ctx context.Context, fn actors.UpdateFunc) actors.Result {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sealer != nil {
		if err := ctx.Err(); err != nil {
			return actors.Result{Err: err}
		}
		r := b.clientUpdateLocked(fn)
		return actors.Result{Value: r.value, Found: r.found, Err: r.err}
	}
	if b.id != "" {
		res := b.kind.do(ctx, b.id, &actors.Op{Code: actors.OpUpdate, MustExist: true, Fn: fn})
		if res.Err != nil || res.Found {
			b.observeLocked(res)
			return res
		}
	}
	res := b.kind.create(ctx, fn)
	if res.Err == nil && res.Found {
		b.setIDLocked("")
		b.observeLocked(res)
	}
	return res
}

// clear ends the request's session and makes the transport remove the
// client's ID.
func (b *Binding) clear(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sealer != nil {
		b.openLocked()
		if b.incoming || b.changed || b.value != nil {
			b.cleared = true
			b.lateLocked("cleared")
		}
		b.value, b.changed, b.wire = nil, false, ""
		return nil
	}
	if b.id != "" {
		if err := b.kind.do(ctx, b.id, &actors.Op{Code: actors.OpInvalidate}).Err; err != nil {
			return err
		}
	}
	if b.incoming || b.changed || b.id != "" {
		b.cleared = true
		b.lateLocked("cleared")
	}
	b.setIDLocked("")
	b.changed, b.refreshed = false, false
	return nil
}

// renew moves the request's session to a new ID.
func (b *Binding) renew(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sealer != nil {
		// A client-side session has no ID to fixate; renewing seals the
		// value again (a fresh nonce under encryption).
		b.openLocked()
		if b.value == nil {
			return ErrNoSession
		}
		return b.clientStoreLocked(b.value).err
	}
	if b.id == "" {
		return ErrNoSession
	}
	res := b.kind.do(ctx, b.id, &actors.Op{Code: actors.OpRenew})
	if res.Err != nil {
		return res.Err
	}
	if !res.Found {
		return ErrNoSession
	}
	b.observeLocked(res)
	return nil
}

type bindingsKey struct{}

// WithBindings returns a copy of ctx that carries bs, where the
// request-level operations of their kinds find them. Transports call it
// once per request.
func WithBindings(ctx context.Context, bs ...*Binding) context.Context {
	if prev, ok := ctx.Value(bindingsKey{}).([]*Binding); ok {
		bs = append(append([]*Binding(nil), prev...), bs...)
	}
	return context.WithValue(ctx, bindingsKey{}, bs)
}

// BindingOf returns the Binding of kind k in ctx, or nil.
func BindingOf(ctx context.Context, k *RawKind) *Binding {
	bs, _ := ctx.Value(bindingsKey{}).([]*Binding)
	for i := len(bs) - 1; i >= 0; i-- {
		if bs[i].kind == k {
			return bs[i]
		}
	}
	return nil
}
