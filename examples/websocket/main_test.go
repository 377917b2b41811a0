package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// guard bounds a test's waits on the server, so that a broken server fails
// the test instead of hanging it; no test expects it to expire.
const guard = 30 * time.Second

// newTestServer runs the example's handler on a loopback server, with a
// short poll so that the tests do not wait a quarter of a second a step.
func newTestServer(t *testing.T) (*app, *httptest.Server) {
	t.Helper()
	a, err := newApp(config{Poll: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.handler)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		if err := a.close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return a, srv
}

// browser is one user agent: a cookie jar shared by its tabs.
type browser struct {
	t    *testing.T
	base string
	http *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: base, http: &http.Client{Jar: jar, Timeout: guard}}
}

// post sends POST path and returns the status and the decoded count (-1
// without one).
func (b *browser) post(path string) (int, int) {
	b.t.Helper()
	resp, err := b.http.Post(b.base+path, "", nil)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Count *int `json:"count"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if body.Count == nil {
		return resp.StatusCode, -1
	}
	return resp.StatusCode, *body.Count
}

// dial opens the page's WebSocket with the browser's cookies; the
// handshake's response is returned too.
func (b *browser) dial(ctx context.Context) (*websocket.Conn, *http.Response) {
	b.t.Helper()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(b.base, "http")+"/ws",
		&websocket.DialOptions{HTTPClient: b.http})
	if err != nil {
		b.t.Fatalf("dial: %v", err)
	}
	b.t.Cleanup(func() { conn.CloseNow() })
	return conn, resp
}

// next reads the next count the server pushes.
func next(t *testing.T, ctx context.Context, conn *websocket.Conn) int {
	t.Helper()
	var msg struct {
		Count *int `json:"count"`
	}
	if err := wsjson.Read(ctx, conn, &msg); err != nil {
		t.Fatalf("reading a count: %v", err)
	}
	if msg.Count == nil {
		t.Fatal("a message without a count")
	}
	return *msg.Count
}

// closedWith fails the test unless the next read finds the socket closed
// with code and reason.
func closedWith(t *testing.T, ctx context.Context, conn *websocket.Conn, code websocket.StatusCode, reason string) {
	t.Helper()
	_, data, err := conn.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("read %q, %v; want the socket closed with %d %q", data, err, code, reason)
	}
	if ce.Code != code || ce.Reason != reason {
		t.Errorf("closed with %d %q, want %d %q", ce.Code, ce.Reason, code, reason)
	}
}

// TestSocket runs the example end to end over loopback, through the real
// middleware, with a real WebSocket client: the upgrade creates the session
// and its 101 response carries the cookie; an increment made by another
// request is pushed; a logout from another tab closes the socket.
func TestSocket(t *testing.T) {
	_, srv := newTestServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), guard)
	defer cancel()
	b := newBrowser(t, srv.URL)

	conn, resp := b.dial(ctx)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %d", resp.StatusCode)
	}
	var sid *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "SESSION_ID" {
			sid = c
		}
	}
	if sid == nil {
		t.Fatalf("the 101 response carries no session cookie: Set-Cookie %q", resp.Header.Values("Set-Cookie"))
	}
	if got := next(t, ctx, conn); got != 0 {
		t.Fatalf("first count %d, want 0", got)
	}

	// The cookie the upgrade set is the browser's: /inc reaches the same
	// session, and the socket pushes the new count.
	for want := 1; want <= 3; want++ {
		if status, n := b.post("/inc"); status != http.StatusOK || n != want {
			t.Fatalf("POST /inc = %d, count %d; want 200, %d", status, n, want)
		}
		if got := next(t, ctx, conn); got != want {
			t.Fatalf("pushed count %d, want %d", got, want)
		}
	}

	// A second socket of the same browser (another tab) sees the same
	// session and gets no new cookie.
	conn2, resp2 := b.dial(ctx)
	if got := resp2.Header.Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("the second tab's 101 sets %q, want no new cookie", got)
	}
	if got := next(t, ctx, conn2); got != 3 {
		t.Errorf("second tab's first count %d, want 3", got)
	}

	// Logging out in another tab ends the session: both sockets close.
	if status, _ := b.post("/logout"); status != http.StatusNoContent {
		t.Fatalf("POST /logout = %d, want 204", status)
	}
	closedWith(t, ctx, conn, websocket.StatusNormalClosure, reasonEnded)
	closedWith(t, ctx, conn2, websocket.StatusNormalClosure, reasonEnded)

	// The logout expired the cookie: the next socket starts a new session.
	if got := b.http.Jar.Cookies(mustURL(t, srv.URL)); len(got) != 0 {
		t.Errorf("cookies %v left after logout", got)
	}
	conn3, _ := b.dial(ctx)
	if got := next(t, ctx, conn3); got != 0 {
		t.Errorf("count %d on a new session, want 0", got)
	}
}

// TestOtherBrowser checks that a socket carries its own session only: an
// increment by another browser is not pushed to it, and its logout does not
// close it.
func TestOtherBrowser(t *testing.T) {
	_, srv := newTestServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), guard)
	defer cancel()
	alice, bob := newBrowser(t, srv.URL), newBrowser(t, srv.URL)
	conn, _ := alice.dial(ctx)
	if got := next(t, ctx, conn); got != 0 {
		t.Fatalf("first count %d, want 0", got)
	}
	bob.post("/inc")
	bob.post("/logout")
	// Alice's own increment is the next thing her socket sees.
	if _, n := alice.post("/inc"); n != 1 {
		t.Fatalf("alice's count %d, want 1", n)
	}
	if got := next(t, ctx, conn); got != 1 {
		t.Errorf("pushed %d, want alice's 1", got)
	}
}

// TestCloseEndsSockets checks that closing the app ends an open socket with
// 1001 and the reason, and that close can be called twice.
func TestCloseEndsSockets(t *testing.T) {
	a, srv := newTestServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), guard)
	defer cancel()
	conn, _ := newBrowser(t, srv.URL).dial(ctx)
	next(t, ctx, conn)
	closed := make(chan error, 1)
	go func() { closed <- a.close(ctx) }()
	closedWith(t, ctx, conn, websocket.StatusGoingAway, reasonStopping)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := a.close(ctx); err != nil {
		t.Errorf("second close: %v", err)
	}
}

func TestPage(t *testing.T) {
	_, srv := newTestServer(t)
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"/ws"`) {
		t.Errorf("GET / = %d, %d bytes without the socket's path", resp.StatusCode, len(body))
	}
	if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("the page sets %q; only /ws, /inc create a session", got)
	}
}

// TestMainCommand builds the command, checks its first line, serves one
// socket, and stops it with SIGTERM: the socket is closed with 1001 and
// the process exits 0.
func TestMainCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "websocket")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-poll", "10ms")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening on http://127.0.0.1:") {
		t.Fatalf("first line %q, %v", line, err)
	}
	base := strings.TrimSpace(strings.TrimPrefix(line, "listening on "))

	ctx, cancel := context.WithTimeout(t.Context(), guard)
	defer cancel()
	b := newBrowser(t, base)
	conn, _ := b.dial(ctx)
	if got := next(t, ctx, conn); got != 0 {
		t.Fatalf("first count %d, want 0", got)
	}
	if _, n := b.post("/inc"); n != 1 {
		t.Fatalf("count %d after POST /inc, want 1", n)
	}
	if got := next(t, ctx, conn); got != 1 {
		t.Fatalf("pushed %d, want 1", got)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	closedWith(t, ctx, conn, websocket.StatusGoingAway, reasonStopping)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
