package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/internal/fakeclock"
	"github.com/steward-sessions/steward/storage"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ioTimeout bounds every network wait of the tests, so that a bug fails a
// test instead of hanging it.
const ioTimeout = 10 * time.Second

// testConfig configures startServer. The zero value is a memory storage,
// the real clock and the Server's defaults.
type testConfig struct {
	storage     storage.Storage
	now         func() time.Time
	idleTimeout time.Duration
}

// testServer is a Server on 127.0.0.1:0 with its own engine.
type testServer struct {
	addr   string
	eng    *engine.Engine
	cancel context.CancelFunc
	done   chan error // receives Serve's result
	once   sync.Once
}

func startServer(t *testing.T, cfg testConfig) *testServer {
	t.Helper()
	eng, err := engine.New(engine.Options{Now: cfg.now})
	if err != nil {
		t.Fatal(err)
	}
	st := cfg.storage
	if st == nil {
		st = storage.NewMemory(storage.MemoryOptions{Now: cfg.now})
	}
	kind, err := engine.RegisterRaw(eng, "counter", engine.KindOptions{Storage: st})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{addr: ln.Addr().String(), eng: eng, cancel: cancel, done: make(chan error, 1)}
	srv := &Server{Kind: kind, IdleTimeout: cfg.idleTimeout}
	go func() { ts.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

// stop cancels Serve, checks that it returns nil promptly, and closes the
// engine. Calls after the first do nothing.
func (ts *testServer) stop(t *testing.T) {
	t.Helper()
	ts.once.Do(func() {
		ts.cancel()
		select {
		case err := <-ts.done:
			if err != nil {
				t.Errorf("Serve returned %v after cancel, want nil", err)
			}
			// Serve waits for its connection goroutines: none may be
			// left, not even one on its way out.
			if n := connGoroutines(); n > 0 {
				t.Errorf("%d connection goroutines still run after Serve returned", n)
			}
		case <-time.After(ioTimeout):
			t.Fatal("Serve did not return after its context was cancelled")
		}
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := ts.eng.Close(ctx); err != nil {
			t.Errorf("engine Close: %v", err)
		}
	})
}

// connGoroutines counts the goroutines that run Server.serveConn now.
// Unlike goleak, it looks once and does not wait for them to end.
func connGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), ".(*Server).serveConn(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// client is one protocol connection.
type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, r: bufio.NewReader(c)}
}

// roundTrip sends line and returns the reply without its line ending. It
// is safe to call from any goroutine.
func (cl *client) roundTrip(line string) (string, error) {
	cl.c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(cl.c, line+"\n"); err != nil {
		return "", err
	}
	return cl.readReply()
}

func (cl *client) readReply() (string, error) {
	cl.c.SetReadDeadline(time.Now().Add(ioTimeout))
	reply, err := cl.r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reading the reply: %w (got %q)", err, reply)
	}
	if !strings.HasSuffix(reply, "\r\n") {
		return "", fmt.Errorf("reply %q does not end in CRLF", reply)
	}
	return strings.TrimSuffix(reply, "\r\n"), nil
}

// do sends line and returns the reply, failing the test on I/O errors.
// Call it from the test's goroutine only.
func (cl *client) do(line string) string {
	cl.t.Helper()
	reply, err := cl.roundTrip(line)
	if err != nil {
		cl.t.Fatalf("%.40q: %v", line, err)
	}
	return reply
}

// expect sends line and checks that the reply is want.
func (cl *client) expect(line, want string) {
	cl.t.Helper()
	if got := cl.do(line); got != want {
		cl.t.Errorf("%.40q: got %q, want %q", line, got, want)
	}
}

// ok sends line and returns the argument of its "OK <arg>" reply.
func (cl *client) ok(line string) string {
	cl.t.Helper()
	reply := cl.do(line)
	arg, found := strings.CutPrefix(reply, "OK ")
	if !found || arg == "" {
		cl.t.Fatalf("%.40q: got %q, want OK <value>", line, reply)
	}
	return arg
}

// expectClosed checks that the server closed the connection.
func (cl *client) expectClosed() {
	cl.t.Helper()
	cl.c.SetReadDeadline(time.Now().Add(ioTimeout))
	b, err := cl.r.ReadByte()
	if err == nil {
		cl.t.Fatalf("read %q, want the connection closed", b)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		cl.t.Fatal("the server did not close the connection")
	}
}

