package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steward-sessions/steward/internal/redistest"
)

// device is one browser: its own cookie jar.
type device struct {
	t   *testing.T
	srv *httptest.Server
	c   *http.Client
}

func newDevice(t *testing.T, srv *httptest.Server) *device {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &device{t: t, srv: srv, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

// do makes a request and returns its status and body.
func (d *device) do(method, path string) (int, []byte) {
	d.t.Helper()
	req, err := http.NewRequest(method, d.srv.URL+path, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	resp, err := d.c.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (d *device) expect(method, path string, status int) []byte {
	d.t.Helper()
	got, body := d.do(method, path)
	if got != status {
		d.t.Fatalf("%s %s = %d %s, want %d", method, path, got, bytes.TrimSpace(body), status)
	}
	return body
}

func (d *device) cookie() string {
	u, _ := url.Parse(d.srv.URL)
	for _, c := range d.c.Jar.Cookies(u) {
		if c.Name == "SESSION_ID" {
			return c.Value
		}
	}
	return ""
}

func (d *device) sessions() []sessionJSON {
	d.t.Helper()
	var out []sessionJSON
	if err := json.Unmarshal(d.expect("GET", "/sessions", 200), &out); err != nil {
		d.t.Fatal(err)
	}
	return out
}

func (d *device) me() (user, flash string) {
	d.t.Helper()
	var v map[string]string
	if err := json.Unmarshal(d.expect("GET", "/me", 200), &v); err != nil {
		d.t.Fatal(err)
	}
	return v["user"], v["flash"]
}

func startApp(t *testing.T, cfg config) *httptest.Server {
	t.Helper()
	cfg.logOut = io.Discard
	a, err := newApp(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.handler)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.eng.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return srv
}

func storages(t *testing.T) map[string]config {
	return map[string]config{
		"memory":    {Storage: "memory"},
		"directory": {Storage: "directory", Dir: t.TempDir()},
		"redis":     {Storage: "redis"},
	}
}

// TestAccounts runs the whole contract on each storage.
func TestAccounts(t *testing.T) {
	for name, cfg := range storages(t) {
		t.Run(name, func(t *testing.T) {
			if cfg.Storage == "redis" {
				cfg.Redis = redistest.Start(t).URL()
			}
			cfg.MaxSessions = 3
			srv := startApp(t, cfg)
			phone, laptop, tablet := newDevice(t, srv), newDevice(t, srv), newDevice(t, srv)

			phone.expect("GET", "/me", 401)
			phone.expect("GET", "/sessions", 401)
			phone.expect("POST", "/login", 400)
			phone.expect("POST", "/flash?msg=x", 401)

			// Login renews the ID: an ID held before the login is dead.
			phone.expect("POST", "/flash?msg=x", 401) // no session yet
			phone.expect("POST", "/login?user=ann", 200)
			before := phone.cookie()
			if body := phone.expect("POST", "/login?user=ann", 200); !strings.Contains(string(body), `"user":"ann"`) {
				t.Fatalf("login body %s", body)
			}
			if after := phone.cookie(); after == before || after == "" {
				t.Fatal("login did not renew the session ID")
			}
			laptop.expect("POST", "/login?user=ann", 200)
			tablet.expect("POST", "/login?user=ann", 200)

			// Flash: shown once.
			phone.expect("POST", "/flash?msg=hello", 204)
			if u, f := phone.me(); u != "ann" || f != "hello" {
				t.Fatalf("me = %q, %q", u, f)
			}
			if _, f := phone.me(); f != "" {
				t.Fatalf("the flash was shown twice: %q", f)
			}

			// Listing: three sessions, the phone's flagged current.
			list := phone.sessions()
			if len(list) != 3 {
				t.Fatalf("%d sessions listed, want 3", len(list))
			}
			current := 0
			for _, s := range list {
				if s.Current {
					current++
				}
				if s.Handle == "" || s.Handle == phone.cookie() || s.Created.IsZero() {
					t.Fatalf("bad entry %+v", s)
				}
			}
			if current != 1 {
				t.Fatalf("%d current sessions listed", current)
			}

			// A fourth login evicts the least recently used (the laptop:
			// the phone and the tablet are used after it).
			tablet.me()
			phone.me()
			desktop := newDevice(t, srv)
			desktop.expect("POST", "/login?user=ann", 200)
			laptop.expect("GET", "/me", 401)
			if n := len(phone.sessions()); n != 3 {
				t.Fatalf("%d sessions after a 4th login with -max-sessions 3", n)
			}

			// Revoke one by handle: only the owner's handles work.
			var tabletHandle string
			for _, s := range tablet.sessions() {
				if s.Current {
					tabletHandle = s.Handle
				}
			}
			other := newDevice(t, srv)
			other.expect("POST", "/login?user=bob", 200)
			other.expect("POST", "/sessions/revoke?handle="+tabletHandle, 404)
			tablet.me()
			phone.expect("POST", "/sessions/revoke?handle="+tabletHandle, 204)
			tablet.expect("GET", "/me", 401)

			// Revoke the others: the desktop is logged out, the phone not.
			var r map[string]int
			if err := json.Unmarshal(phone.expect("POST", "/sessions/revoke-others", 200), &r); err != nil || r["revoked"] != 1 {
				t.Fatalf("revoke-others = %v, %v; want 1", r, err)
			}
			desktop.expect("GET", "/me", 401)
			if u, _ := phone.me(); u != "ann" {
				t.Fatal("revoke-others logged out the current session")
			}
			if u, _ := other.me(); u != "bob" {
				t.Fatal("another user's session was revoked")
			}

			phone.expect("POST", "/logout", 204)
			phone.expect("GET", "/me", 401)
		})
	}
}

// TestFlashOnceConcurrent: 16 concurrent GET /me of one session show a
// flash once.
func TestFlashOnceConcurrent(t *testing.T) {
	srv := startApp(t, config{Storage: "directory", Dir: t.TempDir()})
	d := newDevice(t, srv)
	d.expect("POST", "/login?user=ann", 200)
	for range 10 {
		d.expect("POST", "/flash?msg=once", 204)
		var mu sync.Mutex
		shown := 0
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				_, f := d.me()
				if f == "once" {
					mu.Lock()
					shown++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if shown != 1 {
			t.Fatalf("the flash was shown %d times", shown)
		}
	}
}

// TestRun: the program prints its address, serves, and stops with ctx.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{Addr: "127.0.0.1:0", Storage: "memory", logOut: io.Discard}, out)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "listening on http://") {
		if time.Now().After(deadline) {
			t.Fatal("no address printed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(out.String(), "listening on "))
	resp, err := http.Post(addr+"/login?user=u", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := parseArgs([]string{"-max-sessions", "-1"}, io.Discard); err == nil {
		t.Fatal("-max-sessions -1 accepted")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
