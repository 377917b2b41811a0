package ginsteward_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/transport"
	"github.com/steward-sessions/steward/transport/ginsteward"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode) // no debug lines on stdout
	goleak.VerifyTestMain(m)
}

// count is the session value of the tests.
type count struct{ N int }

// newServer starts a real HTTP server on a loopback port: a gin router
// whose routes each increment the session's count and send the response
// in a different way, behind ginsteward.Middleware.
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	eng, err := engine.New(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := eng.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	counts, err := engine.Register[count](eng, "SESSION_ID", engine.KindOptions{
		Storage: storage.NewMemory(storage.MemoryOptions{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := transport.Middleware(transport.Cookie(counts, transport.CookieConfig{}))
	if err != nil {
		t.Fatal(err)
	}

	r := gin.New()
	r.Use(ginsteward.Middleware(sessions))
	increment := func(c *gin.Context) (int, bool) {
		v, err := counts.Update(c.Request.Context(), func(v *count) error { v.N++; return nil })
		if err != nil {
			c.String(http.StatusServiceUnavailable, "%v", err)
			return 0, false
		}
		return v.N, true
	}
	r.POST("/json", func(c *gin.Context) { // Write
		if n, ok := increment(c); ok {
			c.JSON(http.StatusOK, gin.H{"count": n})
		}
	})
	r.POST("/string", func(c *gin.Context) { // WriteString
		if n, ok := increment(c); ok {
			c.Writer.Header().Set("Content-Type", "text/plain")
			io.WriteString(c.Writer, strconv.Itoa(n))
		}
	})
	r.POST("/status-first", func(c *gin.Context) { // c.Status only records the status
		c.Status(http.StatusCreated)
		if n, ok := increment(c); ok {
			c.String(http.StatusCreated, "%d", n)
		}
	})
	r.POST("/abort", func(c *gin.Context) { // WriteHeaderNow, no body
		if n, ok := increment(c); ok {
			c.Header("X-Count", strconv.Itoa(n))
			c.AbortWithStatus(http.StatusAccepted)
		}
	})
	r.POST("/nothing", func(c *gin.Context) { // gin sends the headers after the chain
		if n, ok := increment(c); ok {
			c.Header("X-Count", strconv.Itoa(n))
		}
	})
	r.POST("/flush", func(c *gin.Context) { // Flush before the body
		if n, ok := increment(c); ok {
			c.Writer.Flush()
			fmt.Fprint(c.Writer, n)
		}
	})
	r.POST("/hijack", func(c *gin.Context) { // the connection taken over
		n, ok := increment(c)
		if !ok {
			return
		}
		conn, brw, err := c.Writer.Hijack()
		if err != nil {
			c.String(http.StatusInternalServerError, "%v", err)
			return
		}
		defer conn.Close()
		body := strconv.Itoa(n)
		fmt.Fprintf(brw, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n", len(body))
		c.Writer.Header().Write(brw) // the session's headers are there
		fmt.Fprintf(brw, "\r\n%s", body)
		brw.Flush()
	})
	r.GET("/count", func(c *gin.Context) {
		v, _, err := counts.Get(c.Request.Context()) // no session: the zero count
		if err != nil {
			c.String(http.StatusServiceUnavailable, "%v", err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"count": v.N})
	})
	r.POST("/logout", func(c *gin.Context) {
		if err := counts.Clear(c.Request.Context()); err != nil {
			c.String(http.StatusServiceUnavailable, "%v", err)
			return
		}
		c.Status(http.StatusNoContent)
	})
	r.GET("/gin-context", func(c *gin.Context) { // c as the context: no fallback by default
		_, _, err := counts.Get(c)
		c.String(http.StatusOK, "%v", errors.Is(err, engine.ErrNoBinding))
	})

	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

// newClient returns a client of srv with its own cookie jar, as a browser.
func newClient(t *testing.T, srv *httptest.Server) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Transport: &http.Transport{}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// do sends a request and returns the response and its body; it fails t
// unless the status is one of the 2xx.
func do(t *testing.T, c *http.Client, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s %q", method, url, resp.Status, body)
	}
	return resp, string(body)
}

// The Set-Cookie of a new session must be in the headers the server
// sends, whichever way the handler writes its response.
func TestSetCookieOnARealServer(t *testing.T) {
	srv := newServer(t)
	for _, tc := range []struct {
		path   string
		status int
		count  func(resp *http.Response, body string) string
	}{
		{"/json", http.StatusOK, func(_ *http.Response, b string) string {
			return strings.TrimSuffix(strings.TrimPrefix(b, `{"count":`), "}")
		}},
		{"/string", http.StatusOK, func(_ *http.Response, b string) string { return b }},
		{"/status-first", http.StatusCreated, func(_ *http.Response, b string) string { return b }},
		{"/abort", http.StatusAccepted, func(r *http.Response, _ string) string { return r.Header.Get("X-Count") }},
		{"/nothing", http.StatusOK, func(r *http.Response, _ string) string { return r.Header.Get("X-Count") }},
		{"/flush", http.StatusOK, func(_ *http.Response, b string) string { return b }},
		{"/hijack", http.StatusOK, func(_ *http.Response, b string) string { return b }},
	} {
		t.Run(strings.TrimPrefix(tc.path, "/"), func(t *testing.T) {
			client := newClient(t, srv)
			for i := 1; i <= 4; i++ {
				resp, body := do(t, client, http.MethodPost, srv.URL+tc.path)
				if resp.StatusCode != tc.status {
					t.Errorf("request %d: status %d, want %d", i, resp.StatusCode, tc.status)
				}
				if got := tc.count(resp, body); got != strconv.Itoa(i) {
					t.Fatalf("request %d: count %q, want %d (the cookie did not come back?)", i, got, i)
				}
				sc := resp.Header.Values("Set-Cookie")
				switch {
				case i == 1 && (len(sc) != 1 || !strings.HasPrefix(sc[0], "SESSION_ID=")):
					t.Fatalf("request %d: Set-Cookie %q, want one SESSION_ID", i, sc)
				case i > 1 && len(sc) != 0:
					t.Errorf("request %d: Set-Cookie %q, want none (the ID did not change)", i, sc)
				}
				if got := resp.Header.Get("Vary"); got != "Cookie" {
					t.Errorf("request %d: Vary %q, want Cookie", i, got)
				}
			}
			if _, body := do(t, client, http.MethodGet, srv.URL+"/count"); body != `{"count":4}` {
				t.Errorf("GET /count: %s, want 4", body)
			}
		})
	}
}

func TestLogoutExpiresTheCookie(t *testing.T) {
	srv := newServer(t)
	client := newClient(t, srv)
	do(t, client, http.MethodPost, srv.URL+"/json")
	resp, _ := do(t, client, http.MethodPost, srv.URL+"/logout")
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("logout: status %d, want 204", resp.StatusCode)
	}
	sc := resp.Header.Get("Set-Cookie")
	if !strings.HasPrefix(sc, "SESSION_ID=;") || !strings.Contains(sc, "Max-Age=0") {
		t.Errorf("logout: Set-Cookie %q, want SESSION_ID expired", sc)
	}
	if _, body := do(t, client, http.MethodGet, srv.URL+"/count"); body != `{"count":0}` {
		t.Errorf("GET /count after logout: %s, want 0", body)
	}
}

// Concurrent requests of one session through gin lose no update.
func TestConcurrentIncrements(t *testing.T) {
	const workers, each = 16, 25
	srv := newServer(t)
	client := newClient(t, srv)
	do(t, client, http.MethodPost, srv.URL+"/json") // the session, and its cookie in the jar
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				resp, err := client.Post(srv.URL+"/string", "", nil)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("status %s", resp.Status)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, body := do(t, client, http.MethodGet, srv.URL+"/count"); body != fmt.Sprintf(`{"count":%d}`, 1+workers*each) {
		t.Errorf("GET /count: %s, want %d", body, 1+workers*each)
	}
}

// The binding is in c.Request.Context(), not in c (unless gin's
// ContextWithFallback is set).
func TestGinContextWithoutFallback(t *testing.T) {
	srv := newServer(t)
	if _, body := do(t, newClient(t, srv), http.MethodGet, srv.URL+"/gin-context"); body != "true" {
		t.Errorf("counts.Get(c) returned ErrNoBinding: %s, want true", body)
	}
}

func TestMiddlewareNilPanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.HasPrefix(fmt.Sprint(r), "ginsteward: ") {
			t.Errorf("recover() = %v, want a ginsteward: panic", r)
		}
	}()
	ginsteward.Middleware(nil)
}