func TestRoundTrip(t *testing.T) {
	ts := startServer(t, testConfig{})
	cl := dial(t, ts.addr)

	id := cl.ok("NEW")
	if !storage.ValidID(id) {
		t.Fatalf("NEW returned %q, not a valid session ID", id)
	}
	cl.expect("GET "+id, "OK 0")
	cl.expect("INCR "+id, "OK 1")
	cl.expect("incr "+id, "OK 2") // verbs are case-insensitive
	cl.expect("GET "+id+"\r", "OK 2")

	other := cl.ok("NEW")
	if other == id {
		t.Fatalf("two NEWs returned the same ID %q", id)
	}
	cl.expect("GET "+other, "OK 0")

	renewed := cl.ok("RENEW " + id)
	if renewed == id {
		t.Fatalf("RENEW returned the old ID %q", id)
	}
	cl.expect("GET "+renewed, "OK 2")
	cl.expect("DEL "+renewed, "OK")
	cl.expect("GET "+renewed, "ERR no session")
	cl.expect("INCR "+renewed, "ERR no session")
	cl.expect("RENEW "+renewed, "ERR no session")
	cl.expect("DEL "+renewed, "OK") // ending no session is not an error
	cl.expect("GET "+other, "OK 0")

	// A session outlives its connection.
	cl2 := dial(t, ts.addr)
	cl2.expect("INCR "+other, "OK 1")

	cl.expect("QUIT", "OK bye")
	cl.expectClosed()
	cl2.expect("GET "+other, "OK 1")
}

func TestPipelined(t *testing.T) {
	ts := startServer(t, testConfig{})
	cl := dial(t, ts.addr)
	cl.c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(cl.c, "NEW\r\nGET nope\nbogus\r\nQUIT\nGET nope\n"); err != nil {
		t.Fatal(err)
	}
	want := []string{"OK *", "ERR no session", "ERR unknown command", "OK bye"}
	for i, w := range want {
		got, err := cl.readReply()
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if w == "OK *" && strings.HasPrefix(got, "OK ") || got == w {
			continue
		}
		t.Errorf("reply %d: got %q, want %q", i, got, w)
	}
	cl.expectClosed() // nothing after QUIT is answered

	// A reply is not held back for a command that has not fully arrived.
	cl = dial(t, ts.addr)
	cl.c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(cl.c, "NEW\nGE"); err != nil {
		t.Fatal(err)
	}
	if got, err := cl.readReply(); err != nil || !strings.HasPrefix(got, "OK ") {
		t.Fatalf("got %q, %v; want OK <id>", got, err)
	}
	cl.expect("T nope", "ERR no session")
}

func TestBadInput(t *testing.T) {
	ts := startServer(t, testConfig{})
	cl := dial(t, ts.addr)
	id := cl.ok("NEW")

	tests := []struct {
		name, line, want string
	}{
		{"empty", "", "ERR unknown command"},
		{"blank", " \t ", "ERR unknown command"},
		{"CR only", "\r", "ERR unknown command"},
		{"NUL only", "\x00", "ERR unknown command"},
		{"unknown verb", "FROB " + id, "ERR unknown command"},
		{"verb prefix", "GE " + id, "ERR unknown command"},
		{"GET without ID", "GET", "ERR unknown command"},
		{"INCR without ID", "INCR", "ERR unknown command"},
		{"RENEW without ID", "RENEW  ", "ERR unknown command"},
		{"DEL without ID", "DEL", "ERR unknown command"},
		{"NEW with argument", "NEW " + id, "ERR unknown command"},
		{"QUIT with argument", "QUIT now", "ERR unknown command"},
		{"GET two IDs", "GET " + id + " " + id, "ERR unknown command"},
		{"path traversal", "GET ../x", "ERR no session"},
		{"path traversal INCR", "INCR ../../etc/passwd", "ERR no session"},
		{"path traversal RENEW", "RENEW ../x", "ERR no session"},
		{"path traversal DEL", "DEL ../x", "OK"},
		{"500-byte ID", "GET " + strings.Repeat("a", 500), "ERR no session"},
		{"500-byte INCR", "INCR " + strings.Repeat("a", 500), "ERR no session"},
		{"NUL ID", "GET \x00", "ERR no session"},
		{"NUL inside ID", "GET " + id[:8] + "\x00" + id[8:], "ERR no session"},
		{"NUL DEL", "DEL \x00", "OK"},
		{"invalid UTF-8", "GET \xff\xfe\xfd", "ERR no session"},
		{"percent-encoded", "GET %2e%2e%2fx", "ERR no session"},
		{"unknown valid ID", "GET 00000000-0000-4000-8000-000000000000", "ERR no session"},
		{"ID case matters", "GET " + strings.ToUpper(id), "ERR no session"},
		{"128-byte ID", "GET " + strings.Repeat("A", storage.MaxIDLen), "ERR no session"},
		{"129-byte ID", "GET " + strings.Repeat("A", storage.MaxIDLen+1), "ERR no session"},
		{"1 KiB line", "GET " + strings.Repeat("x", MaxLineLen-4), "ERR no session"},
		{"1 KiB line CRLF", "GET " + strings.Repeat("x", MaxLineLen-4) + "\r", "ERR no session"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cl.do(tt.line); got != tt.want {
				t.Errorf("%.60q: got %q, want %q", tt.line, got, tt.want)
			}
		})
	}
	// The session and the connection survived all of it.
	cl.expect("INCR "+id, "OK 1")
}

