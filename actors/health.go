package actors

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/steward-sessions/steward/storage"
)

// failFastFor is how long after a call that found the storage unavailable
// the kind's storage calls fail at once; then one call at a time tries it
// again, and the first that gets an answer ends the outage.
const failFastFor = 200 * time.Millisecond

// errFailedFast marks the errors of storage calls that were not made
// because the storage was known to be down: nothing was applied.
var errFailedFast = errors.New("not tried: failing fast")

// slowFailure is how long a call that fails with storage.ErrUnavailable
// must have waited to mark its storage down: one that fails at once (a
// refused connection, one broken by a restart) costs its caller nothing to
// try again, while one that timed out would make every queued operation
// wait as long.
const slowFailure = 100 * time.Millisecond

// health tracks whether a kind's storage is known to be down: a call
// failed with storage.ErrUnavailable after waiting slowFailure or more (a
// timeout) and no call has been answered since. While it is, operations that need the
// storage fail at once, not each after its own timeout; a stalled call
// (no answer and no error yet) does not count, so one session's slow
// storage never fails another's operations.
type health struct {
	downUntil atomic.Int64 // System time (ns since its start) until which calls fail fast; 0: up
	probing   atomic.Bool  // a call is trying the storage during an outage
	lastErr   atomic.Pointer[error]
}

// admit reports whether a storage call may be made at now, and whether it
// is the probe of an outage.
func (h *health) admit(now int64) (ok, probe bool) {
	until := h.downUntil.Load()
	switch {
	case until == 0:
		return true, false
	case now < until:
		return false, false
	default:
		return h.probing.CompareAndSwap(false, true), true
	}
}

// refused is the error of a call not made during an outage.
func (h *health) refused() error {
	cause := "no answer"
	if p := h.lastErr.Load(); p != nil {
		cause = (*p).Error()
	}
	return fmt.Errorf("%w (%w; the last call: %s)", storage.ErrUnavailable, errFailedFast, cause)
}

// done records how a call made at start ended at now.
func (h *health) done(start, now int64, probe bool, err error, log *slog.Logger, kind string) {
	if probe {
		defer h.probing.Store(false)
	}
	if errors.Is(err, storage.ErrUnavailable) {
		if now-start < int64(slowFailure) && !probe {
			return
		}
		last := err // a copy: taking err's address would put every call's on the heap
		h.lastErr.Store(&last)
		if h.downUntil.Swap(now+int64(failFastFor)) == 0 {
			log.Warn("engine: storage unavailable; its operations fail fast until it answers again",
				"kind", kind, "error", err)
		}
		return
	}
	if h.downUntil.Load() != 0 && h.downUntil.Swap(0) != 0 {
		log.Info("engine: storage answers again", "kind", kind)
	}
}
