package engine

import (
	"errors"

	"github.com/steward-sessions/steward/actors"
)

var (
	// ErrNoSession is returned by the byte-level API for an ID that has no
	// live session (unknown, expired, invalidated or malformed), and by
	// operations that need a session when the request has none.
	ErrNoSession = errors.New("engine: no session")

	// ErrClosed is returned by every operation started after Close began.
	ErrClosed = actors.ErrClosed

	// ErrStorage wraps every error that comes from a storage. An HTTP
	// handler usually answers 503 for it.
	ErrStorage = actors.ErrStorage

	// ErrConflict is returned when an update kept conflicting with the
	// writes of other engine instances sharing a Versioned storage (Redis)
	// and gave up after 32 attempts, waiting a little longer between each.
	ErrConflict = actors.ErrConflict

	// ErrPanic wraps a panic raised by an update function. The session keeps
	// its previous value.
	ErrPanic = actors.ErrPanic

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
