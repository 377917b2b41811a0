//go:build !race

package transport_test

import (
	"net/http"
	"testing"

	"github.com/steward-sessions/steward/engine"
)

// TestAllocsUntouched pins the cost of a request that never touches its
// session: the responseWriter, the engine.Binding, the context value (two:
// the valueCtx and the boxed slice) and the request copy of WithContext.
func TestAllocsUntouched(t *testing.T) {
	h, req := benchSetup(t, func(*engine.Kind[counter]) http.HandlerFunc {
		return func(http.ResponseWriter, *http.Request) {}
	})
	w := &discardWriter{h: make(http.Header)}
	got := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, req) })
	if got > 5 {
		t.Errorf("%v allocations per untouched request, want at most 5", got)
	}
	if len(w.h) != 0 {
		t.Errorf("headers %v on an untouched request", w.h)
	}
}