func TestLineTooLong(t *testing.T) {
	ts := startServer(t, testConfig{})
	tests := []struct {
		name string
		line string // sent as is
	}{
		{"1025 bytes", strings.Repeat("x", MaxLineLen+1) + "\n"},
		{"1025 bytes CRLF", strings.Repeat("x", MaxLineLen+1) + "\r\n"},
		{"command then padding", "GET " + strings.Repeat(" ", MaxLineLen) + "\n"},
		{"no newline", strings.Repeat("x", 2*MaxLineLen)},
		{"32 KiB", strings.Repeat("NEW ", 8<<10) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := dial(t, ts.addr)
			cl.c.SetDeadline(time.Now().Add(ioTimeout))
			if _, err := io.WriteString(cl.c, tt.line); err != nil {
				t.Fatal(err)
			}
			// Let the server's drain see the end at once.
			if err := cl.c.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := cl.readReply()
			if err != nil {
				t.Fatal(err)
			}
			if got != "ERR line too long" {
				t.Errorf("got %q, want %q", got, "ERR line too long")
			}
			cl.expectClosed()
		})
	}
}

func TestUnterminatedLastLine(t *testing.T) {
	ts := startServer(t, testConfig{})
	cl := dial(t, ts.addr)
	id := cl.ok("NEW")
	cl.c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(cl.c, "INCR "+id); err != nil {
		t.Fatal(err)
	}
	cl.c.(*net.TCPConn).CloseWrite()
	got, err := cl.readReply()
	if err != nil {
		t.Fatal(err)
	}
	if got != "OK 1" {
		t.Errorf("got %q, want %q", got, "OK 1")
	}
	cl.expectClosed()
}

