package transport_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strconv"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/transport"
)

// The middleware around a ServeMux with method and path patterns (Go
// 1.22): the handlers read their path parameters with r.PathValue and
// their session with r.Context(), as without the middleware.
func ExampleMiddleware_serveMux() {
	ctx := context.Background()
	eng, err := engine.New(engine.Options{})
	if err != nil {
		panic(err)
	}
	defer eng.Close(ctx)

	type total struct{ N int }
	totals, err := engine.Register[total](eng, "SESSION_ID", engine.KindOptions{
		Storage: storage.NewMemory(storage.MemoryOptions{}),
	})
	if err != nil {
		panic(err)
	}
	sessions, err := transport.Middleware(transport.Cookie(totals, transport.CookieConfig{}))
	if err != nil {
		panic(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /add/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil {
			http.Error(w, "not a number", http.StatusBadRequest)
			return
		}
		t, err := totals.Update(r.Context(), func(t *total) error { t.N += n; return nil })
		if err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, t.N)
	})
	mux.HandleFunc("GET /total", func(w http.ResponseWriter, r *http.Request) {
		t, _, err := totals.Get(r.Context()) // no session: the zero total
		if err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, t.N)
	})

	srv := httptest.NewServer(sessions(mux)) // one middleware for every route
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	for _, req := range []struct{ method, path string }{
		{"GET", "/total"}, {"POST", "/add/2"}, {"POST", "/add/40"}, {"GET", "/total"},
	} {
		r, _ := http.NewRequest(req.method, srv.URL+req.path, nil)
		resp, err := client.Do(r)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %s: %s (Set-Cookie: %t)\n", req.method, req.path, body, resp.Header.Get("Set-Cookie") != "")
	}
	// Output:
	// GET /total: 0 (Set-Cookie: false)
	// POST /add/2: 2 (Set-Cookie: true)
	// POST /add/40: 42 (Set-Cookie: false)
	// GET /total: 42 (Set-Cookie: false)
}
