package engine

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/steward-sessions/steward/actors"
	"github.com/steward-sessions/steward/internal/record"
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
	// admitted is when the request began (the engine's clock, Unix ns):
	// only requests that began before a renewal reach the session through
	// the old ID.
	admitted int64
	// updating counts the updates of this binding on their way, so that an
	// operation asked from inside one's function is refused (ErrReentrant)
	// instead of waiting for itself.
	updating atomic.Int32

	mu        sync.Mutex    // protects the fields below; never held across an operation
	incoming  bool          // the request carried an ID (well-formed or not)
	id        string        // the current ID, "" for none
	d         record.Digest // the digest of id, once digested
	digested  bool          // d is id's
	confirmed bool          // an operation found id's session
	changed   bool          // id is new to the client: send it
	cleared   bool          // the client's ID must go
	refreshed bool          // the session's expiry moved forward
	read      bool          // an operation other than Clear ran: the response may depend on the session
	sealed    bool          // Outcome was taken
	expires   int64         // the session's own expiry (see Kind.SetLifetime), Unix ns; 0 for none known
	// creating is closed when the session being created under newID (a
	// first write of a request that had none) is created or not; nil when
	// no creation is on its way. Other operations of the binding wait.
	creating chan struct{}
	newID    string
	// candidates are the IDs of a request that carried several under the
	// kind's name, until the first operation picks the first that has a
	// session; resolving is closed when it has.
	candidates []string
	resolving  chan struct{}

	// Client-side kinds only.
	sealer    Sealer
	turn      chan struct{} // one client-side write at a time; made on first use
	wire      string        // what the client sent, until opened; then what to send
	opened    bool          // wire was opened
	value     []byte        // the current value, nil for none
	created   int64         // when the session was created, Unix ns
	sealedExp int64         // the expiry the client's copy carries, Unix ns
}

// Outcome says what a transport must send back for a Binding.
type Outcome struct {
	// ID is the session's current ID, "" if the request has no session
	// (always "" for a client-side kind).
	ID string
	// Value is, for a client-side kind whose value changed, the sealed
	// value to send.
	Value string
	// Changed says ID is new to the client (a session created, or renewed,
	// by this request): it must be sent.
	Changed bool
	// Cleared says the client's ID must be removed (cookie expired, header
	// sent empty): the request cleared its session, or came with an ID
	// that has none (unknown, expired, invalidated; not one renewed since
	// the request began, whose client may hold the new ID under the same
	// name). Changed and Cleared are never both true.
	Cleared bool
	// Refreshed says the session's expiry moved forward: a transport that
	// carries an expiry (a cookie with Max-Age) should send ID again.
	Refreshed bool
	// Expires is, for a session given its own lifetime (Kind.SetLifetime:
	// remember-me), when it expires as far as the request knows: a
	// transport that can carries it to the client (the cookie's Max-Age)
	// whenever it sends the ID, in place of its own configuration. Zero:
	// the session follows its kind, and the transport its configuration.
	Expires time.Time
	// Read says the request looked at its session: some operation other
	// than Clear ran (Get, Set, Update, GetOrSet, Renew, or Kind.ID), found
	// a session or not. The response may then depend on what the request
	// carried, and a transport marks it so for caches (Vary), whether or
	// not anything is sent.
	Read bool
}

// maxCandidates bounds the IDs of one request that are looked up (see
// BindCandidates).
const maxCandidates = 128

// Bind starts a Binding for a request that carried incoming ("" for none).
// A malformed incoming ID is dropped here: the request has no session.
func (k *RawKind) Bind(incoming string) *Binding {
	b := &Binding{kind: k, incoming: incoming != "", admitted: k.eng.now().UnixNano()}
	if storage.ValidID(incoming) {
		b.id = incoming
	}
	return b
}

// BindCandidates starts a Binding for a request that carried several IDs
// for the kind (several cookies of one name: a sibling domain may have
// planted one). The first operation looks them up in order and keeps the
// first that has a session, so a planted or stale ID never hides the valid
// one. Malformed IDs are dropped; at most 128 are looked up.
func (k *RawKind) BindCandidates(ids []string) *Binding {
	b := &Binding{kind: k, incoming: len(ids) > 0, admitted: k.eng.now().UnixNano()}
	var valid []string
	for _, id := range ids {
		if storage.ValidID(id) && !slices.Contains(valid, id) && len(valid) < maxCandidates {
			valid = append(valid, id)
		}
	}
	switch len(valid) {
	case 0:
	case 1:
		b.id = valid[0]
	default:
		b.candidates = valid
	}
	return b
}

// Kind returns the kind the Binding belongs to.
func (b *Binding) Kind() *RawKind { return b.kind }

// ID returns the request's current session ID, "" if it has none known to
// be valid yet. An incoming ID is returned before any operation confirmed
// it exists (Kind.ID confirms it).
func (b *Binding) ID() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.creating != nil {
		return b.newID
	}
	return b.id
}

