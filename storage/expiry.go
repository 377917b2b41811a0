package storage

import (
	"context"
	"sync"
	"sync/atomic"
)

// ExpiryReporter is the optional capability of a storage that removes
// expired values on its own (a sweeper, or a read that finds a value
// expired), so that whoever holds a session's metadata can learn of its
// expiry although nobody asked for the removal. The engine uses it for the
// expired events of sessions that no actor holds (engine.KindOptions
// OnEvent); Directory and Memory implement it, and Cache and the adapters
// pass it through (see ExpiryReporterOf).
type ExpiryReporter interface {
	// OnExpired registers fn and returns a function that unregisters it
	// (calling it again does nothing). The storage calls fn with the ID
	// and the stored value of every value that it removes on its own
	// because the value expired: exactly once per removal, after the
	// removal, and under no lock that its operations need. Removals that a
	// caller asked for (Delete, DeleteFound, Save of an expired value) are
	// not reported. fn may be called from any goroutine, including one
	// inside a call to the storage's own methods: it must be quick, must
	// not block and must not call the storage. fn may keep the value but
	// must not modify it.
	OnExpired(fn func(id string, value []byte)) (unregister func())

	// DeleteFound is Delete that also reports whether it removed a value,
	// live or expired: of a DeleteFound and a removal the storage makes on
	// its own, exactly one removes the value, so exactly one of them
	// reports it. The engine calls it instead of Delete when it removes an
	// expired session: a wrapper that passes the capability through (see
	// ExpiryReporterOf) must do in DeleteFound what its Delete does, as
	// Cache does.
	DeleteFound(ctx context.Context, id string) (found bool, err error)
}

// ExpiryReporterOf returns s's ExpiryReporter capability: s itself if it
// implements ExpiryReporter, else what a wrapper reports through a method
// `ExpiryReporter() ExpiryReporter` (Cache and the adapters of FromBytes
// and AsBytes do, for what they wrap), else nil.
func ExpiryReporterOf(s any) ExpiryReporter {
	switch v := s.(type) {
	case ExpiryReporter:
		return v
	case interface{ ExpiryReporter() ExpiryReporter }:
		return v.ExpiryReporter()
	}
	return nil
}

// expiryHooks holds the functions registered with OnExpired. Reporting
// costs one atomic load while none is registered.
type expiryHooks struct {
	mu    sync.Mutex                    // serializes registrations
	hooks atomic.Pointer[[]*expiryHook] // copied on write
}

type expiryHook struct{ fn func(id string, value []byte) }

// add registers fn.
func (h *expiryHooks) add(fn func(id string, value []byte)) (unregister func()) {
	hook := &expiryHook{fn: fn}
	h.mu.Lock()
	var cur []*expiryHook
	if p := h.hooks.Load(); p != nil {
		cur = *p
	}
	next := append(append(make([]*expiryHook, 0, len(cur)+1), cur...), hook)
	h.hooks.Store(&next)
	h.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			var left []*expiryHook
			for _, x := range *h.hooks.Load() {
				if x != hook {
					left = append(left, x)
				}
			}
			h.hooks.Store(&left)
		})
	}
}

// active reports whether a function is registered: whether removals need
// to keep what they removed.
func (h *expiryHooks) active() bool {
	p := h.hooks.Load()
	return p != nil && len(*p) > 0
}

// report calls the registered functions with a removed value.
func (h *expiryHooks) report(id string, value []byte) {
	p := h.hooks.Load()
	if p == nil {
		return
	}
	for _, x := range *p {
		x.fn(id, value)
	}
}
