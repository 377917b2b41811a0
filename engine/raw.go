package engine

import (
	"bytes"
	"context"
	"log/slog"
	"time"

	"github.com/steward-sessions/steward/actors"
	"github.com/steward-sessions/steward/internal/record"
	"github.com/steward-sessions/steward/storage"
)

// RawKind is a registered session kind seen as bytes: the transport-agnostic
// API keyed by session ID that custom transports (a WebSocket, gRPC
// metadata, a line protocol) use, and that the HTTP transports build on.
// Every method is safe for concurrent use; operations on one ID run one at a
// time, in the order they reach the session's actor.
//
// An ID that is malformed, unknown, expired or invalidated has no session:
// reads and writes of it return ErrNoSession, and it is never adopted. New
// IDs come only from Create and Renew. An ID that was renewed answers
// ErrRenewed to every operation but Invalidate, which follows the renewal
// (for the kind's RenewGrace) and ends the session where it went.
//
// For a client-side kind (registered without a Storage) every method but
// Name returns ErrServerSideOnly: its sessions have no ID.
//
// Every method that takes a context may block on the session's actor and
// its storage, and returns when ctx ends, whatever the storage is doing.
// An operation whose context ended before its write was never applied and
// returns ctx's error; one whose write was already with the storage
// completes without its caller, who is told ErrMaybeApplied (wrapped with
// ctx's error) unless the storage answered within a short grace.
type RawKind struct {
	eng  *Engine
	kind *actors.Kind
	// unreport unregisters the kind from its storage's expiry reports;
	// nil when it did not register.
	unreport func()
	codec    Codec
	client   bool         // no storage: values travel to the client
	met      *kindMetrics // nil without Options.MeterProvider

	owners      *actors.Kind // the owners' indexes, on the same storage
	events      *events      // delivers OnEvent's events; nil without it
	maxPerOwner int
	ownerLimit  OwnerLimit
}

// RegisterRaw registers a session kind without a Go type, for callers that
// handle the bytes themselves. Names share one namespace with Register.
func RegisterRaw(e *Engine, name string, opts KindOptions) (*RawKind, error) {
	return e.register(name, nil, opts)
}

// Raw returns k itself, so that a *RawKind can be given wherever a
// transport asks for a kind.
func (k *RawKind) Raw() *RawKind { return k }

// Name returns the name the kind was registered under.
func (k *RawKind) Name() string { return k.kind.Name }

// Logger returns the engine's logger, for transports.
func (k *RawKind) Logger() *slog.Logger { return k.eng.log }

// check refuses IDs that cannot have a session, before any actor.
func (k *RawKind) check(id string) error {
	if k.client {
		return ErrServerSideOnly
	}
	if !storage.ValidID(id) {
		return ErrNoSession
	}
	return nil
}

// do runs op on session id, asked now.
func (k *RawKind) do(ctx context.Context, id string, op *actors.Op) actors.Result {
	if k.client {
		return actors.Result{Status: actors.FnFailed, Err: ErrServerSideOnly}
	}
	if op.Code != actors.OpInvalidate {
		op.Admitted = k.eng.now().UnixNano()
	}
	return k.eng.sys.Do(ctx, k.kind, record.DigestOf(id), op)
}

// StorageKey returns the name under which storages hold session id: a
// one-way digest of the ID (SHA-256, base64url), never the ID, so that a
// directory listing or a key dump yields no usable session. Admin tools
// that look into a storage use it.
func StorageKey(id string) string { return record.DigestOf(id).StorageID() }

// Create starts a session holding value under a new server-generated ID
// and returns the ID.
func (k *RawKind) Create(ctx context.Context, value []byte) (_ string, err error) {
	if m := k.met; m != nil {
		start := m.start()
		defer func() { m.done(opCreate, start, true, err) }()
	}
	if k.client {
		return "", ErrServerSideOnly
	}
	v := bytes.Clone(value)
	if v == nil {
		v = []byte{}
	}
	id, err := k.kind.NewID()
	if err != nil {
		return "", err
	}
	res := k.do(ctx, id, &actors.Op{Code: actors.OpUpdate, Fresh: true, Fn: actors.UpdateFunc(func(actors.Value, bool) (actors.Value, bool, error) {
		return actors.Value{Data: v}, true, nil
	})})
	if err := errOf(res); err != nil {
		return "", err
	}
	return id, nil
}

// Load returns the value of session id, or ErrNoSession.
func (k *RawKind) Load(ctx context.Context, id string) (_ []byte, err error) {
	if m := k.met; m != nil {
		start := m.start()
		defer func() { m.done(opGet, start, true, err) }()
	}
	if err := k.check(id); err != nil {
		return nil, err
	}
	res := k.do(ctx, id, &actors.Op{Code: actors.OpGet})
	if err := errOf(res); err != nil {
		return nil, err
	}
	if !res.Found {
		return nil, ErrNoSession
	}
	return bytes.Clone(res.Value.Data), nil
}

// Store replaces the value of the existing session id. It returns
// ErrNoSession, and stores nothing, if id has no session.
func (k *RawKind) Store(ctx context.Context, id string, value []byte) (err error) {
	if m := k.met; m != nil {
		start := m.start()
		defer func() { m.done(opSet, start, true, err) }()
	}
	v := bytes.Clone(value)
	if v == nil {
		v = []byte{}
	}
	_, err = k.update(ctx, id, func([]byte) ([]byte, error) { return v, nil })
	return err
}

