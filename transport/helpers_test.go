package transport_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/internal/fakeclock"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/transport"
)

// mapStorage is the smallest BytesStorage: a map under a mutex. Expiry is
// left to the engine, which checks its own records.
type mapStorage struct {
	mu sync.Mutex // protects m
	m  map[string][]byte
}

func newMapStorage() storage.Storage {
	return storage.FromBytes(&mapStorage{m: make(map[string][]byte)})
}

func (s *mapStorage) Load(_ context.Context, id string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[id]
	if !ok {
		return nil, storage.ErrNotFound
	}
	return v, nil
}

func (s *mapStorage) Save(_ context.Context, id string, data []byte, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[id] = data
	return nil
}

func (s *mapStorage) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

// clock is a fake clock for engine.Options.Now.
type clock = fakeclock.Clock

func newClock() *clock { return fakeclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) }

// logBuffer collects the engine's logs.
type logBuffer struct {
	mu  sync.Mutex // protects buf
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// counter is the session value of the test application.
type counter struct{ N int }

// app is the test application: an engine, one kind of counter sessions,
// and a server with a cookie-jar client.
type app struct {
	eng    *engine.Engine
	kind   *engine.Kind[counter]
	clock  *clock
	logs   *logBuffer
	srv    *httptest.Server
	client *http.Client // with a cookie jar
	plain  *http.Client // without one
}

type appConfig struct {
	bind func(k transport.Kind) transport.Binding // default: a default cookie
	kind engine.KindOptions                       // Storage: a map if nil, unless clientSide
	// clientSide registers the kind without a storage.
	clientSide bool
	wrap       func(mux *http.ServeMux, k *engine.Kind[counter])
}

// newApp starts the test application. Its routes:
//
//	GET  /noop   writes "ok", never touches the session
//	GET  /get    the count, or "none"
//	GET  /id     the session ID the request has
//	POST /inc    increments the count and writes it
//	POST /renew  renews the session's ID
//	POST /clear  clears the session
//
// An error from the engine is answered with 500 and its text, ErrRenewed
// with 409.
func newApp(t *testing.T, cfg appConfig) *app {
	t.Helper()
	a := &app{clock: newClock(), logs: &logBuffer{}}
	eng, err := engine.New(engine.Options{
		Now:    a.clock.Now,
		Logger: slog.New(slog.NewTextHandler(a.logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := eng.Close(ctx); err != nil {
			t.Errorf("closing the engine: %v", err)
		}
	})
	ko := cfg.kind
	if ko.Storage == nil && !cfg.clientSide {
		ko.Storage = newMapStorage()
	}
	kind, err := engine.Register[counter](eng, "SESSION_ID", ko)
	if err != nil {
		t.Fatal(err)
	}
	a.eng, a.kind = eng, kind

	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, err error) {
		code := http.StatusInternalServerError
		if errors.Is(err, engine.ErrRenewed) {
			code = http.StatusConflict // retry: the client has the new ID by now
		}
		http.Error(w, err.Error(), code)
	}
	mux.HandleFunc("GET /noop", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /get", func(w http.ResponseWriter, r *http.Request) {
		c, ok, err := kind.Get(r.Context())
		switch {
		case err != nil:
			fail(w, err)
		case !ok:
			io.WriteString(w, "none")
		default:
			fmt.Fprint(w, c.N)
		}
	})
	mux.HandleFunc("GET /id", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, kind.ID(r.Context()))
	})
	mux.HandleFunc("POST /inc", func(w http.ResponseWriter, r *http.Request) {
		c, err := kind.Update(r.Context(), func(c *counter) error { c.N++; return nil })
		if err != nil {
			fail(w, err)
			return
		}
		fmt.Fprint(w, c.N)
	})
	mux.HandleFunc("POST /renew", func(w http.ResponseWriter, r *http.Request) {
		if err := kind.Renew(r.Context()); err != nil {
			fail(w, err)
		}
	})
	mux.HandleFunc("POST /clear", func(w http.ResponseWriter, r *http.Request) {
		if err := kind.Clear(r.Context()); err != nil {
			fail(w, err)
		}
	})
	if cfg.wrap != nil {
		cfg.wrap(mux, kind)
	}

	bind := cfg.bind
	if bind == nil {
		bind = func(k transport.Kind) transport.Binding { return transport.Cookie(k, transport.CookieConfig{}) }
	}
	mw, err := transport.Middleware(bind(kind))
	if err != nil {
		t.Fatal(err)
	}
	a.srv = httptest.NewServer(mw(mux))
	t.Cleanup(a.srv.Close)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	a.client = &http.Client{Jar: jar, Transport: tr}
	a.plain = &http.Client{Transport: tr}
	return a
}

// response is what a test looks at in an answer.
type response struct {
	status int
	header http.Header
	body   string
}

// cookie returns the response's only Set-Cookie, parsed, or nil if it has
// none; more than one fails the test.
func (r response) cookie(t *testing.T) *http.Cookie {
	t.Helper()
	lines := r.header.Values("Set-Cookie")
	switch len(lines) {
	case 0:
		return nil
	case 1:
		c, err := http.ParseSetCookie(lines[0])
		if err != nil {
			t.Fatalf("Set-Cookie %q: %v", lines[0], err)
		}
		return c
	}
	t.Fatalf("%d Set-Cookie lines, want at most 1: %q", len(lines), lines)
	return nil
}

// do sends a request with client c; header lines are "Name: value".
func (a *app) do(t *testing.T, c *http.Client, method, path string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range header {
		name, value, _ := strings.Cut(h, ": ")
		req.Header.Add(name, value)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// ok is do, failing the test unless the status is 200.
func (a *app) ok(t *testing.T, c *http.Client, method, path string, header ...string) response {
	t.Helper()
	r := a.do(t, c, method, path, header...)
	if r.status != http.StatusOK {
		t.Fatalf("%s %s: status %d, body %q", method, path, r.status, r.body)
	}
	return r
}

// isConfigError fails the test unless err wraps engine.ErrConfig.
func isConfigError(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, engine.ErrConfig) {
		t.Fatalf("error %v does not wrap engine.ErrConfig", err)
	}
}

// httptestRecord serves one in-process request with h.
func httptestRecord(h http.Handler, method, target string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
