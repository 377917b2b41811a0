//go:build !race

package transport_test

import (
	"net/http"
	"testing"

	"github.com/steward-sessions/steward/engine"
)

// TestAllocsUntouched pins the cost of a request that never touches its
// session: the responseWriter, the engine.Binding, the context value (the
// valueCtx; one binding boxes without allocating) and the request copy of
// WithContext.
func TestAllocsUntouched(t *testing.T) {
	h, req := benchSetup(t, func(*engine.Kind[counter]) http.HandlerFunc {
		return func(http.ResponseWriter, *http.Request) {}
	})
	w := &discardWriter{h: make(http.Header)}
	got := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, req) })
	if got > 4 {
		t.Errorf("%v allocations per untouched request, want at most 4", got)
	}
	if len(w.h) != 0 {
		t.Errorf("headers %v on an untouched request", w.h)
	}
}

// TestAllocsWarmSession pins the allocations of a request that reads, and
// one that updates, a warm session in Memory, middleware included: the
// untouched request's four, then for Get the operation; for Update the
// operation with its function (one allocation), the codec's output, the
// stored record, and the memo's box (a counter past 255). Both responses
// carry "Vary: Cookie", whose line lives in the responseWriter.
func TestAllocsWarmSession(t *testing.T) {
	for _, tc := range []struct {
		op   int // index in benchOps
		want float64
	}{{1, 5}, {2, 8}} {
		bo := benchOps[tc.op]
		h, req := benchSetup(t, bo.op, true)
		w := &discardWriter{h: make(http.Header)}
		got := testing.AllocsPerRun(1000, func() { clear(w.h); h.ServeHTTP(w, req) })
		t.Logf("%s: %v allocations per request", bo.name, got)
		if got > tc.want {
			t.Errorf("%s: %v allocations per request, want at most %v", bo.name, got, tc.want)
		}
		if got := w.h.Values("Vary"); len(got) != 1 || got[0] != "Cookie" {
			t.Errorf("%s: Vary %q, want [Cookie]", bo.name, got)
		}
	}
}
