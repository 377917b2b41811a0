package ginsteward_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/transport"
	"github.com/steward-sessions/steward/transport/ginsteward"
)

// A gin router whose handler counts a client's visits in a server-side
// session. The session cookie goes out once, when the session is created,
// in the headers a real server sends.
func ExampleMiddleware() {
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
	sessions, err := transport.Middleware(transport.Cookie(kind, transport.CookieConfig{}))
	if err != nil {
		panic(err)
	}

	r := gin.New()
	r.Use(ginsteward.Middleware(sessions))
	r.GET("/", func(c *gin.Context) {
		// The binding is in the request's context.
		v, err := kind.Update(c.Request.Context(), func(v *visits) error { v.N++; return nil })
		if err != nil {
			c.String(http.StatusServiceUnavailable, "sessions unavailable")
			return
		}
		c.String(http.StatusOK, "visit %d", v.N)
	})

	srv := httptest.NewServer(r)
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
