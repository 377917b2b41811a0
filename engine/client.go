package engine

import (
	"context"
	"errors"

	"github.com/steward-sessions/steward/actors"
	"github.com/steward-sessions/steward/internal/record"
)

// ErrServerSideOnly is returned by the byte-level API (RawKind) and by
// Invalidate for a client-side kind: its sessions have no ID to act on.
var ErrServerSideOnly = errors.New("engine: operation needs a server-side session kind (one with a Storage)")

// Sealer is how a transport carries the value of a client-side session: it
// opens what the client sent and seals what the server sends back,
// applying its transformers (signing, encryption) and its encoding. The
// transport package provides it; implement it to carry client-side
// sessions over a transport of your own.
type Sealer interface {
	// Open turns what the client sent into the bytes Seal was given. Any
	// error means the value is not trustworthy: the request has no session
	// and the client's copy is cleared.
	Open(wire string) ([]byte, error)
	// Seal turns payload into what is sent to the client. An error (a value
	// too large for a cookie, say) fails the write that asked for it.
	Seal(payload []byte) (string, error)
}

// A client-side value travels in the same record as a stored one
// (internal/record): its creation time and expiry are protected by the
// transformers, and the same expiry rule applies.

var (
	errClientFrame   = errors.New("engine: malformed client-side session value")
	errClientExpired = errors.New("engine: client-side session expired")
)

// openClient checks the record and the age of a client-side value: its
// sealed expiry, and the kind's lifetime as configured now.
func (k *RawKind) openClient(b []byte, now int64) (created int64, value []byte, err error) {
	rec, err := record.Decode(b)
	if err != nil || rec.Alias {
		return 0, nil, errClientFrame
	}
	lifetime := record.Policy{Lifetime: k.kind.Expiry.Lifetime}.Expiry(rec.Created, now)
	if record.Expired(rec.Expires, now) || record.Expired(lifetime, now) {
		return 0, nil, errClientExpired
	}
	return rec.Created, rec.Payload, nil
}

// BindClient starts a Binding for a request of a client-side kind that
// carried wire ("" for none). Nothing is opened until the first operation.
func (k *RawKind) BindClient(wire string, s Sealer) *Binding {
	return &Binding{kind: k, incoming: wire != "", wire: wire, sealer: s}
}

// ClientSide reports whether the kind's values travel to the client (it
// was registered without a Storage).
func (k *RawKind) ClientSide() bool { return k.client }

// openLocked opens the incoming client-side value on first use.
func (b *Binding) openLocked() {
	if b.opened {
		return
	}
	b.opened = true
	if b.wire == "" {
		return
	}
	payload, err := b.sealer.Open(b.wire)
	if err == nil {
		b.created, b.value, err = b.kind.openClient(payload, b.kind.eng.now().UnixNano())
	}
	if err != nil {
		b.kind.eng.log.Debug("engine: client-side session value rejected", "kind", b.kind.Name(), "error", err)
		b.value, b.cleared = nil, true
	}
	b.wire = ""
}

// clientUpdate runs fn on the client-side value and seals the result. The
// writes of one request run one at a time; fn runs without b.mu.
func (b *Binding) clientUpdate(ctx context.Context, fn actors.Updater) actors.Result {
	if err := ctx.Err(); err != nil {
		return actors.Result{Status: actors.Canceled, Err: err}
	}
	b.mu.Lock()
	b.read = true
	if b.turn == nil {
		b.turn = make(chan struct{}, 1)
	}
	turn := b.turn
	b.mu.Unlock()
	select {
	case turn <- struct{}{}:
		defer func() { <-turn }()
	case <-ctx.Done():
		return actors.Result{Status: actors.Canceled, Err: ctx.Err()}
	}
	b.mu.Lock()
	b.openLocked()
	cur := b.value
	b.mu.Unlock()
	next, write, st, err := actors.RunUpdate(fn, actors.Value{Data: cur}, cur != nil)
	if st != actors.OK {
		return actors.Result{Status: st, Err: err}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !write {
		return actors.Result{Value: actors.Value{Data: b.value}, Found: b.value != nil}
	}
	return b.clientStoreLocked(next.Data)
}

func (b *Binding) clientStoreLocked(v []byte) actors.Result {
	now := b.kind.eng.now().UnixNano()
	created := b.created
	if b.value == nil {
		created = now
	}
	exp := b.kind.kind.Expiry.Expiry(created, now)
	wire, err := b.sealer.Seal(record.Encode(record.Record{Created: created, Expires: exp, Payload: v}))
	if err != nil {
		return actors.Result{Status: actors.FnFailed, Err: err}
	}
	b.lateLocked("changed")
	b.value, b.created, b.wire, b.changed, b.cleared = v, created, wire, true, false
	return actors.Result{Value: actors.Value{Data: v}, Found: true}
}