// confirmedID returns the request's session ID if the session exists, ""
// otherwise, reading the session if no operation has yet.
func (b *Binding) confirmedID(ctx context.Context) string {
	b.mu.Lock()
	b.read = true // the response may depend on the ID
	switch {
	case b.creating != nil:
		defer b.mu.Unlock()
		return b.newID
	case b.sealer != nil:
		b.mu.Unlock()
		return ""
	case b.confirmed || (b.id == "" && b.candidates == nil):
		defer b.mu.Unlock()
		return b.id
	}
	b.mu.Unlock()
	if b.reentrant() {
		// Inside this binding's own update function: its session is the
		// one being updated.
		return b.ID()
	}
	b.get(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.confirmed {
		return ""
	}
	return b.id
}

// Outcome returns what the transport must send, and seals the Binding:
// later Set, Update, Clear and Renew return ErrTooLate. Taken while the
// request's first write is creating its session (from inside the update
// function, say), it sends the ID being created.
func (b *Binding) Outcome() Outcome {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sealed = true
	o := Outcome{ID: b.id, Changed: b.changed, Cleared: b.cleared, Refreshed: b.refreshed, Read: b.read}
	if b.expires != 0 && b.sealer == nil {
		o.Expires = record.Unix(b.expires)
	}
	if b.creating != nil {
		o.ID, o.Changed, o.Cleared = b.newID, true, false
	}
	if b.sealer != nil && b.changed {
		o.Value = b.wire
	}
	return o
}

// tooLate is the answer to a change asked after Outcome.
var tooLate = actors.Result{Status: actors.FnFailed, Err: ErrTooLate}

// reentrant reports whether the caller is inside one of this binding's
// update functions (the stack is looked at only while an update of the
// binding is on its way).
func (b *Binding) reentrant() bool {
	return b.updating.Load() > 0 && actors.InUpdate()
}

// currentIDLocked returns the binding's ID and its digest once no
// creation or look-up of candidates is on its way, waiting for one (with
// b.mu released) if needed, or doing the look-up.
func (b *Binding) currentIDLocked(ctx context.Context) (string, record.Digest, error) {
	for {
		if b.candidates != nil {
			b.resolveLocked(ctx)
			continue
		}
		ch := b.creating
		if ch == nil {
			ch = b.resolving
		}
		if ch == nil {
			break
		}
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			b.mu.Lock()
			return "", record.Digest{}, ctx.Err()
		}
		b.mu.Lock()
	}
	if b.id != "" && !b.digested {
		b.d, b.digested = record.DigestOf(b.id), true
	}
	return b.id, b.d, nil
}

// resolveLocked picks the first candidate that has a session.
func (b *Binding) resolveLocked(ctx context.Context) {
	cands := b.candidates
	b.candidates = nil
	done := make(chan struct{})
	b.resolving = done
	b.mu.Unlock()
	found := ""
	var d record.Digest
	for _, c := range cands {
		d = record.DigestOf(c)
		res := b.kind.eng.sys.Do(ctx, b.kind.kind, d, &actors.Op{Code: actors.OpGet, Admitted: b.admitted})
		if res.Status == actors.OK && res.Found {
			found = c
			break
		}
	}
	b.mu.Lock()
	b.resolving = nil
	close(done)
	if found != "" {
		b.id, b.d, b.digested, b.confirmed = found, d, true, true
	} else {
		b.cleared = true // none is ours
	}
}

// do runs op on the session whose digest is d, as asked by this request.
func (b *Binding) do(ctx context.Context, d record.Digest, op *actors.Op) actors.Result {
	op.Admitted = b.admitted
	return b.kind.eng.sys.Do(ctx, b.kind.kind, d, op)
}

// observeLocked records what an operation on id says about the session.
func (b *Binding) observeLocked(id string, res actors.Result) {
	if res.Status != actors.OK || b.id != id {
		return
	}
	if res.Found {
		b.confirmed = true
	} else if !b.changed {
		// Unknown, expired or invalidated: the client's ID is not ours.
		b.id, b.digested, b.confirmed = "", false, false
		b.cleared = b.incoming
	}
	if res.Refreshed {
		b.refreshed = true
	}
	if res.Own {
		b.expires = res.Expires
	}
}