func TestConcurrentIncr(t *testing.T) {
	const clients, incrs = 32, 100
	ts := startServer(t, testConfig{})
	id := dial(t, ts.addr).ok("NEW")

	conns := make([]*client, clients)
	for i := range conns {
		conns[i] = dial(t, ts.addr)
	}
	replies := make([][]string, clients)
	var wg sync.WaitGroup
	for i, cl := range conns {
		wg.Go(func() {
			for range incrs {
				reply, err := cl.roundTrip("INCR " + id)
				if err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
				replies[i] = append(replies[i], reply)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// Atomic increments hand out every value from 1 to the total once.
	seen := make(map[int]bool)
	for i, rs := range replies {
		for _, r := range rs {
			n, err := strconv.Atoi(strings.TrimPrefix(r, "OK "))
			if err != nil || !strings.HasPrefix(r, "OK ") || n < 1 || n > clients*incrs || seen[n] {
				t.Fatalf("client %d: unexpected or repeated reply %q", i, r)
			}
			seen[n] = true
		}
	}
	dial(t, ts.addr).expect("GET "+id, "OK "+strconv.Itoa(clients*incrs))
}

// fakeClock is a clock that moves only when told.
type fakeClock = fakeclock.Clock

func TestRenewGrace(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ts := startServer(t, testConfig{now: clock.Now})
	cl := dial(t, ts.addr)

	old := cl.ok("NEW")
	cl.expect("INCR "+old, "OK 1")
	renewed := cl.ok("RENEW " + old)
	if renewed == old {
		t.Fatalf("RENEW returned the old ID")
	}

	// From then on the old ID is refused, and reveals nothing; the new one
	// holds the session.
	cl.expect("GET "+old, "ERR renewed")
	cl.expect("INCR "+old, "ERR renewed")
	cl.expect("RENEW "+old, "ERR renewed")
	cl.expect("GET "+renewed, "OK 1")
	cl.expect("INCR "+renewed, "OK 2")

	// After the grace period (30 seconds by default) it is just unknown.
	clock.Advance(31 * time.Second)
	cl.expect("GET "+old, "ERR no session")
	cl.expect("INCR "+old, "ERR no session")
	cl.expect("GET "+renewed, "OK 2")
	cl.expect("INCR "+renewed, "OK 3")

	// DEL of an old ID within its grace period ends the session under
	// both IDs ("log out everywhere" must not leave the renewed one).
	again := cl.ok("RENEW " + renewed)
	cl.expect("DEL "+renewed, "OK")
	cl.expect("GET "+renewed, "ERR no session")
	cl.expect("GET "+again, "ERR no session")
}

// downStorage is a storage whose every call fails.
type downStorage struct{}

var errDown = errors.New("test storage is down")

func (downStorage) Load(context.Context, string) ([]byte, error)          { return nil, errDown }
func (downStorage) Save(context.Context, string, []byte, time.Time) error { return errDown }
func (downStorage) Delete(context.Context, string) error                  { return errDown }

func TestStorageDown(t *testing.T) {
	ts := startServer(t, testConfig{storage: storage.FromBytes(downStorage{})})
	cl := dial(t, ts.addr)
	valid := "00000000-0000-4000-8000-000000000000"
	for _, line := range []string{"NEW", "GET " + valid, "INCR " + valid, "RENEW " + valid, "DEL " + valid} {
		cl.expect(line, "ERR unavailable")
	}
	// A malformed ID never reaches the storage.
	cl.expect("GET ../x", "ERR no session")
	cl.expect("QUIT", "OK bye")
}

func TestIdleTimeout(t *testing.T) {
	ts := startServer(t, testConfig{idleTimeout: 50 * time.Millisecond})
	idle := dial(t, ts.addr)
	idle.expectClosed()

	// A line that never ends is idle too.
	slow := dial(t, ts.addr)
	io.WriteString(slow.c, "GET abc")
	slow.expectClosed()
}

func TestShutdown(t *testing.T) {
	ts := startServer(t, testConfig{})
	busy := dial(t, ts.addr)
	id := busy.ok("NEW")
	busy.expect("INCR "+id, "OK 1")
	idle := dial(t, ts.addr)
	partial := dial(t, ts.addr)
	io.WriteString(partial.c, "INCR "+id)
	quitting := dial(t, ts.addr) // lingering after QUIT
	quitting.expect("QUIT", "OK bye")

	ts.stop(t) // cancels Serve, waits for it, closes the engine
	for _, cl := range []*client{busy, idle, partial, quitting} {
		cl.expectClosed()
	}
	if _, err := net.DialTimeout("tcp", ts.addr, ioTimeout); err == nil {
		t.Error("the listener still accepts connections")
	}
	goleak.VerifyNone(t)
}

// stallHandler is a slog.Handler that holds up the goroutine that logs
// "connection closed" until release is closed.
type stallHandler struct {
	entered chan struct{} // closed when a goroutine is held
	once    *sync.Once
	release chan struct{}
}

func (h stallHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h stallHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h stallHandler) WithGroup(string) slog.Handler            { return h }

func (h stallHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "connection closed" {
		h.once.Do(func() { close(h.entered) })
		<-h.release
	}
	return nil
}

func TestShutdownWaitsForConnections(t *testing.T) {
	h := stallHandler{entered: make(chan struct{}), once: new(sync.Once), release: make(chan struct{})}
	eng, err := engine.New(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(context.Background())
	kind, err := engine.RegisterRaw(eng, "counter", engine.KindOptions{Storage: storage.NewMemory(storage.MemoryOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := &Server{Kind: kind, Logger: slog.New(h)}
	go func() { done <- srv.Serve(ctx, ln) }()
	dial(t, ln.Addr().String()).ok("NEW")

	cancel()
	<-h.entered // the connection goroutine is on its way out, and held
	select {
	case <-done:
		t.Fatal("Serve returned while a connection goroutine was still running")
	case <-time.After(100 * time.Millisecond):
	}
	close(h.release)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve returned %v", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Serve did not return")
	}
}

// failingListener fails every Accept with err.
type failingListener struct {
	net.Listener
	err error
}

func (l failingListener) Accept() (net.Conn, error) { return nil, l.err }

func TestServeAcceptError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	eng, err := engine.New(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(context.Background())
	kind, err := engine.RegisterRaw(eng, "counter", engine.KindOptions{Storage: storage.NewMemory(storage.MemoryOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	srv := &Server{Kind: kind}
	if err := srv.Serve(context.Background(), failingListener{ln, boom}); !errors.Is(err, boom) {
		t.Fatalf("Serve returned %v, want %v", err, boom)
	}
}

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	var stderr strings.Builder
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, outW, &stderr)
		outW.Close()
	}()

	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatalf("reading stdout: %v (stderr: %s)", err, stderr.String())
	}
	addr, found := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !found {
		t.Fatalf("stdout: got %q, want \"listening on ADDR\"", line)
	}
	cl := dial(t, addr)
	id := cl.ok("NEW")
	cl.expect("INCR "+id, "OK 1")

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run returned %v", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("run did not return after cancel")
	}
	cl.expectClosed()
	if stderr.Len() > 0 {
		t.Errorf("run logged without -v: %s", stderr.String())
	}
}

func TestRunBadFlags(t *testing.T) {
	var stderr strings.Builder
	for _, args := range [][]string{{"-nope"}, {"extra"}, {"-addr"}} {
		if err := run(context.Background(), args, io.Discard, &stderr); !errors.Is(err, errUsage) {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
	}
}
