package transport_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/steward-sessions/steward/engine"
)

// TestHandlerInsideUpdate: a handler that reads its session, or writes and
// flushes the response, from inside the session's update function neither
// hangs nor loses the session: the read is refused with ErrReentrant, the
// response goes out carrying the cookie of the session being created, and
// the next request sees the update.
func TestHandlerInsideUpdate(t *testing.T) {
	a := newApp(t, appConfig{wrap: func(mux *http.ServeMux, k *engine.Kind[counter]) {
		mux.HandleFunc("POST /get-inside", func(w http.ResponseWriter, r *http.Request) {
			var inner error
			_, err := k.Update(r.Context(), func(c *counter) error {
				_, _, inner = k.Get(r.Context())
				c.N++
				return nil
			})
			if err != nil || !errors.Is(inner, engine.ErrReentrant) {
				http.Error(w, fmt.Sprintf("outer %v, inner %v", err, inner), http.StatusInternalServerError)
			}
		})
		mux.HandleFunc("POST /write-inside", func(w http.ResponseWriter, r *http.Request) {
			_, err := k.Update(r.Context(), func(c *counter) error {
				c.N++
				fmt.Fprintf(w, "%d", c.N)
				http.NewResponseController(w).Flush()
				return nil
			})
			if err != nil {
				fmt.Fprintf(w, " error %v", err)
			}
		})
	}})
	r := a.ok(t, a.client, "POST", "/write-inside")
	if r.body != "1" || r.cookie(t) == nil {
		t.Fatalf("writing inside Update of a new session: body %q, Set-Cookie %q", r.body, r.header.Values("Set-Cookie"))
	}
	if r := a.ok(t, a.client, "POST", "/write-inside"); r.body != "2" {
		t.Fatalf("second write inside Update: body %q", r.body)
	}
	a.ok(t, a.client, "POST", "/get-inside")
	if r := a.ok(t, a.client, "GET", "/get"); r.body != "3" {
		t.Fatalf("after the updates: %q, want 3", r.body)
	}
}
