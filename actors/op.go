package actors

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/steward-sessions/steward/internal/record"
)

// OpCode says what an Op does.
type OpCode uint8

const (
	// OpGet reads the session.
	OpGet OpCode = iota
	// OpUpdate runs Op.Fn on the current value and stores what it returns.
	OpUpdate
	// OpInvalidate removes the session.
	OpInvalidate
	// OpRenew moves the session to a new ID; the old one forwards to it for
	// the kind's grace period.
	OpRenew
	// OpInfo reads the session's metadata (Result's Created, Expires and
	// Owner) without using it: its expiry does not slide, and an ID that
	// was renewed away reads as no session.
	OpInfo
	// OpSetOwner binds the session to Op.Owner ("" unbinds it).
	OpSetOwner
	// OpSetPolicy gives the session Op.Own as its expiry policy, in place
	// of its kind's (nil: its kind's again), and moves its expiry to match.
	OpSetPolicy
	// OpTake removes the session, like OpInvalidate, and answers with the
	// value it held: of concurrent OpTakes, exactly one gets it.
	OpTake

	// opStorageExpired tells the actor that the storage removed the
	// session as expired (Op.swept): see System.StorageExpired.
	opStorageExpired
)

// Status says how an operation ended. The engine turns it into its errors.
type Status uint8

const (
	// OK: the operation was applied (or, for a read, answered).
	OK Status = iota
	// Closed: the System was closing; nothing was applied.
	Closed
	// Canceled: the caller's context ended before the operation was
	// applied, and it never will be. Err is the context's error.
	Canceled
	// MaybeApplied: the caller's context ended while the operation's write
	// was with the storage; the write completes or fails in the actor, but
	// the caller did not wait to learn which. Err is the context's error.
	// Or the write failed with an error wrapping storage.ErrUnavailable: the
	// request may have reached the storage and only its answer been lost.
	// Err is then the storage's error.
	MaybeApplied
	// StorageFailed: the storage returned Err.
	StorageFailed
	// Conflict: the update kept conflicting with other instances' writes.
	Conflict
	// Panicked: the update function (or other user code, an ID generator)
	// panicked; Err describes the panic. Nothing was applied.
	Panicked
	// Reentrant: the operation was asked from inside an update function
	// of the same session (it would wait for itself). Nothing was applied.
	Reentrant
	// FnFailed: the update function returned Err. Nothing was applied.
	FnFailed
	// Renewed: the ID was renewed before the operation's request began;
	// nothing was applied, and the answer says nothing of the new ID.
	Renewed
)

// Value is a session value as an actor holds it: the stored bytes and,
// optionally, what the engine decoded from exactly those bytes (Memo). The
// two always travel together, so a memo can never outlive its bytes.
// Values are read-only once handed over.
type Value struct {
	Data []byte
	Memo any
}

// Updater computes an OpUpdate's new value from the current one (exists
// false: there is none). With write false nothing is stored and the
// current value stays (next.Memo, if set, becomes the memo of the current
// bytes). It runs inside the session actor: it must not modify cur.Data or
// keep it, and must not modify next.Data after returning it. It may run
// more than once for one operation (after a conflict with another
// instance); the last run's result is the one stored.
type Updater interface {
	Update(cur Value, exists bool) (next Value, write bool, err error)
}

// UpdateFunc is an Updater written as a function.
type UpdateFunc func(cur Value, exists bool) (next Value, write bool, err error)

// Update implements Updater.
func (f UpdateFunc) Update(cur Value, exists bool) (Value, bool, error) { return f(cur, exists) }

// Op is one operation on one session, carried to its actor. An Op may be
// given to Do again once Do returned for it with any status but Canceled
// or MaybeApplied (the actor may still hold those).
type Op struct {
	Code OpCode
	// Fresh says the ID was issued by this engine for this operation, so
	// no stored value can exist and none is read.
	Fresh bool
	// MustExist makes OpUpdate answer "not found" instead of creating the
	// session: IDs that come from clients are never adopted.
	MustExist bool
	// Fn is OpUpdate's function.
	Fn Updater
	// Owner is OpSetOwner's owner.
	Owner string
	// Own is OpSetPolicy's policy.
	Own *record.Policy
	// Evict marks an OpInvalidate made to keep an owner within its bound:
	// its event says EventEvicted.
	Evict bool
	// NewID is, for OpRenew, the ID to move the session to; "" makes one
	// with the kind's NewID.
	NewID string
	// Admitted is when the request asking for the operation began, Unix ns
	// on the engine's clock: an operation that reaches a renewed session
	// through its old ID is served only if its request began before the
	// renewal (it was in flight then). 0: no such check (Invalidate by ID
	// follows every renewal).
	Admitted int64

	swept *record.Record // opStorageExpired: what the storage removed

	ctx   context.Context
	kind  *Kind
	reply chan Result
	state atomic.Int32 // opQueued, ...: who may still decide the op's fate
	hops  int          // renewed IDs followed so far
	now   int64        // set when the mailbox let a read run inline: the instant it was judged at
}