// Update runs fn on the value of the existing session id inside its actor
// and stores what fn returns, atomically with respect to every other
// operation on id. fn must not modify old or keep it, and follows the
// rules of Kind.Update (an operation on id from inside fn returns
// ErrReentrant). If fn returns an error, nothing is stored and Update
// returns that error. Update returns the stored value, or ErrNoSession if
// id has no session.
func (k *RawKind) Update(ctx context.Context, id string, fn func(old []byte) ([]byte, error)) (_ []byte, err error) {
	if m := k.met; m != nil {
		start := m.start()
		defer func() { m.done(opUpdate, start, true, err) }()
	}
	return k.update(ctx, id, fn)
}

func (k *RawKind) update(ctx context.Context, id string, fn func(old []byte) ([]byte, error)) ([]byte, error) {
	if err := k.check(id); err != nil {
		return nil, err
	}
	res := k.do(ctx, id, &actors.Op{Code: actors.OpUpdate, MustExist: true, Fn: actors.UpdateFunc(func(old actors.Value, _ bool) (actors.Value, bool, error) {
		v, err := fn(old.Data)
		if err != nil {
			return actors.Value{}, false, err
		}
		if v == nil {
			v = []byte{}
		}
		return actors.Value{Data: v}, true, nil
	})})
	if err := errOf(res); err != nil {
		return nil, err
	}
	if !res.Found {
		return nil, ErrNoSession
	}
	return bytes.Clone(res.Value.Data), nil
}

// Invalidate ends session id wherever it is used ("log out my other
// devices"). Invalidating an ID that was renewed less than RenewGrace ago
// ends the renewed session too. Invalidating an ID that has no session is
// not an error.
func (k *RawKind) Invalidate(ctx context.Context, id string) (err error) {
	if m := k.met; m != nil {
		start := m.start()
		defer func() { m.done(opInvalidate, start, true, err) }()
	}
	if k.client {
		return ErrServerSideOnly
	}
	if !storage.ValidID(id) {
		return nil
	}
	return errOf(k.do(ctx, id, &actors.Op{Code: actors.OpInvalidate}))
}

// SetLifetime gives session id its own idle timeout and absolute lifetime
// in place of its kind's (see Kind.SetLifetime for the values). A
// transport learns the new expiry from the next request's operations.
func (k *RawKind) SetLifetime(ctx context.Context, id string, idle, lifetime time.Duration) (err error) {
	if m := k.met; m != nil {
		start := m.start()
		defer func() { m.done(opSetLifetime, start, true, err) }()
	}
	if err := k.check(id); err != nil {
		return err
	}
	res := k.do(ctx, id, &actors.Op{Code: actors.OpSetPolicy, Own: k.ownPolicy(idle, lifetime)})
	if err := errOf(res); err != nil {
		return err
	}
	if !res.Found {
		return ErrNoSession
	}
	return nil
}

// ownPolicy is the policy of a session given idle and lifetime (see
// Kind.SetLifetime); nil for its kind's.
func (k *RawKind) ownPolicy(idle, lifetime time.Duration) *record.Policy {
	if idle == 0 && lifetime == 0 {
		return nil
	}
	p := k.kind.Expiry
	switch {
	case idle > 0:
		p.Idle = idle
	case idle < 0:
		p.Idle = 0
	}
	switch {
	case lifetime > 0:
		p.Lifetime = lifetime
	case lifetime < 0:
		p.Lifetime = 0
	}
	return &p
}

// Take returns the value of session id and ends the session, atomically:
// of concurrent Takes of one session, exactly one gets the value, the
// others ErrNoSession (across engine instances too, on a Versioned
// storage).
func (k *RawKind) Take(ctx context.Context, id string) (_ []byte, err error) {
	if m := k.met; m != nil {
		start := m.start()
		defer func() { m.done(opTake, start, true, err) }()
	}
	if err := k.check(id); err != nil {
		return nil, err
	}
	res := k.do(ctx, id, &actors.Op{Code: actors.OpTake})
	if err := errOf(res); err != nil {
		return nil, err
	}
	if !res.Found {
		return nil, ErrNoSession
	}
	return bytes.Clone(res.Value.Data), nil
}

// Renew moves session id to a new ID with the same value and returns the
// new ID; call it on login (against session fixation). From then on the
// old ID answers ErrRenewed (the grace of request bindings is for requests
// already in flight; here every call begins when it is made).
func (k *RawKind) Renew(ctx context.Context, id string) (_ string, err error) {
	if m := k.met; m != nil {
		start := m.start()
		defer func() { m.done(opRenew, start, true, err) }()
	}
	if err := k.check(id); err != nil {
		return "", err
	}
	res := k.renewOwned(ctx, record.DigestOf(id), &actors.Op{Code: actors.OpRenew},
		func(op *actors.Op) actors.Result { return k.do(ctx, id, op) })
	if err := errOf(res); err != nil {
		return "", err
	}
	if !res.Found {
		return "", ErrNoSession
	}
	return res.ID, nil
}
