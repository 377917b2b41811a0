package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/steward-sessions/steward/internal/redistest"
	"github.com/steward-sessions/steward/storage"
)

// testServer runs the counter's handler on a real loopback server.
type testServer struct {
	t    *testing.T
	app  *app
	srv  *httptest.Server
	logs *logBuffer // what the counter logged (nil if cfg.logOut was given)
}

// logBuffer collects a counter's logs; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
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

// captureLogs points cfg's logs at a buffer that is printed if t fails.
func captureLogs(t *testing.T, cfg *config) *logBuffer {
	t.Helper()
	logs := &logBuffer{}
	cfg.logOut = logs
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the counter's logs:\n%s", logs)
		}
	})
	return logs
}

func newTestServer(t *testing.T, cfg config) *testServer {
	t.Helper()
	if cfg.Storage == "" {
		cfg.Storage = "memory"
	}
	if cfg.Transport == "" {
		cfg.Transport = "cookie"
	}
	var logs *logBuffer
	if cfg.logOut == nil {
		logs = captureLogs(t, &cfg)
	}
	a, err := newApp(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{t: t, app: a, srv: httptest.NewServer(a.handler), logs: logs}
	t.Cleanup(func() {
		ts.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return ts
}

// client is one user agent: a cookie jar, or the X-Session header it was
// last given.
type client struct {
	ts     *testServer
	http   *http.Client
	header bool
	mu     sync.Mutex
	id     string // header transport
}

func (ts *testServer) client(header bool) *client {
	jar, _ := cookiejar.New(nil)
	return &client{ts: ts, header: header, http: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// do sends a request and returns the status, the decoded count (-1 if the
// body had none) and the response, whose Body still holds the whole body.
func (c *client) do(method, path string) (int, int, *http.Response) {
	c.ts.t.Helper()
	req, _ := http.NewRequest(method, c.ts.srv.URL+path, nil)
	if c.header {
		c.mu.Lock()
		if c.id != "" {
			req.Header.Set("X-Session", c.id)
		}
		c.mu.Unlock()
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.ts.t.Errorf("%s %s: %v", method, path, err)
		return 0, -1, nil
	}
	defer resp.Body.Close()
	if c.header {
		if v, ok := resp.Header["X-Session"]; ok {
			c.mu.Lock()
			c.id = v[0]
			c.mu.Unlock()
		}
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.ts.t.Errorf("%s %s: reading the body: %v", method, path, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	body := map[string]any{}
	_ = json.Unmarshal(raw, &body)
	n := -1
	if f, ok := body["count"].(float64); ok {
		n = int(f)
	}
	return resp.StatusCode, n, resp
}

func (c *client) count() int {
	c.ts.t.Helper()
	status, n, _ := c.do("GET", "/")
	if status != http.StatusOK {
		c.ts.t.Fatalf("GET / = %d", status)
	}
	return n
}

// hammer runs workers goroutines sending each POST /increment through c and
// returns how many were answered 200.
func hammer(t *testing.T, clients []*client, workers, each int, pause bool) int64 {
	var ok atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			c := clients[w%len(clients)]
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range each {
				status, _, _ := c.do("POST", "/increment")
				if status != http.StatusOK {
					t.Errorf("POST /increment = %d", status)
					return
				}
				ok.Add(1)
				if pause && i%10 == 0 {
					time.Sleep(time.Duration(r.IntN(4000)) * time.Microsecond)
				}
			}
		})
	}
	wg.Wait()
	return ok.Load()
}

// TestConcurrentIncrements: 64 connections × 1,000 increments of one session
// through a real server and client; the count is exact.
func TestConcurrentIncrements(t *testing.T) {
	for _, tr := range []string{"cookie", "header"} {
		t.Run(tr, func(t *testing.T) {
			ts := newTestServer(t, config{Transport: tr})
			c := ts.client(tr == "header")
			if status, n, _ := c.do("POST", "/increment"); status != 200 || n != 1 {
				t.Fatalf("first increment: %d %d", status, n)
			}
			const workers, each = 64, 1000
			ok := hammer(t, []*client{c}, workers, each, false)
			if got := c.count(); int64(got) != ok+1 || got != workers*each+1 {
				t.Fatalf("count = %d, %d increments answered 200, want %d", got, ok, workers*each+1)
			}
		})
	}
}

// TestConcurrentIncrementsPassivating: the same with a passivation timeout
// of two milliseconds, over several sessions that go idle now and then, so
// actors stop and restart all through the run.
func TestConcurrentIncrementsPassivating(t *testing.T) {
	ts := newTestServer(t, config{PassivateAfter: 2 * time.Millisecond})
	clients := make([]*client, 8)
	for i := range clients {
		clients[i] = ts.client(false)
		clients[i].do("POST", "/increment")
	}
	const workers, each = 64, 1000
	ok := hammer(t, clients, workers, each, true)
	total := 0
	for _, c := range clients {
		total += c.count()
	}
	if int64(total) != ok+int64(len(clients)) || ok != workers*each {
		t.Fatalf("total = %d, %d increments answered 200", total, ok)
	}
	if st := ts.app.eng.Stats(); st.Passivated == 0 {
		t.Fatalf("no actor passivated during the run: %+v", st)
	}
}

func TestEndpoints(t *testing.T) {
	ts := newTestServer(t, config{})
	c := ts.client(false)

	status, n, resp := c.do("GET", "/")
	if status != 200 || n != 0 || resp.Header.Get("Set-Cookie") != "" {
		t.Fatalf("GET / without a session: %d %d Set-Cookie=%q", status, n, resp.Header.Get("Set-Cookie"))
	}
	if ts.app.eng.Stats().Spawned != 0 {
		t.Fatal("GET / without a session spawned an actor")
	}
	status, n, resp = c.do("POST", "/increment")
	first := cookieValue(resp, "SESSION_ID")
	if status != 200 || n != 1 || first == "" {
		t.Fatalf("first increment: %d %d cookie=%q", status, n, first)
	}
	c.do("POST", "/increment")
	status, n, resp = c.do("POST", "/renew")
	renewed := cookieValue(resp, "SESSION_ID")
	if status != 200 || n != 2 || renewed == "" || renewed == first {
		t.Fatalf("renew: %d %d cookie %q (was %q)", status, n, renewed, first)
	}
	if got := c.count(); got != 2 {
		t.Fatalf("count after renew = %d", got)
	}
	// A request that arrives with the pre-login cookie is refused with 409,
	// counts nothing and gets no cookie.
	req, _ := http.NewRequest("POST", ts.srv.URL+"/increment", nil)
	req.Header.Set("Cookie", "SESSION_ID="+first)
	old, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	old.Body.Close()
	if old.StatusCode != http.StatusConflict || len(old.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("increment with the renewed-away cookie: %d Set-Cookie=%q", old.StatusCode, old.Header.Values("Set-Cookie"))
	}
	if got := c.count(); got != 2 {
		t.Fatalf("count after a refused increment = %d", got)
	}
	status, _, resp = c.do("POST", "/logout")
	if status != http.StatusNoContent || !strings.Contains(resp.Header.Get("Set-Cookie"), "SESSION_ID=;") {
		t.Fatalf("logout: %d Set-Cookie=%q", status, resp.Header.Get("Set-Cookie"))
	}
	if got := c.count(); got != 0 {
		t.Fatalf("count after logout = %d", got)
	}
	if status, _, _ := c.do("GET", "/increment"); status != http.StatusMethodNotAllowed {
		t.Fatalf("GET /increment = %d", status)
	}
	if status, n, _ := ts.client(false).do("POST", "/renew"); status != 200 || n != 0 {
		t.Fatalf("renew without a session: %d %d", status, n)
	}
}

func TestHeaderTransport(t *testing.T) {
	ts := newTestServer(t, config{Transport: "header"})
	c := ts.client(true)
	c.do("POST", "/increment")
	first := c.id
	if first == "" {
		t.Fatal("no X-Session in the response")
	}
	c.do("POST", "/renew")
	if c.id == first || c.id == "" {
		t.Fatalf("renew: X-Session %q (was %q)", c.id, first)
	}
	if got := c.count(); got != 1 {
		t.Fatalf("count = %d", got)
	}
	status, _, resp := c.do("POST", "/logout")
	if v, ok := resp.Header["X-Session"]; status != 204 || !ok || v[0] != "" {
		t.Fatalf("logout: %d X-Session=%q", status, resp.Header["X-Session"])
	}
}

// failing is a storage that can be switched off.
type failing struct {
	*storage.Memory
	down atomic.Bool
}

var errDown = errors.New("disk on fire")

func (f *failing) Save(ctx context.Context, id string, data []byte, exp time.Time) error {
	if f.down.Load() {
		return errDown
	}
	return f.Memory.Save(ctx, id, data, exp)
}

func (f *failing) Load(ctx context.Context, id string) ([]byte, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.Memory.Load(ctx, id)
}

func TestStorageFailureIs503(t *testing.T) {
	store := &failing{Memory: storage.NewMemory(storage.MemoryOptions{})}
	ts := newTestServer(t, config{store: store})
	c := ts.client(false)
	c.do("POST", "/increment")
	store.down.Store(true)
	status, _, resp := c.do("POST", "/increment")
	if status != http.StatusServiceUnavailable || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("increment with the storage down: %d %q", status, resp.Header.Get("Content-Type"))
	}
	wantGenericError(t, resp, "storage unavailable", errDown.Error())
	status, _, resp = ts.client(false).do("POST", "/increment")
	if status != http.StatusServiceUnavailable {
		t.Fatalf("new session with the storage down: %d", status)
	}
	wantGenericError(t, resp, "storage unavailable", errDown.Error())
	if !strings.Contains(ts.logs.String(), errDown.Error()) {
		t.Fatalf("the storage's error is not in the log:\n%s", ts.logs)
	}
	store.down.Store(false)
	if status, n, _ := c.do("POST", "/increment"); status != 200 || n != 2 {
		t.Fatalf("after recovery: %d %d", status, n)
	}
}

// wantGenericError checks that resp's body is exactly {"error": msg} and
// holds none of the leaks: the details of a failure go to the log only.
func wantGenericError(t *testing.T, resp *http.Response, msg string, leaks ...string) {
	t.Helper()
	raw, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	var body map[string]string
	if err := json.Unmarshal(raw, &body); err != nil || len(body) != 1 || body["error"] != msg {
		t.Fatalf("error body %q, want {\"error\":%q}", raw, msg)
	}
	for _, leak := range leaks {
		if leak != "" && bytes.Contains(bytes.ToLower(raw), bytes.ToLower([]byte(leak))) {
			t.Fatalf("error body %q gives away %q", raw, leak)
		}
	}
}

// TestDirectoryFailureBody: when the session directory goes away (here it
// is replaced by a file, which stops even root), the client is told
// "storage unavailable" and nothing else; the path and the system's error
// are in the log.
func TestDirectoryFailureBody(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sessions")
	ts := newTestServer(t, config{Storage: "directory", Dir: dir})
	c := ts.client(false)
	if status, n, _ := c.do("POST", "/increment"); status != 200 || n != 1 {
		t.Fatalf("first increment: %d %d", status, n)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	leaks := []string{dir, filepath.Base(filepath.Dir(dir)), "sessions", "not a directory", "storage:", "open "}
	for _, cl := range []*client{c, ts.client(false)} { // an existing session, a new one
		status, _, resp := cl.do("POST", "/increment")
		if status != http.StatusServiceUnavailable {
			t.Fatalf("increment with the directory gone: %d", status)
		}
		wantGenericError(t, resp, "storage unavailable", leaks...)
	}
	// The log says what failed (the Directory noticed its directory was
	// replaced, and names it); the body above does not.
	if logs := ts.logs.String(); !strings.Contains(logs, dir) || !strings.Contains(logs, "path=/increment") {
		t.Fatalf("the failure's details are not in the log:\n%s", logs)
	}
}

// TestBadInput: hostile cookies and headers never cause a 500 or an adopted
// ID.
func TestBadInput(t *testing.T) {
	for _, tr := range []string{"cookie", "header"} {
		t.Run(tr, func(t *testing.T) {
			ts := newTestServer(t, config{Transport: tr})
			hostile := []string{
				"garbage!!", strings.Repeat("a", 10<<10), "../../etc/passwd", "a/b", "..", "%00", "a\tb",
				"6f1c2e0a-1b2c-4d3e-8f90-a1b2c3d4e5f6", "é", `"quoted"`, "a;b=c",
			}
			for _, h := range hostile {
				for _, path := range []string{"/", "/increment", "/renew", "/logout"} {
					method := "POST"
					if path == "/" {
						method = "GET"
					}
					req, _ := http.NewRequest(method, ts.srv.URL+path, nil)
					if tr == "cookie" {
						req.Header.Add("Cookie", "SESSION_ID="+h)
						req.Header.Add("Cookie", "SESSION_ID="+h+"; SESSION_ID=x")
					} else {
						req.Header["X-Session"] = []string{h, h}
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode >= 500 {
						t.Fatalf("%s %s with %.20q: %d", method, path, h, resp.StatusCode)
					}
					var got string
					if tr == "cookie" {
						got = cookieValue(resp, "SESSION_ID")
					} else {
						got = resp.Header.Get("X-Session")
					}
					if got != "" && got == h {
						t.Fatalf("%s %s adopted the client's ID %.20q", method, path, h)
					}
					if path == "/increment" && !storage.ValidID(got) {
						t.Fatalf("increment with %.20q answered ID %.20q", h, got)
					}
				}
			}
		})
	}
}

// built is the counter's binary, built once for the tests that run it.
var built struct {
	once sync.Once
	path string
	err  error
}

// counterBinary builds the command (once) and returns its path.
func counterBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a binary")
	}
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "counter-test-")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "counter")
		if out, err := exec.Command("go", "build", "-o", built.path, ".").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.path != "" {
		_ = os.RemoveAll(filepath.Dir(built.path))
	}
	os.Exit(code)
}

// runCommand starts the binary with args and the extra environment env,
// checks its first line, calls use with the URL it printed, then stops it
// with SIGTERM and expects exit status 0.
func runCommand(t *testing.T, bin string, env, args []string, use func(url string)) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, secretEnv+"=") { // the tests choose
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening on http://127.0.0.1:") {
		t.Fatalf("first line %q, %v", line, err)
	}
	use(strings.TrimSpace(strings.TrimPrefix(line, "listening on ")))
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

