package engine

import (
	"sync"
	"time"

	"github.com/steward-sessions/steward/actors"
	"github.com/steward-sessions/steward/internal/record"
)

// EventKind says what happened to a session.
type EventKind uint8

const (
	// SessionCreated: a session was created (its first write).
	SessionCreated EventKind = iota + 1
	// SessionRenewed: a session moved to a new ID (Event.NewHandle).
	SessionRenewed
	// SessionOwnerBound: a session was bound to Event.Owner.
	SessionOwnerBound
	// SessionInvalidated: a session was invalidated (Clear, Invalidate,
	// InvalidateOwner, InvalidateHandle) or popped (Pop, Take).
	SessionInvalidated
	// SessionExpired: a session passed its idle timeout or its lifetime
	// (Event.Reason) and was removed.
	SessionExpired
	// SessionEvicted: a session was invalidated to keep its owner within
	// MaxPerOwner.
	SessionEvicted
)

// String returns the kind's name: "created", "renewed", ...
func (k EventKind) String() string {
	switch k {
	case SessionCreated:
		return "created"
	case SessionRenewed:
		return "renewed"
	case SessionOwnerBound:
		return "owner-bound"
	case SessionInvalidated:
		return "invalidated"
	case SessionExpired:
		return "expired"
	case SessionEvicted:
		return "evicted"
	}
	return "unknown"
}

// Event is a change in a session's life, given to KindOptions.OnEvent.
type Event struct {
	Kind EventKind
	// Handle names the session (see SessionInfo.Handle); never its ID.
	Handle string
	// NewHandle is, for SessionRenewed, the session's handle under its new
	// ID.
	NewHandle string
	// Owner is the session's owner, "" for none.
	Owner string
	// Reason details Kind: "idle" or "lifetime" for SessionExpired,
	// "max-per-owner" for SessionEvicted; "" otherwise.
	Reason string
	// Time is when it happened, on the engine's clock.
	Time time.Time
}

// events delivers a kind's events to its handler, in the order the
// actors reported them, on a goroutine of its own, so that a handler
// that is slow or calls the engine holds up no session. Memory grows with
// the events not yet delivered.
type events struct {
	handler func(Event)

	mu      sync.Mutex
	wake    *sync.Cond
	queue   []actors.Event
	closing bool
	done    chan struct{}
}

func newEvents(handler func(Event)) *events {
	q := &events{handler: handler, done: make(chan struct{})}
	q.wake = sync.NewCond(&q.mu)
	go q.run()
	return q
}

// push is actors.Kind.Emit: it never blocks.
func (q *events) push(ev actors.Event) {
	q.mu.Lock()
	q.queue = append(q.queue, ev)
	q.mu.Unlock()
	q.wake.Signal()
}

func (q *events) run() {
	defer close(q.done)
	var batch []actors.Event
	for {
		q.mu.Lock()
		for len(q.queue) == 0 && !q.closing {
			q.wake.Wait()
		}
		if len(q.queue) == 0 {
			q.mu.Unlock()
			return
		}
		batch, q.queue = q.queue, batch[:0]
		q.mu.Unlock()
		for _, ev := range batch {
			q.deliver(ev)
		}
		clear(batch)
	}
}

func (q *events) deliver(ev actors.Event) {
	out := Event{Handle: handleOf(ev.D), Owner: ev.Owner, Time: record.Unix(ev.At)}
	switch ev.Code {
	case actors.EventCreated:
		out.Kind = SessionCreated
	case actors.EventRenewed:
		out.Kind, out.NewHandle = SessionRenewed, handleOf(ev.NewD)
	case actors.EventOwnerBound:
		out.Kind = SessionOwnerBound
	case actors.EventInvalidated:
		out.Kind = SessionInvalidated
	case actors.EventExpired:
		out.Kind, out.Reason = SessionExpired, "idle"
		if ev.Absolute {
			out.Reason = "lifetime"
		}
	case actors.EventEvicted:
		out.Kind, out.Reason = SessionEvicted, "max-per-owner"
	default:
		return
	}
	q.handler(out)
}

// close delivers the events still queued and stops.
func (q *events) close() {
	q.mu.Lock()
	q.closing = true
	q.mu.Unlock()
	q.wake.Broadcast()
	<-q.done
}
