package engine

import (
	"errors"
	"fmt"

	"github.com/steward-sessions/steward/actors"
	"github.com/steward-sessions/steward/storage"
)

var (
	// ErrNoSession is returned by the byte-level API for an ID that has no
	// live session (unknown, expired, invalidated or malformed), and by
	// operations that need a session when the request has none.
	ErrNoSession = errors.New("engine: no session")

	// ErrClosed is returned by every operation started after Close began.
	ErrClosed = errors.New("engine: closed")

	// ErrStorage wraps every error that comes from a storage. An HTTP
	// handler usually answers 503 for it.
	ErrStorage = errors.New("engine: storage failed")

	// ErrConflict is returned when an update kept conflicting with the
	// writes of other engine instances sharing a Versioned storage (Redis)
	// and gave up after 128 attempts, waiting a little longer between each
	// (up to 2 ms from the ninth on; the caller's context bounds it too).
	// Nothing was applied and the operation may be retried. An error that
	// wraps it also wraps ErrStorage, so the usual 503 path catches it.
	ErrConflict = errors.New("engine: too many conflicting writes from other instances")

	// ErrPanic wraps a panic raised by an update function (or an ID
	// generator). The session keeps its previous value.
	ErrPanic = errors.New("engine: update function panicked")

	// ErrReentrant is returned, at once and with nothing applied, by an
	// operation on a session asked from inside that session's own update
	// function: it would wait for the function that waits for it. (An
	// operation on another session from inside an update function returns
	// it too if that session is itself inside its update function at that
	// moment, the one case where waiting could close a cycle.)
	ErrReentrant = errors.New("engine: session operation from inside its own update function")

	// ErrMaybeApplied is returned, wrapped together with the context's
	// error, when the caller's context ended while the operation's write
	// was already with the storage and the storage did not answer within a
	// short grace: the write completes or fails without the caller, so it
	// may or may not have been applied. A retry of a non-idempotent update
	// should first read the session. Operations whose context ended before
	// their write return the context's error alone: they were not applied.
	//
	// It is also returned when the write itself failed because the storage
	// did not answer (an error wrapping storage.ErrUnavailable: a timeout,
	// a lost connection): the request may have reached the storage. That
	// error wraps ErrStorage as well, so the usual 503 path catches it; an
	// operation that returns ErrStorage without ErrMaybeApplied was not
	// applied. While a storage is known to be down (a call failed with
	// storage.ErrUnavailable in the last 200 ms and none has been answered
	// since), its operations fail at once with ErrStorage instead of each
	// waiting for the storage's timeout.
	ErrMaybeApplied = errors.New("engine: the operation may have been applied")

	// ErrRenewed is returned by an operation that reached its session
	// through an ID the session was renewed away from (Renew, on login)
	// after the operation's request began: nothing was applied, no session
	// was created, and the response sends no cookie (the client may hold
	// the new ID under the same name). Requests already in flight at the
	// renewal complete against the session for the kind's RenewGrace; this
	// is for the ones that came later, typically a browser's request that
	// raced the login response. Answer 409 Conflict and have the client
	// retry: by then it sends the new ID. Across engine instances the
	// renewal time and the request's start are read on different clocks:
	// a request that began up to their difference after the renewal, on an
	// instance whose clock is behind, is still served; it never learns the
	// new ID.
	ErrRenewed = errors.New("engine: the session ID was renewed; retry with the new one")

	// ErrTooLate is returned by Set, Update, GetOrSet, Clear and Renew once the response's headers were sent (the
	// transport took the Binding's Outcome): the change could not reach the
	// client, so nothing is changed. Ktor throws TooLateSessionSetException
	// for the same mistake.
	ErrTooLate = errors.New("engine: session changed after the response headers were sent")

	// ErrKindExists is returned by Register for a second kind with the same
	// name or the same Go type.
	ErrKindExists = errors.New("engine: session kind already registered")

	// ErrNoBinding is returned by the request-level operations when the
	// context carries no binding for the kind: the transport middleware is
	// not installed on this route, or the kind is not bound to it.
	ErrNoBinding = errors.New("engine: no session binding in context (is the transport middleware installed for this kind?)")

	// ErrConfig is wrapped by every configuration error.
	ErrConfig = errors.New("engine: bad configuration")
)

// errOf is the error an operation's result stands for, nil for success.
func errOf(res actors.Result) error {
	switch res.Status {
	case actors.OK:
		return nil
	case actors.Closed:
		return ErrClosed
	case actors.Canceled:
		return res.Err
	case actors.MaybeApplied:
		if errors.Is(res.Err, storage.ErrUnavailable) {
			return fmt.Errorf("%w: %w: %w", ErrMaybeApplied, ErrStorage, res.Err)
		}
		return fmt.Errorf("%w: %w", ErrMaybeApplied, res.Err)
	case actors.StorageFailed:
		return fmt.Errorf("%w: %w", ErrStorage, res.Err)
	case actors.Conflict:
		return fmt.Errorf("%w (%v): %w", ErrConflict, res.Err, ErrStorage)
	case actors.Panicked:
		return fmt.Errorf("%w: %v", ErrPanic, res.Err)
	case actors.Reentrant:
		return ErrReentrant
	case actors.Renewed:
		return ErrRenewed
	default: // actors.FnFailed: the function's own error, as it returned it
		return res.Err
	}
}