// expectCounts sends method path n times through hc, expecting the counts
// from first on.
func expectCounts(t *testing.T, hc *http.Client, url, method, path string, first, n int) {
	t.Helper()
	for want := first; want < first+n; want++ {
		req, _ := http.NewRequest(method, url+path, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Count int }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if body.Count != want {
			t.Fatalf("%s %s answered %d, want %d", method, path, body.Count, want)
		}
	}
}

// TestMainCommand builds the command and runs it as the README says, on
// its default storage (the cached directory): it prints the address,
// counts, exits 0 on SIGTERM, and after a restart on the same directory
// the count is still there.
func TestMainCommand(t *testing.T) {
	bin := counterBinary(t)
	dir := filepath.Join(t.TempDir(), "sessions")
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	// run starts the counter, sends method path n times expecting the
	// counts from first on, and stops it with SIGTERM.
	run := func(method, path string, first, n int) {
		runCommand(t, bin, nil, []string{"-addr", "127.0.0.1:0", "-dir", dir}, func(url string) {
			expectCounts(t, hc, url, method, path, first, n)
		})
	}
	run("POST", "/increment", 1, 3)
	run("GET", "/", 3, 1) // restarted: the session survived
	run("POST", "/increment", 4, 1)
}

// TestMainCommandSecret: the command takes its secret from STEWARD_SECRET
// or from -secret-file. In client mode the count travels in the cookie,
// sealed with that key, so it survives a restart only if the key came
// through: a restart with the same key reads it, one without a key does
// not.
func TestMainCommandSecret(t *testing.T) {
	bin := counterBinary(t)
	file := filepath.Join(t.TempDir(), "counter.key")
	if err := os.WriteFile(file, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	client := []string{"-addr", "127.0.0.1:0", "-mode", "client"}
	env := []string{secretEnv + "=" + testSecret}
	runCommand(t, bin, env, client, func(url string) {
		expectCounts(t, hc, url, "POST", "/increment", 1, 2)
	})
	runCommand(t, bin, nil, append(client, "-secret-file", file), func(url string) {
		expectCounts(t, hc, url, "POST", "/increment", 3, 1) // same key, from the file
	})
	runCommand(t, bin, env, client, func(url string) {
		expectCounts(t, hc, url, "GET", "/", 3, 1)
	})
	runCommand(t, bin, nil, client, func(url string) {
		expectCounts(t, hc, url, "GET", "/", 0, 1) // a random key: the cookie does not open
	})
}

func cookieValue(resp *http.Response, name string) string {
	if resp == nil {
		return ""
	}
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

const testSecret = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

// TestClientMode: the count travels encrypted in the SESSION cookie or the
// X-Session header; the endpoints behave as in server mode.
func TestClientMode(t *testing.T) {
	for _, tr := range []string{"cookie", "header"} {
		t.Run(tr, func(t *testing.T) {
			ts := newTestServer(t, config{Mode: "client", Secret: testSecret, Transport: tr})
			c := ts.client(tr == "header")
			for want := 1; want <= 3; want++ {
				status, n, resp := c.do("POST", "/increment")
				if status != 200 || n != want {
					t.Fatalf("increment: %d %d", status, n)
				}
				if tr == "cookie" && cookieValue(resp, "SESSION") == "" {
					t.Fatal("no SESSION cookie")
				}
			}
			if status, n, _ := c.do("POST", "/renew"); status != 200 || n != 3 {
				t.Fatalf("renew: %d %d", status, n)
			}
			if got := c.count(); got != 3 {
				t.Fatalf("count = %d", got)
			}
			c.do("POST", "/logout")
			if got := c.count(); got != 0 {
				t.Fatalf("count after logout = %d", got)
			}
			if n := ts.app.eng.Stats().Spawned; n != 0 {
				t.Fatalf("client mode spawned %d actors", n)
			}
		})
	}
	// A value sealed under one secret does not read under another.
	a := newTestServer(t, config{Mode: "client", Secret: testSecret})
	c := a.client(false)
	_, _, resp := c.do("POST", "/increment")
	v := cookieValue(resp, "SESSION")
	b := newTestServer(t, config{Mode: "client", Secret: strings.Repeat("ab", 32)})
	req, _ := http.NewRequest("GET", b.srv.URL+"/", nil)
	req.Header.Set("Cookie", "SESSION="+v)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var body struct{ Count int }
	_ = json.NewDecoder(r.Body).Decode(&body)
	if r.StatusCode != 200 || body.Count != 0 {
		t.Fatalf("a value under another key: %d %d", r.StatusCode, body.Count)
	}
}

// TestSignedIDs: with -secret in server mode the cookie carries a signed ID.
func TestSignedIDs(t *testing.T) {
	ts := newTestServer(t, config{Secret: testSecret})
	c := ts.client(false)
	_, _, resp := c.do("POST", "/increment")
	if v := cookieValue(resp, "SESSION_ID"); len(v) <= 36 {
		t.Fatalf("cookie %q is not a signed ID", v)
	}
	if got := c.count(); got != 1 {
		t.Fatalf("count = %d", got)
	}
	for _, bad := range []config{{Secret: "zz"}, {Secret: "00"}, {Mode: "sideways"}} {
		bad.logOut = io.Discard
		if _, err := newApp(bad); err == nil {
			t.Fatalf("config %+v accepted", bad)
		}
	}
}

// env is a fake environment for parseArgs.
func env(kv ...string) func(string) string {
	return func(k string) string {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == k {
				return kv[i+1]
			}
		}
		return ""
	}
}

// mustParse is parseArgs that fails t on an error.
func mustParse(t *testing.T, getenv func(string) string, args ...string) config {
	t.Helper()
	cfg, err := parseArgs(args, getenv, io.Discard)
	if err != nil {
		t.Fatalf("parseArgs(%q): %v", args, err)
	}
	return cfg
}

// TestSecretSources: -secret-file, STEWARD_SECRET and -secret give the same
// key from the same hex: a value sealed by a counter that read its key
// from one opens in a counter that read it from another, and not in one
// with another key.
func TestSecretSources(t *testing.T) {
	file := filepath.Join(t.TempDir(), "counter.key")
	if err := os.WriteFile(file, []byte("  "+testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile := mustParse(t, env(), "-storage", "memory", "-mode", "client", "-secret-file", file)
	fromEnv := mustParse(t, env(secretEnv, testSecret), "-storage", "memory", "-mode", "client")
	fromFlag := mustParse(t, env(), "-storage", "memory", "-mode", "client", "-secret", testSecret)
	other := mustParse(t, env(secretEnv, strings.Repeat("ab", 32)), "-storage", "memory", "-mode", "client")
	if fromFile.SecretFile != file || fromEnv.SecretEnv != testSecret || fromFlag.Secret != testSecret {
		t.Fatalf("parsed %+v, %+v, %+v", fromFile, fromEnv, fromFlag)
	}
	// seal returns the SESSION cookie after two increments.
	seal := func(cfg config) string {
		c := newTestServer(t, cfg).client(false)
		c.do("POST", "/increment")
		_, _, resp := c.do("POST", "/increment")
		return cookieValue(resp, "SESSION")
	}
	// open returns the count a counter reads from the cookie v.
	open := func(cfg config, v string) int {
		ts := newTestServer(t, cfg)
		req, _ := http.NewRequest("GET", ts.srv.URL+"/", nil)
		req.Header.Set("Cookie", "SESSION="+v)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Count int }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return body.Count
	}
	for _, pair := range [][2]config{{fromFile, fromEnv}, {fromEnv, fromFile}, {fromFlag, fromFile}} {
		if n := open(pair[1], seal(pair[0])); n != 2 {
			t.Fatalf("a value sealed with the key from one source read as %d under the other", n)
		}
	}
	if n := open(other, seal(fromFile)); n != 0 {
		t.Fatalf("a value sealed under another key read as %d", n)
	}
}

// TestSecretErrors: a secret given two ways, a missing or oversized file
// and a malformed key stop the counter at start-up, with errors that never
// quote what they read.
func TestSecretErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", testSecret)
	const junk = "not-a-key-but-a-secret-all-the-same"
	for name, cfg := range map[string]config{
		"file and env":  {SecretFile: good, SecretEnv: testSecret},
		"flag and env":  {Secret: testSecret, SecretEnv: testSecret},
		"file and flag": {SecretFile: good, Secret: testSecret},
		"missing file":  {SecretFile: filepath.Join(dir, "missing")},
		"junk file":     {SecretFile: write("junk", junk)},
		"short key":     {SecretFile: write("short", testSecret[:62])},
		"huge file":     {SecretFile: write("huge", strings.Repeat("0", maxSecretFile+1))},
		"junk env":      {SecretEnv: junk},
		"junk flag":     {Secret: junk},
	} {
		for _, mode := range []string{"server", "client"} {
			cfg.Mode, cfg.Storage, cfg.logOut = mode, "memory", io.Discard
			a, err := newApp(cfg)
			if err == nil {
				_ = a.close(context.Background())
				t.Fatalf("%s, %s mode: accepted", name, mode)
			}
			if strings.Contains(err.Error(), junk) || strings.Contains(err.Error(), testSecret) {
				t.Fatalf("%s: the error quotes the secret: %v", name, err)
			}
		}
	}
	if _, err := parseArgs([]string{"-secret-file"}, env(), io.Discard); err == nil {
		t.Fatal("-secret-file without a path accepted")
	}
	if _, err := parseArgs([]string{"stray"}, env(), io.Discard); err == nil {
		t.Fatal("a stray argument accepted")
	}
}

// TestSecretWarnings: -secret works but warns that the command line is
// readable by every local user; a secret file that other users can read
// is warned about; the environment and a private file are not.
func TestSecretWarnings(t *testing.T) {
	dir := t.TempDir()
	private := filepath.Join(dir, "private")
	open := filepath.Join(dir, "open")
	if err := os.WriteFile(private, []byte(testSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(open, []byte(testSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg  config
		warn string // "" for none
	}{
		{config{Secret: testSecret}, "command line"},
		{config{SecretFile: open}, "chmod 600"},
		{config{SecretFile: private}, ""},
		{config{SecretEnv: testSecret}, ""},
	} {
		ts := newTestServer(t, tc.cfg)
		logs := ts.logs.String()
		if tc.warn != "" && !strings.Contains(logs, tc.warn) {
			t.Fatalf("%+v: no warning %q in the log:\n%s", tc.cfg, tc.warn, logs)
		}
		if tc.warn == "" && strings.Contains(logs, "WARN") {
			t.Fatalf("%+v: unexpected warning:\n%s", tc.cfg, logs)
		}
		if strings.Contains(logs, testSecret) {
			t.Fatalf("the log holds the secret:\n%s", logs)
		}
		c := ts.client(false)
		c.do("POST", "/increment")
		if got := c.count(); got != 1 {
			t.Fatalf("%+v: count = %d", tc.cfg, got)
		}
	}
}

// TestRedisStorage: -storage redis counts exactly with concurrent
// requests, answers 503 while Redis is down, and recovers when it is back,
// without a restart of the counter.
func TestRedisStorage(t *testing.T) {
	srv := redistest.Start(t)
	ts := newTestServer(t, config{Storage: "redis", Redis: srv.URL()})
	c := ts.client(false)
	c.do("POST", "/increment")
	if ok := hammer(t, []*client{c}, 16, 50, false); ok != 800 {
		t.Fatalf("%d increments answered", ok)
	}
	if got := c.count(); got != 801 {
		t.Fatalf("count = %d, want 801", got)
	}
	srv.Stop()
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	leaks := []string{u.Host, u.Port(), "127.0.0.1", "redis", "dial", "refused"}
	for _, path := range []string{"/", "/increment"} {
		method := "POST"
		if path == "/" {
			method = "GET"
		}
		status, _, resp := c.do(method, path)
		if status != http.StatusServiceUnavailable || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s %s with Redis down: %d", method, path, status)
		}
		wantGenericError(t, resp, "storage unavailable", leaks...)
	}
	if logs := ts.logs.String(); !strings.Contains(logs, u.Port()) {
		t.Fatalf("the Redis failure's details are not in the log:\n%s", logs)
	}
	srv.Restart() // empty: persistence is off
	// The client library reconnects each of its pipelined connections on
	// its next use, so a few more requests may fail; wait until a run of
	// them goes through, then count exactly.
	waitUntil(t, "Redis traffic to recover", func() bool {
		for range 16 {
			if status, _, _ := ts.client(false).do("POST", "/increment"); status != 200 {
				return false
			}
		}
		return true
	})
	c2 := ts.client(false)
	for want := 1; want <= 3; want++ {
		if status, n, _ := c2.do("POST", "/increment"); status != 200 || n != want {
			t.Fatalf("after Redis came back: %d %d", status, n)
		}
	}
}

// waitUntil polls cond until it holds or a generous deadline passes; it
// never asserts a duration.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// running is a counter started by run, as main starts it, on a loopback
// port.
type running struct {
	url  string // as printed: "http://127.0.0.1:PORT" or "https://..."
	addr string // 127.0.0.1:PORT
	logs *logBuffer
}

// startRun runs the counter with the flags args (on 127.0.0.1:0 and the
// memory storage unless args say otherwise) until the test ends; run must
// then return nil.
func startRun(t *testing.T, args ...string) *running {
	t.Helper()
	cfg := mustParse(t, env(), append([]string{"-addr", "127.0.0.1:0", "-storage", "memory"}, args...)...)
	logs := captureLogs(t, &cfg)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, cfg, pw)
		pw.Close()
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	go io.Copy(io.Discard, pr) // never block run on its stdout
	if err != nil {
		cancel()
		t.Fatalf("run printed %q: %v (run: %v)", line, err, <-done)
	}
	u := strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
	if u == strings.TrimSpace(line) {
		t.Fatalf("first line %q", line)
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return &running{url: u, addr: parsed.Host, logs: logs}
}

// dial opens a raw TCP connection to the counter.
func (r *running) dial(t *testing.T) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// closedByServer reads from conn (through rd, which may hold buffered
// bytes) until the server closes it. The read deadline is a generous
// guard against a test that would hang, not a measure: the server's own
// timeouts, a fraction of it, must end the connection first.
func closedByServer(t *testing.T, conn net.Conn, rd io.Reader) {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err := io.Copy(io.Discard, rd)
	var ne net.Error
	switch {
	case err == nil, errors.Is(err, syscall.ECONNRESET): // EOF or a reset: closed by the server
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatal("the server kept the connection open")
	default:
		t.Fatalf("reading until the server closes: %v", err)
	}
}

// TestSlowClientsAreCut: with small timeouts given by the flags, a client
// that never finishes its headers, one that never finishes its body, and
// one that keeps a keep-alive connection idle each have their connection
// closed by the server.
func TestSlowClientsAreCut(t *testing.T) {
	r := startRun(t, "-read-header-timeout", "100ms", "-read-timeout", "300ms", "-idle-timeout", "100ms")

	t.Run("headers", func(t *testing.T) {
		conn := r.dial(t)
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\nX-Slow: a", r.addr) // and never the rest
		closedByServer(t, conn, conn)
	})

	t.Run("body", func(t *testing.T) {
		conn := r.dial(t)
		fmt.Fprintf(conn, "POST /increment HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000\r\n\r\nfirst bytes", r.addr)
		closedByServer(t, conn, conn)
	})

	t.Run("idle", func(t *testing.T) {
		conn := r.dial(t)
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", r.addr)
		rd := bufio.NewReader(conn)
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close || !strings.Contains(string(body), `"count":0`) {
			t.Fatalf("first request: %d close=%v %q", resp.StatusCode, resp.Close, body)
		}
		closedByServer(t, conn, rd) // kept alive, then idle
	})
}

// TestHeaderLimit: request headers beyond 32 KiB are refused with 431,
// before the handler; within it, a request with large cookies is served.
func TestHeaderLimit(t *testing.T) {
	r := startRun(t)
	hc := &http.Client{Timeout: 30 * time.Second}
	get := func(headerBytes int) int {
		req, _ := http.NewRequest("GET", r.url+"/", nil)
		req.Header.Set("Cookie", "SESSION_ID="+strings.Repeat("a", headerBytes))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := get(3 * 4096); status != 200 {
		t.Fatalf("12 KiB of cookies: %d", status)
	}
	if status := get(64 << 10); status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("64 KiB of headers: %d", status)
	}
}

// TestServerFlags: every timeout must be positive; the defaults are.
func TestServerFlags(t *testing.T) {
	cfg := mustParse(t, env())
	srv, err := newServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if srv.ReadHeaderTimeout != defaultReadHeaderTimeout || srv.ReadTimeout != defaultReadTimeout ||
		srv.WriteTimeout != defaultWriteTimeout || srv.IdleTimeout != defaultIdleTimeout || srv.MaxHeaderBytes != maxHeaderBytes {
		t.Fatalf("defaults: %+v", srv)
	}
	for _, f := range []string{"-read-header-timeout", "-read-timeout", "-write-timeout", "-idle-timeout"} {
		for _, v := range []string{"0", "-1s"} {
			cfg := mustParse(t, env(), f, v)
			if _, err := newServer(cfg); err == nil || !strings.Contains(err.Error(), f) {
				t.Fatalf("%s %s: %v", f, v, err)
			}
			if err := run(context.Background(), cfg, io.Discard); err == nil {
				t.Fatalf("run with %s %s started", f, v)
			}
		}
	}
}

// setCookie returns the Set-Cookie line of resp for the cookie name.
func setCookie(resp *http.Response, name string) string {
	for _, line := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(line, name+"=") {
			return line
		}
	}
	return ""
}

// TestSecureCookies: with -secure (TLS terminated in front) the cookies
// are Secure, HttpOnly, host-only on Path=/ and named __Host-, in server
// and client mode; the bare names are not read any more. Without it they
// are not Secure (plain HTTP on loopback keeps working).
func TestSecureCookies(t *testing.T) {
	for _, mode := range []string{"server", "client"} {
		t.Run(mode, func(t *testing.T) {
			name := "SESSION_ID"
			if mode == "client" {
				name = "SESSION"
			}
			ts := newTestServer(t, config{Mode: mode, Secure: true, SecretEnv: testSecret})
			c := ts.client(false)
			_, _, resp := c.do("POST", "/increment")
			line := setCookie(resp, "__Host-"+name)
			for _, attr := range []string{"; Secure", "; HttpOnly", "; Path=/", "; SameSite=Lax"} {
				if !strings.Contains(line, attr) {
					t.Fatalf("Set-Cookie %q lacks %q", line, attr)
				}
			}
			if strings.Contains(strings.ToLower(line), "domain=") || setCookie(resp, name) != "" {
				t.Fatalf("Set-Cookie %q", resp.Header.Values("Set-Cookie"))
			}
			// The jar keeps a Secure cookie off plain HTTP, as a browser
			// would: send it by hand, as the HTTPS proxy would pass it on.
			v := cookieValue(resp, "__Host-"+name)
			get := func(cookie string) int {
				req, _ := http.NewRequest("GET", ts.srv.URL+"/", nil)
				req.Header.Set("Cookie", cookie)
				r, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Body.Close()
				var body struct{ Count int }
				_ = json.NewDecoder(r.Body).Decode(&body)
				return body.Count
			}
			if n := get("__Host-" + name + "=" + v); n != 1 {
				t.Fatalf("count with the __Host- cookie = %d", n)
			}
			if n := get(name + "=" + v); n != 0 {
				t.Fatalf("count with the bare name = %d", n)
			}
		})
	}
	plain := newTestServer(t, config{})
	_, _, resp := plain.client(false).do("POST", "/increment")
	if line := setCookie(resp, "SESSION_ID"); line == "" || strings.Contains(line, "Secure") {
		t.Fatalf("without -secure: Set-Cookie %q", line)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key to dir and
// returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "counter test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLS: with -tls-cert and -tls-key the counter serves HTTPS, says so
// on its first line, and its cookie is a Secure __Host- cookie that a
// client's jar sends back over HTTPS. A lone -tls-cert, or files that do
// not load, stop it before it listens.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	r := startRun(t, "-tls-cert", certFile, "-tls-key", keyFile)
	if !strings.HasPrefix(r.url, "https://127.0.0.1:") {
		t.Fatalf("listening on %q", r.url)
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
	for want := 1; want <= 2; want++ {
		resp, err := hc.Post(r.url+"/increment", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Count int }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.TLS == nil || body.Count != want {
			t.Fatalf("increment over HTTPS: %d, want %d (TLS %v)", body.Count, want, resp.TLS != nil)
		}
		if line := setCookie(resp, "__Host-SESSION_ID"); want == 1 && !strings.Contains(line, "; Secure") {
			t.Fatalf("Set-Cookie %q", resp.Header.Values("Set-Cookie"))
		}
	}
	// Plain HTTP to the HTTPS port gets no count.
	if resp, err := http.Get("http://" + r.addr + "/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP answered 200 on the HTTPS port")
		}
	}
	for _, args := range [][]string{
		{"-tls-cert", certFile},
		{"-tls-key", keyFile},
		{"-tls-cert", keyFile, "-tls-key", certFile},
		{"-tls-cert", filepath.Join(dir, "missing"), "-tls-key", keyFile},
	} {
		cfg := mustParse(t, env(), append([]string{"-addr", "127.0.0.1:0", "-storage", "memory"}, args...)...)
		cfg.logOut = io.Discard
		var out bytes.Buffer
		if err := run(context.Background(), cfg, &out); err == nil || out.Len() != 0 {
			t.Fatalf("%q: run = %v, printed %q", args, err, out.String())
		}
	}
}

// TestSessionIDs: the counter's server-side IDs are 26 base32 characters
// from crypto/rand.Text (130 random bits), each new session its own.
func TestSessionIDs(t *testing.T) {
	ts := newTestServer(t, config{})
	seen := make(map[string]bool)
	for range 20 {
		_, _, resp := ts.client(false).do("POST", "/increment")
		id := cookieValue(resp, "SESSION_ID")
		if len(id) != 26 || strings.Trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" || seen[id] {
			t.Fatalf("session ID %q (seen before: %v)", id, seen[id])
		}
		seen[id] = true
	}
}

// TestCrossOrigin: a browser's POST from another origin (Sec-Fetch-Site,
// or an Origin that is not this host) is refused with 403 before it
// reaches a session; same-origin POSTs, POSTs without those headers (curl)
// and cross-origin GETs pass.
func TestCrossOrigin(t *testing.T) {
	ts := newTestServer(t, config{})
	send := func(method, path string, h ...string) *http.Response {
		req, _ := http.NewRequest(method, ts.srv.URL+path, nil)
		for i := 0; i+1 < len(h); i += 2 {
			req.Header.Set(h[i], h[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(raw))
		return resp
	}
	for _, h := range [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site"},
		{"Origin", "http://attacker.example"},
	} {
		for _, path := range []string{"/increment", "/renew", "/logout"} {
			resp := send("POST", path, h...)
			if resp.StatusCode != http.StatusForbidden || len(resp.Header.Values("Set-Cookie")) != 0 {
				t.Fatalf("POST %s with %q: %d, Set-Cookie %q", path, h, resp.StatusCode, resp.Header.Values("Set-Cookie"))
			}
			wantGenericError(t, resp, "cross-origin request refused")
		}
	}
	if n := ts.app.eng.Stats().Spawned; n != 0 {
		t.Fatalf("refused requests spawned %d actors", n)
	}
	for _, h := range [][]string{{"Sec-Fetch-Site", "same-origin"}, {"Origin", ts.srv.URL}, nil} {
		if resp := send("POST", "/increment", h...); resp.StatusCode != 200 {
			t.Fatalf("POST /increment with %q: %d", h, resp.StatusCode)
		}
	}
	if resp := send("GET", "/", "Sec-Fetch-Site", "cross-site"); resp.StatusCode != 200 {
		t.Fatalf("cross-site GET /: %d", resp.StatusCode)
	}
}

// TestResponseHeaders: every response, errors and 204 included, is
// no-store and nosniff; one that sets a cookie also varies on Cookie.
func TestResponseHeaders(t *testing.T) {
	store := &failing{Memory: storage.NewMemory(storage.MemoryOptions{})}
	ts := newTestServer(t, config{store: store})
	c := ts.client(false)
	check := func(what string, resp *http.Response) {
		t.Helper()
		if resp.Header.Get("Cache-Control") == "" || !strings.Contains(strings.Join(resp.Header.Values("Cache-Control"), ","), "no-store") ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s: headers %v", what, resp.Header)
		}
	}
	_, _, resp := c.do("POST", "/increment")
	check("increment", resp)
	if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Cookie") {
		t.Fatalf("Set-Cookie without Vary: Cookie: %v", resp.Header)
	}
	_, _, resp = c.do("GET", "/")
	check("get", resp)
	store.down.Store(true)
	_, _, resp = c.do("POST", "/increment")
	check("storage down", resp)
	store.down.Store(false)
	_, _, resp = c.do("POST", "/logout")
	check("logout", resp)
}