// The life of an Op. The caller may abandon it while it is queued or
// started (CAS to opAbandoned): the actor then drops it before any write.
// Before the operation's first write the actor moves it to opCommitting;
// from then on only the actor decides, and a caller that leaves cannot know
// whether the write landed (MaybeApplied).
const (
	opQueued int32 = iota
	opStarted
	opCommitting
	opAbandoned
)

// commitGrace is how long a caller whose context ended waits for a write
// already with the storage before answering MaybeApplied: long enough for
// any healthy storage to answer, so that a deadline racing a write almost
// never leaves the caller in doubt; short against any deadline worth
// setting.
const commitGrace = 25 * time.Millisecond

// Result is the answer to an Op.
type Result struct {
	// ID is, for OpRenew, the session's new ID.
	ID string
	// Value is the session's value; read-only, shared with the actor.
	Value Value
	// Found says a session exists after the operation.
	Found bool
	// Refreshed says the operation moved the session's stored expiry
	// forward, so a transport that carries an expiry (a cookie's Max-Age)
	// should send it again.
	Refreshed bool
	// Created, Expires (Unix ns, 0 for never) and Owner describe the
	// session, for OpInfo, and Owner for OpRenew and OpSetOwner.
	Created, Expires int64
	Owner            string
	// Own says the session has its own expiry policy (see OpSetPolicy):
	// Expires is then its expiry, which the transport carries to the
	// client (a cookie's Max-Age).
	Own    bool
	Status Status
	// Err details Status (the storage's error, the function's error, the
	// context's error, the panic); nil for OK.
	Err error
}

var replies = sync.Pool{New: func() any { return make(chan Result, 1) }}

func getReply() chan Result  { return replies.Get().(chan Result) }
func putReply(c chan Result) { replies.Put(c) }

// abandon decides what a caller whose context ended is told. A result that
// is already there wins; an operation not yet committing is abandoned and
// will not be applied; one whose write is with the storage gets
// commitGrace to finish.
func abandon(op *Op) Result {
	cause := op.ctx.Err()
	canceled := Result{Status: Canceled, Err: cause}
	for {
		select {
		case res := <-op.reply:
			putReply(op.reply)
			return res
		default:
		}
		switch st := op.state.Load(); st {
		case opQueued, opStarted:
			if op.state.CompareAndSwap(st, opAbandoned) {
				return canceled
			}
		case opCommitting:
			t := time.NewTimer(commitGrace)
			select {
			case res := <-op.reply:
				t.Stop()
				putReply(op.reply)
				return res
			case <-t.C:
			}
			// A conflicting write sends the update back to opStarted.
			if op.state.CompareAndSwap(opStarted, opAbandoned) {
				return canceled
			}
			select {
			case res := <-op.reply:
				putReply(op.reply)
				return res
			default:
			}
			return Result{Status: MaybeApplied, Err: cause}
		default: // opAbandoned: only this caller sets it
			return canceled
		}
	}
}

// EventCode says what happened to a session.
type EventCode uint8

const (
	// EventCreated: a session was created.
	EventCreated EventCode = iota + 1
	// EventRenewed: a session moved to a new ID (Event.NewD).
	EventRenewed
	// EventOwnerBound: a session was bound to Event.Owner.
	EventOwnerBound
	// EventInvalidated: a session was invalidated (or taken).
	EventInvalidated
	// EventExpired: a session passed its idle timeout (Event.Absolute
	// false) or its lifetime (true) and was removed.
	EventExpired
	// EventEvicted: a session was invalidated to keep its owner within
	// the kind's bound.
	EventEvicted
)

// Event is a change in a session's life, reported by the actor that made
// it, once.
type Event struct {
	Code     EventCode
	D        record.Digest // the session
	NewD     record.Digest // EventRenewed: where it went
	Owner    string
	Absolute bool  // EventExpired: the lifetime, not the idle timeout, ended it
	At       int64 // Unix ns, the System's clock
}
