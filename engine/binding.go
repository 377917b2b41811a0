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
// the first operation does. A Binding is safe for concurrent use: its lock
// is held only to read or record its own state, never while an operation
// waits or user code runs, so an update function may call ID or write the
// response (which takes Outcome).
type Binding struct {
	kind *RawKind
	// updating counts the updates of this binding on their way, so that an
	// operation asked from inside one's function is refused (ErrReentrant)
	// instead of waiting for itself.
	updating atomic.Int32

	mu        sync.Mutex // protects the fields below; never held across an operation
	incoming  bool       // the request carried an ID (well-formed or not)
	id        string     // the current ID, "" for none
	changed   bool       // id is new to the client: send it
	cleared   bool       // the client's ID must go
	refreshed bool       // the session's expiry moved forward
	read      bool       // an operation other than Clear ran: the response may depend on the session
	sealed    bool       // Outcome was taken
	// creating is closed when the session being created under newID (a
	// first write of a request that had none) is created or not; nil when
	// no creation is on its way. Other operations of the binding wait.
	creating chan struct{}
	newID    string

	// Client-side kinds only.
	sealer  Sealer
	turn    chan struct{} // one client-side write at a time; made on first use
	wire    string        // what the client sent, until opened; then what to send
	opened  bool          // wire was opened
	value   []byte        // the current value, nil for none
	created int64         // when the session was created, Unix ns
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
	// Read says the request looked at its session: some operation other
	// than Clear ran (Get, Set, Update, GetOrSet, Renew, or Kind.ID), found
	// a session or not. The response may then depend on what the request
	// carried, and a transport marks it so for caches (Vary), whether or
	// not anything is sent.
	Read bool
}

// Bind starts a Binding for a request that carried incoming ("" for none).
// A malformed incoming ID is dropped here: the request has no session.
func (k *RawKind) Bind(incoming string) *Binding {
	b := &Binding{kind: k, incoming: incoming != ""}
	if storage.ValidID(incoming) {
		b.id = incoming
	}
	return b
}

// Kind returns the kind the Binding belongs to.
func (b *Binding) Kind() *RawKind { return b.kind }

// ID returns the request's current session ID, "" if it has none known to
// be valid yet. An incoming ID is returned before any operation confirmed
// it exists.
func (b *Binding) ID() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.id
}

// readID is ID for a request's handler (Kind.ID): the response may depend
// on the ID, so the Outcome says Read.
func (b *Binding) readID() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.read = true
	return b.id
}

// Outcome returns what the transport must send, and seals the Binding:
// changes made afterwards cannot reach the client and are logged. Taken
// while the request's first write is creating its session (from inside
// the update function, say), it sends the ID being created.
func (b *Binding) Outcome() Outcome {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sealed = true
	o := Outcome{ID: b.id, Changed: b.changed, Cleared: b.cleared, Refreshed: b.refreshed, Read: b.read}
	if b.creating != nil {
		o.ID, o.Changed, o.Cleared = b.newID, true, false
	}
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

// reentrant reports whether the caller is inside one of this binding's
// update functions (the stack is looked at only while an update of the
// binding is on its way).
func (b *Binding) reentrant() bool {
	return b.updating.Load() > 0 && actors.InUpdate()
}

// currentIDLocked returns the binding's ID once no creation is on its way,
// waiting for one (with b.mu released) if needed.
func (b *Binding) currentIDLocked(ctx context.Context) (string, error) {
	for b.creating != nil {
		ch := b.creating
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			b.mu.Lock()
			return "", ctx.Err()
		}
		b.mu.Lock()
	}
	return b.id, nil
}

// observeLocked records what an operation's result says about the ID.
func (b *Binding) observeLocked(res actors.Result) {
	if res.Status != actors.OK {
		return
	}
	if res.ID != "" && res.ID != b.id && res.Found {
		// Reached through a renewed ID, or a new session: the client must
		// learn the current ID.
		b.id = res.ID
		b.changed, b.cleared = true, false
		b.lateLocked("ID changed")
	}
	if res.Refreshed {
		b.refreshed = true
	}
}

// get reads the request's session.
func (b *Binding) get(ctx context.Context) actors.Result {
	if b.reentrant() {
		return actors.Result{Status: actors.Reentrant}
	}
	b.mu.Lock()
	b.read = true
	if b.sealer != nil {
		defer b.mu.Unlock()
		b.openLocked()
		return actors.Result{Value: actors.Value{Data: b.value}, Found: b.value != nil}
	}
	id, err := b.currentIDLocked(ctx)
	b.mu.Unlock()
	if err != nil {
		return actors.Result{Status: actors.Canceled, Err: err}
	}
	if id == "" {
		return actors.Result{}
	}
	res := b.kind.do(ctx, id, &actors.Op{Code: actors.OpGet})
	b.mu.Lock()
	defer b.mu.Unlock()
	if res.Status == actors.OK && !res.Found && b.id == id {
		b.id = "" // unknown or expired: the client's ID is not ours
	}
	b.observeLocked(res)
	return res
}

