package transport_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/transport"
)

// A server-side session in a cookie: the handler counts a client's visits.
func Example() {
	ctx := context.Background()
	eng, err := engine.New(engine.Options{})
	if err != nil {
		panic(err)
	}
	defer eng.Close(ctx)

	type visits struct{ N int }
	kind, err := engine.Register[visits](eng, "SESSION_ID", engine.KindOptions{
		Storage: storage.NewMemory(storage.MemoryOptions{}),
	})
	if err != nil {
		panic(err)
	}

	// Configuration errors are reported here, at start-up.
	sessions, err := transport.Middleware(
		transport.Cookie(kind, transport.CookieConfig{}), // Secure: true in production
	)
	if err != nil {
		panic(err)
	}
	handler := sessions(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := kind.Update(r.Context(), func(v *visits) error { v.N++; return nil })
		if err != nil {
			http.Error(w, "sessions unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "visit %d", v.N)
	}))

	srv := httptest.NewServer(handler)
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	for range 3 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// The cookie goes out once, when the session is created.
		setCookie := "none"
		if sc := resp.Header.Get("Set-Cookie"); sc != "" {
			_, attrs, _ := strings.Cut(sc, ";")
			setCookie = "SESSION_ID=<id>;" + attrs
		}
		fmt.Printf("%s; Set-Cookie: %s\n", body, setCookie)
	}
	// Output:
	// visit 1; Set-Cookie: SESSION_ID=<id>; Path=/; HttpOnly; SameSite=Lax
	// visit 2; Set-Cookie: none
	// visit 3; Set-Cookie: none
}