// setNewIDLocked makes id, a session this request created or renewed to,
// the binding's ID, to be sent to the client.
func (b *Binding) setNewIDLocked(id string) {
	b.id, b.digested, b.confirmed = id, false, true
	b.changed, b.cleared = true, false
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
		b.slideClientLocked()
		return actors.Result{Value: actors.Value{Data: b.value}, Found: b.value != nil}
	}
	id, d, err := b.currentIDLocked(ctx)
	b.mu.Unlock()
	if err != nil {
		return actors.Result{Status: actors.Canceled, Err: err}
	}
	if id == "" {
		return actors.Result{}
	}
	res := b.do(ctx, d, &actors.Op{Code: actors.OpGet})
	b.mu.Lock()
	defer b.mu.Unlock()
	b.observeLocked(id, res)
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
	if b.sealed {
		b.mu.Unlock()
		return tooLate
	}
	b.read = true
	id, d, err := b.currentIDLocked(ctx)
	b.mu.Unlock()
	if err != nil {
		return actors.Result{Status: actors.Canceled, Err: err}
	}
	if id != "" {
		op.Fresh, op.MustExist = false, true
		res := b.do(ctx, d, op)
		b.mu.Lock()
		b.observeLocked(id, res)
		b.mu.Unlock()
		if res.Status != actors.OK || res.Found {
			return res // an error, ErrRenewed included, creates nothing
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
	if _, _, err := b.currentIDLocked(ctx); err != nil {
		b.mu.Unlock()
		return actors.Result{Status: actors.Canceled, Err: err}
	}
	switch {
	case b.sealed:
		b.mu.Unlock()
		return tooLate
	case b.id != "" && b.id != stale:
		// Another operation of this request made a session meanwhile: act
		// on that.
		b.mu.Unlock()
		return b.serverUpdate(ctx, op)
	}
	done := make(chan struct{})
	b.creating, b.newID = done, newID
	b.mu.Unlock()
	op.Fresh, op.MustExist = true, false
	res := b.do(ctx, record.DigestOf(newID), op)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.creating, b.newID = nil, ""
	close(done)
	if res.Status == actors.OK && res.Found {
		b.setNewIDLocked(newID)
		if res.Refreshed {
			b.refreshed = true
		}
	}
	return res
}

// clear ends the request's session and makes the transport remove the
// client's ID.
func (b *Binding) clear(ctx context.Context) error {
	_, err := b.end(ctx, actors.OpInvalidate)
	return err
}

// end ends the request's session with code (OpInvalidate, or OpTake,
// which also returns the value it held) and makes the transport remove
// the client's ID.
func (b *Binding) end(ctx context.Context, code actors.OpCode) (actors.Result, error) {
	if b.reentrant() {
		return actors.Result{}, ErrReentrant
	}
	b.mu.Lock()
	if b.sealed {
		b.mu.Unlock()
		return actors.Result{}, ErrTooLate
	}
	if b.sealer != nil {
		defer b.mu.Unlock()
		b.openLocked()
		res := actors.Result{Value: actors.Value{Data: b.value}, Found: b.value != nil}
		if b.incoming || b.changed || b.value != nil {
			b.cleared = true
		}
		b.value, b.changed, b.wire = nil, false, ""
		return res, nil
	}
	id, d, err := b.currentIDLocked(ctx)
	b.mu.Unlock()
	if err != nil {
		return actors.Result{}, err
	}
	var res actors.Result
	if id != "" {
		res = b.do(ctx, d, &actors.Op{Code: code})
		if err := errOf(res); err != nil {
			return actors.Result{}, err // ErrRenewed: the session went elsewhere; the cookie stays
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.incoming || b.changed || b.id != "" {
		b.cleared = true
	}
	b.id, b.digested, b.confirmed = "", false, false
	b.changed, b.refreshed = false, false
	return res, nil
}

// setPolicy gives the request's session its own expiry policy (nil: its
// kind's) and has the transport send the ID again with it.
func (b *Binding) setPolicy(ctx context.Context, p *record.Policy) error {
	if b.reentrant() {
		return ErrReentrant
	}
	b.mu.Lock()
	if b.sealed {
		b.mu.Unlock()
		return ErrTooLate
	}
	if b.sealer != nil {
		b.mu.Unlock()
		return ErrServerSideOnly
	}
	b.read = true
	id, d, err := b.currentIDLocked(ctx)
	b.mu.Unlock()
	if err != nil {
		return err
	}
	if id == "" {
		return ErrNoSession
	}
	res := b.do(ctx, d, &actors.Op{Code: actors.OpSetPolicy, Own: p})
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := errOf(res); err != nil {
		return err
	}
	b.observeLocked(id, res)
	if !res.Found {
		return ErrNoSession
	}
	if b.id == id {
		b.changed = true // the same ID, sent again with its new lifetime
		if !res.Own {
			b.expires = 0
		}
	}
	return nil
}

// renew moves the request's session to a new ID.
func (b *Binding) renew(ctx context.Context) error {
	if b.reentrant() {
		return ErrReentrant
	}
	b.mu.Lock()
	if b.sealed {
		b.mu.Unlock()
		return ErrTooLate
	}
	b.read = true
	if b.sealer != nil {
		// A client-side session has no ID to fixate; renewing seals the
		// value again (a fresh nonce under encryption).
		defer b.mu.Unlock()
		b.openLocked()
		if b.value == nil {
			return ErrNoSession
		}
		return errOf(b.clientStoreLocked(b.value))
	}
	id, d, err := b.currentIDLocked(ctx)
	b.mu.Unlock()
	if err != nil {
		return err
	}
	if id == "" {
		return ErrNoSession
	}
	res := b.kind.renewOwned(ctx, d, &actors.Op{Code: actors.OpRenew},
		func(op *actors.Op) actors.Result { return b.do(ctx, d, op) })
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := errOf(res); err != nil {
		return err
	}
	if !res.Found {
		b.observeLocked(id, res)
		return ErrNoSession
	}
	b.setNewIDLocked(res.ID)
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