// update runs op, an OpUpdate with its Fn set, on the request's session,
// creating the session under a new server-generated ID when the request
// has none (an unknown incoming ID is not adopted). op is reused for the
// creation.
func (b *Binding) update(ctx context.Context, op *actors.Op) actors.Result {
	if b.reentrant() {
		return actors.Result{Status: actors.Reentrant}
	}
	// While an update of this binding is on its way, an operation of the
	// binding looks at its stack to see whether it comes from inside.
	b.updating.Add(1)
	defer b.updating.Add(-1)
	if b.sealer != nil {
		return b.clientUpdate(ctx, op.Fn)
	}
	return b.serverUpdate(ctx, op)
}

func (b *Binding) serverUpdate(ctx context.Context, op *actors.Op) actors.Result {
	b.mu.Lock()
	b.read = true
	id, err := b.currentIDLocked(ctx)
	b.mu.Unlock()
	if err != nil {
		return actors.Result{Status: actors.Canceled, Err: err}
	}
	if id != "" {
		op.Fresh, op.MustExist = false, true
		res := b.kind.do(ctx, id, op)
		if res.Status != actors.OK || res.Found {
			b.mu.Lock()
			b.observeLocked(res)
			b.mu.Unlock()
			return res
		}
	}
	return b.create(ctx, id, op)
}

// create runs op on a new session for a request whose ID was found to
// have none (stale: "" or that ID).
func (b *Binding) create(ctx context.Context, stale string, op *actors.Op) actors.Result {
	newID, err := b.kind.kind.NewID()
	if err != nil {
		return actors.Result{Status: actors.FnFailed, Err: err}
	}
	b.mu.Lock()
	if _, err := b.currentIDLocked(ctx); err != nil {
		b.mu.Unlock()
		return actors.Result{Status: actors.Canceled, Err: err}
	}
	if b.id != stale {
		// Another operation of this request changed the ID meanwhile: act
		// on that.
		b.mu.Unlock()
		return b.serverUpdate(ctx, op)
	}
	done := make(chan struct{})
	b.creating, b.newID = done, newID
	b.mu.Unlock()
	op.Fresh, op.MustExist = true, false
	res := b.kind.do(ctx, newID, op)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.creating, b.newID = nil, ""
	close(done)
	if res.Status == actors.OK && res.Found {
		b.id = ""
		b.observeLocked(res)
	}
	return res
}

// clear ends the request's session and makes the transport remove the
// client's ID.
func (b *Binding) clear(ctx context.Context) error {
	if b.reentrant() {
		return ErrReentrant
	}
	b.mu.Lock()
	if b.sealer != nil {
		defer b.mu.Unlock()
		b.openLocked()
		if b.incoming || b.changed || b.value != nil {
			b.cleared = true
			b.lateLocked("cleared")
		}
		b.value, b.changed, b.wire = nil, false, ""
		return nil
	}
	id, err := b.currentIDLocked(ctx)
	b.mu.Unlock()
	if err != nil {
		return err
	}
	if id != "" {
		if err := errOf(b.kind.do(ctx, id, &actors.Op{Code: actors.OpInvalidate})); err != nil {
			return err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.incoming || b.changed || b.id != "" {
		b.cleared = true
		b.lateLocked("cleared")
	}
	b.id = ""
	b.changed, b.refreshed = false, false
	return nil
}

// renew moves the request's session to a new ID.
func (b *Binding) renew(ctx context.Context) error {
	if b.reentrant() {
		return ErrReentrant
	}
	if b.sealer != nil {
		// A client-side session has no ID to fixate; renewing seals the
		// value again (a fresh nonce under encryption).
		return errOf(b.clientUpdate(ctx, actors.UpdateFunc(func(cur actors.Value, exists bool) (actors.Value, bool, error) {
			if !exists {
				return actors.Value{}, false, ErrNoSession
			}
			return cur, true, nil
		})))
	}
	b.mu.Lock()
	b.read = true
	id, err := b.currentIDLocked(ctx)
	b.mu.Unlock()
	if err != nil {
		return err
	}
	if id == "" {
		return ErrNoSession
	}
	res := b.kind.do(ctx, id, &actors.Op{Code: actors.OpRenew})
	if err := errOf(res); err != nil {
		return err
	}
	if !res.Found {
		return ErrNoSession
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.observeLocked(res)
	return nil
}

type bindingsKey struct{}

// WithBindings returns a copy of ctx that carries bs, where the
// request-level operations of their kinds find them. Transports call it
// once per request.
func WithBindings(ctx context.Context, bs ...*Binding) context.Context {
	switch prev := ctx.Value(bindingsKey{}).(type) {
	case *Binding:
		bs = append([]*Binding{prev}, bs...)
	case []*Binding:
		bs = append(append([]*Binding(nil), prev...), bs...)
	}
	if len(bs) == 1 {
		// The common case, one kind: a pointer boxes without allocating.
		return context.WithValue(ctx, bindingsKey{}, bs[0])
	}
	return context.WithValue(ctx, bindingsKey{}, bs)
}

// BindingOf returns the Binding of kind k in ctx, or nil.
func BindingOf(ctx context.Context, k *RawKind) *Binding {
	switch v := ctx.Value(bindingsKey{}).(type) {
	case *Binding:
		if v.kind == k {
			return v
		}
	case []*Binding:
		for i := len(v) - 1; i >= 0; i-- {
			if v[i].kind == k {
				return v[i]
			}
		}
	}
	return nil
}
