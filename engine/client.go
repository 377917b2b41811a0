package engine

import (
	"bytes"
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
func (k *RawKind) openClient(b []byte, now int64) (record.Record, error) {
	rec, err := record.Decode(b)
	if err != nil || rec.Alias {
		return record.Record{}, errClientFrame
	}
	lifetime := record.Policy{Lifetime: k.kind.Expiry.Lifetime}.Expiry(rec.Created, now)
	if record.Expired(rec.Expires, now) || record.Expired(lifetime, now) {
		return record.Record{}, errClientExpired
	}
	return rec, nil
}

// BindClient starts a Binding for a request of a client-side kind that
// carried wire ("" for none). Nothing is opened until the first operation.
func (k *RawKind) BindClient(wire string, s Sealer) *Binding {
	return &Binding{kind: k, incoming: wire != "", wire: wire, sealer: s}
}

// BindClientCandidates starts a Binding for a request of a client-side
// kind that carried several values under the kind's name (several cookies
// of one name): the first that opens and has not expired is the request's
// session, so a planted or stale value never hides the valid one.
func (k *RawKind) BindClientCandidates(wires []string, s Sealer) *Binding {
	now := k.eng.now().UnixNano()
	for _, w := range wires {
		if payload, err := s.Open(w); err == nil {
			if _, err := k.openClient(payload, now); err == nil {
				return k.BindClient(w, s)
			}
		}
	}
	b := k.BindClient("", s)
	b.incoming, b.cleared = len(wires) > 0, len(wires) > 0
	return b
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
		var rec record.Record
		rec, err = b.kind.openClient(payload, b.kind.eng.now().UnixNano())
		b.created, b.value, b.sealedExp = rec.Created, rec.Payload, rec.Expires
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
	if b.sealed {
		b.mu.Unlock()
		return tooLate
	}
	b.openLocked()
	cur := b.value
	b.mu.Unlock()
	next, write, st, err := actors.RunUpdate(fn, actors.Value{Data: cur}, cur != nil)
	if st != actors.OK {
		return actors.Result{Status: st, Err: err}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sealed {
		return tooLate
	}
	if !write || (b.value != nil && bytes.Equal(next.Data, b.value)) {
		// Nothing new to send, but the sliding expiry.
		b.slideClientLocked()
		return actors.Result{Value: actors.Value{Data: b.value}, Found: b.value != nil}
	}
	return b.clientStoreLocked(next.Data)
}

// slideClientLocked reseals the client-side value when its idle expiry
// moved by the kind's touch interval since it was sealed, so that a
// session that is only read stays alive on the client: reads slide the
// idle timeout too, at the cost of one Set-Cookie per interval.
func (b *Binding) slideClientLocked() {
	if b.value == nil || b.sealed || b.kind.kind.Expiry.Idle <= 0 {
		return
	}
	p := b.kind.kind.Expiry
	if p.Expiry(b.created, b.kind.eng.now().UnixNano())-b.sealedExp < int64(p.Touch()) {
		return
	}
	if res := b.clientStoreLocked(b.value); res.Status != actors.OK {
		b.kind.eng.log.Warn("engine: resealing a client-side session", "kind", b.kind.Name(), "error", res.Err)
	}
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
	b.value, b.created, b.sealedExp, b.wire, b.changed, b.cleared = v, created, exp, wire, true, false
	return actors.Result{Value: actors.Value{Data: v}, Found: true}
}
