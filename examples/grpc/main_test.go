package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// guard bounds every wait of the tests on the server, so that a broken
// server fails a test instead of hanging it; no test expects it to expire.
const guard = 30 * time.Second

// testServer is the example's app serving on 127.0.0.1:0.
type testServer struct {
	addr string
	app  *app
}

// startServer serves newApp(cfg) on a loopback port until the test ends.
func startServer(t *testing.T, cfg appConfig) *testServer {
	t.Helper()
	a, err := newApp(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, a)
}

// serve serves a on a loopback port until the test ends; then it stops
// gracefully and checks that Serve returned and the engine drained.
func serve(t *testing.T, a *app) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- a.srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := a.shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve returned %v after GracefulStop, want nil", err)
			}
		case <-time.After(guard):
			t.Error("Serve did not return after GracefulStop")
		}
	})
	return &testServer{addr: ln.Addr().String(), app: a}
}

// conn returns a client connection to ts, closed when the test ends
// (before the server stops), with opts added.
func (ts *testServer) conn(t *testing.T, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	cc, err := grpc.NewClient(ts.addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// client returns a client that keeps its session in a Jar.
func (ts *testServer) client(t *testing.T) (counterClient, *Jar) {
	t.Helper()
	jar := &Jar{}
	cc := ts.conn(t, grpc.WithUnaryInterceptor(jar.UnaryInterceptor()), grpc.WithStreamInterceptor(jar.StreamInterceptor()))
	return counterClient{cc}, jar
}

// bare returns a client without a jar: each call sends the session
// values of its context (see with) and nothing else.
func (ts *testServer) bare(t *testing.T) counterClient {
	t.Helper()
	return counterClient{ts.conn(t)}
}

// with returns a context that sends vals under MetadataKey, and bounds the
// call by guard.
func with(t *testing.T, vals ...string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	t.Cleanup(cancel)
	for _, v := range vals {
		ctx = metadata.AppendToOutgoingContext(ctx, MetadataKey, v)
	}
	return ctx
}

// sessionHeader returns the values of MetadataKey in a response header,
// and whether there were any.
func sessionHeader(md metadata.MD) (string, bool) {
	vs := md.Get(MetadataKey)
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

// wantCode checks that err is a status with code and, if msg is not "",
// that message.
func wantCode(t *testing.T, what string, err error, code codes.Code, msg string) {
	t.Helper()
	st, ok := status.FromError(err)
	switch {
	case err == nil:
		t.Errorf("%s: succeeded, want %v", what, code)
	case !ok:
		t.Errorf("%s: %v is not a status error", what, err)
	case st.Code() != code || msg != "" && st.Message() != msg:
		t.Errorf("%s: got %v %q, want %v %q", what, st.Code(), st.Message(), code, msg)
	}
}

// mustCount checks that a counting call returned want.
func mustCount(t *testing.T, what string, got int64, err error, want int64) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if got != want {
		t.Fatalf("%s: count %d, want %d", what, got, want)
	}
}

// streamN sends n increments on one IncrementStream of c and returns the
// counts, in order.
func streamN(ctx context.Context, c counterClient, n int) ([]int64, error) {
	s, err := c.IncrementStream(ctx)
	if err != nil {
		return nil, err
	}
	var got []int64
	for range n {
		if err := s.Send(&emptypb.Empty{}); err != nil {
			break // the status comes with Recv
		}
		v, err := s.Recv()
		if err != nil {
			return got, err
		}
		got = append(got, v.GetValue())
	}
	if err := s.CloseSend(); err != nil {
		return got, err
	}
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		return got, err
	}
	return got, nil
}

func TestOneSessionOverUnaryAndStream(t *testing.T) {
	ts := startServer(t, appConfig{})
	c, jar := ts.client(t)
	ctx := with(t)

	_, err := c.Get(ctx)
	wantCode(t, "Get before any session", err, codes.Unauthenticated, "no session")

	n, err := c.Increment(ctx)
	mustCount(t, "Increment", n, err, 1)
	v := jar.Value()
	if v == "" {
		t.Fatal("Increment created a session but sent no session-id header")
	}

	got, err := streamN(ctx, c, 3)
	if err != nil {
		t.Fatalf("IncrementStream: %v", err)
	}
	if want := []int64{2, 3, 4}; !equal(got, want) {
		t.Fatalf("IncrementStream counts %v, want %v", got, want)
	}
	// A stream that sends nothing touches nothing.
	if got, err := streamN(ctx, c, 0); err != nil || len(got) != 0 {
		t.Fatalf("empty IncrementStream: %v, %v", got, err)
	}
	n, err = c.Get(ctx)
	mustCount(t, "Get", n, err, 4)
	n, err = c.Increment(ctx)
	mustCount(t, "Increment", n, err, 5)
	if jar.Value() != v {
		t.Errorf("the session value changed without a renewal: %q, then %q", v, jar.Value())
	}

	// The server answers with a header only when something changed.
	var header metadata.MD
	if _, err := ts.bare(t).Get(with(t, v), grpc.Header(&header)); err != nil {
		t.Fatal(err)
	}
	if h, ok := sessionHeader(header); ok {
		t.Errorf("Get of a live session sent session-id %q, want no header", h)
	}
}

func TestStreamCreatesSession(t *testing.T) {
	ts := startServer(t, appConfig{})
	c, jar := ts.client(t)
	ctx := with(t)

	got, err := streamN(ctx, c, 3)
	if err != nil {
		t.Fatalf("IncrementStream: %v", err)
	}
	if want := []int64{1, 2, 3}; !equal(got, want) {
		t.Fatalf("IncrementStream counts %v, want %v", got, want)
	}
	if jar.Value() == "" {
		t.Fatal("the stream created a session but its header carried no session-id")
	}
	n, err := c.Get(ctx)
	mustCount(t, "Get after the stream", n, err, 3)

	// The header comes before the first reply: a client that reads it
	// then already has the ID.
	s, err := ts.bare(t).IncrementStream(with(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&emptypb.Empty{}); err != nil {
		t.Fatal(err)
	}
	md, err := s.Header()
	if err != nil {
		t.Fatal(err)
	}
	v, ok := sessionHeader(md)
	if !ok || v == "" {
		t.Fatalf("the first reply's header carries session-id %q (present %v), want a new value", v, ok)
	}
	if r, err := s.Recv(); err != nil || r.GetValue() != 1 {
		t.Fatalf("first reply %v, %v; want 1", r, err)
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("end of stream: %v", err)
	}
	n, err = ts.bare(t).Get(with(t, v))
	mustCount(t, "Get with the stream's new session", n, err, 1)
}

func TestConcurrentIncrements(t *testing.T) {
	const (
		callers = 64 // half unary, half streams
		each    = 50 // increments per caller
	)
	ts := startServer(t, appConfig{})
	c, jar := ts.client(t)
	ctx := with(t)

	// Caller 0's first increment creates the session.
	first, err := c.Increment(ctx)
	mustCount(t, "first Increment", first, err, 1)
	v := jar.Value()

	counts := make([][]int64, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			n := each
			if i == 0 {
				n-- // its first one is done
			}
			if i%2 == 1 {
				got, err := streamN(ctx, c, n)
				counts[i] = got
				if err != nil {
					t.Errorf("stream caller %d: %v", i, err)
				}
				return
			}
			for range n {
				got, err := c.Increment(ctx)
				if err != nil {
					t.Errorf("unary caller %d: %v", i, err)
					return
				}
				counts[i] = append(counts[i], got)
			}
		})
	}
	close(start)
	wg.Wait()
	counts[0] = append(counts[0], first)

	// Every acknowledged increment got its own count, from 1 to the total.
	seen := make(map[int64]bool)
	acked := 0
	for i, cs := range counts {
		for _, n := range cs {
			if n < 1 || n > callers*each || seen[n] {
				t.Fatalf("caller %d: count %d repeated or out of range", i, n)
			}
			seen[n] = true
			acked++
		}
	}
	if acked != callers*each {
		t.Errorf("%d increments acknowledged, want %d", acked, callers*each)
	}
	n, err := c.Get(ctx)
	mustCount(t, "final Get", n, err, int64(acked))
	if n != callers*each {
		t.Errorf("final count %d, want %d", n, callers*each)
	}
	if jar.Value() != v {
		t.Errorf("the session value changed during the run")
	}
}

func TestForgedID(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	ts := startServer(t, appConfig{Key: key})
	c, jar := ts.client(t)
	ctx := with(t)
	if _, err := c.Increment(ctx); err != nil {
		t.Fatal(err)
	}
	genuine := jar.Value()
	id := ts.app.sessions.Open(genuine)
	if id == "" {
		t.Fatal("the server's own value does not open")
	}

	// The genuine ID signed with another key, and signed with the server's
	// key for a kind of another name.
	otherKey, err := NewSessions(ts.app.sessions.kind, []byte(strings.Repeat("k", 32)), nil)
	if err != nil {
		t.Fatal(err)
	}
	withOtherKey, _ := otherKey.Seal(id)
	eng, err := engine.New(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(context.Background()) })
	another, err := engine.RegisterRaw(eng, "another", engine.KindOptions{Storage: storage.NewMemory(storage.MemoryOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	otherName, err := NewSessions(another, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	forAnotherKind, _ := otherName.Seal(id)
	flipped := []byte(genuine)
	if flipped[3] == 'A' {
		flipped[3] = 'B'
	} else {
		flipped[3] = 'A'
	}

	forged := []struct{ name, value string }{
		{"the bare ID, unsigned", id},
		{"signed with another key", withOtherKey},
		{"signed for another kind", forAnotherKind},
		{"one character changed", string(flipped)},
		{"truncated", genuine[:len(genuine)-2]},
		{"MAC only", genuine[len(genuine)-43:]},
		{"not base64url", "!!!!"},
		{"padding", genuine + "="},
		{"path", "../../etc/passwd"},
		{"long", strings.Repeat("A", 4000)},
		{"random", rand.Text() + rand.Text()},
	}
	bare := ts.bare(t)
	for _, f := range forged {
		t.Run(f.name, func(t *testing.T) {
			var header metadata.MD
			_, err := bare.Get(with(t, f.value), grpc.Header(&header))
			wantCode(t, "Get", err, codes.Unauthenticated, "no session")
			if h, ok := sessionHeader(header); !ok || h != "" {
				t.Errorf("Get: header session-id %q (present %v), want an empty value (forget it)", h, ok)
			}
			_, err = bare.Renew(with(t, f.value))
			wantCode(t, "Renew", err, codes.Unauthenticated, "no session")

			// A write is never applied to the forged ID: it starts a
			// session of its own.
			header = nil
			n, err := bare.Increment(with(t, f.value), grpc.Header(&header))
			mustCount(t, "Increment", n, err, 1)
			if h, _ := sessionHeader(header); h == "" || h == f.value || h == genuine {
				t.Errorf("Increment: header session-id %q, want a new value", h)
			}
			_, err = streamN(with(t, f.value), bare, 1)
			if err != nil {
				t.Errorf("IncrementStream: %v", err)
			}
			if err := bare.Logout(with(t, f.value)); err != nil {
				t.Errorf("Logout: %v", err)
			}
		})
	}

	// A forged value beside the genuine one does not hide it, also when a
	// proxy joined them into one value.
	n, err := bare.Get(with(t, "forged", withOtherKey, genuine))
	mustCount(t, "Get with forged values and the genuine one", n, err, 1)
	n, err = bare.Get(with(t, withOtherKey+", "+genuine))
	mustCount(t, "Get with values joined by a comma", n, err, 1)
	var values []string
	for range maxValues {
		values = append(values, withOtherKey)
	}
	_, err = bare.Get(with(t, append(values, genuine)...))
	wantCode(t, "Get with the genuine value past the limit", err, codes.Unauthenticated, "no session")
	// The genuine session saw none of it.
	n, err = c.Get(ctx)
	mustCount(t, "Get of the genuine session", n, err, 1)
}

func TestRenew(t *testing.T) {
	ts := startServer(t, appConfig{})
	c, jar := ts.client(t)
	ctx := with(t)
	for range 2 {
		if _, err := c.Increment(ctx); err != nil {
			t.Fatal(err)
		}
	}
	old := jar.Value()

	n, err := c.Renew(ctx)
	mustCount(t, "Renew", n, err, 2)
	renewed := jar.Value()
	if renewed == "" || renewed == old {
		t.Fatalf("Renew sent session-id %q, want a new value (old %q)", renewed, old)
	}

	// The old ID stops working, and creates nothing.
	bare := ts.bare(t)
	var header metadata.MD
	_, err = bare.Get(with(t, old), grpc.Header(&header))
	wantCode(t, "Get with the old ID", err, codes.Aborted, "")
	if h, ok := sessionHeader(header); ok {
		t.Errorf("Get with the old ID sent session-id %q, want no header (the client may hold the new one)", h)
	}
	_, err = bare.Increment(with(t, old))
	wantCode(t, "Increment with the old ID", err, codes.Aborted, "")
	_, err = streamN(with(t, old), bare, 1)
	wantCode(t, "IncrementStream with the old ID", err, codes.Aborted, "")
	_, err = bare.Renew(with(t, old))
	wantCode(t, "Renew with the old ID", err, codes.Aborted, "")

	// The new one holds the count.
	n, err = c.Get(ctx)
	mustCount(t, "Get with the new ID", n, err, 2)
	got, err := streamN(ctx, c, 1)
	if err != nil || !equal(got, []int64{3}) {
		t.Fatalf("IncrementStream with the new ID: %v, %v; want [3]", got, err)
	}

	_, err = ts.bare(t).Renew(with(t))
	wantCode(t, "Renew without a session", err, codes.Unauthenticated, "no session")
}

func TestLogout(t *testing.T) {
	ts := startServer(t, appConfig{})
	c, jar := ts.client(t)
	ctx := with(t)
	if _, err := c.Increment(ctx); err != nil {
		t.Fatal(err)
	}
	v := jar.Value()

	var header metadata.MD
	if err := c.Logout(ctx, grpc.Header(&header)); err != nil {
		t.Fatal(err)
	}
	if h, ok := sessionHeader(header); !ok || h != "" {
		t.Errorf("Logout: header session-id %q (present %v), want an empty value", h, ok)
	}
	if jar.Value() != "" {
		t.Errorf("the jar kept %q after Logout", jar.Value())
	}
	bare := ts.bare(t)
	_, err := bare.Get(with(t, v))
	wantCode(t, "Get after Logout", err, codes.Unauthenticated, "no session")

	// Logging out without a session is fine, and says nothing.
	header = nil
	if err := bare.Logout(with(t), grpc.Header(&header)); err != nil {
		t.Errorf("Logout without a session: %v", err)
	}
	if h, ok := sessionHeader(header); ok {
		t.Errorf("Logout without a session sent session-id %q", h)
	}
}

// A stream updates its session by ID once its header is out: a logout or a
// renewal in another call ends it at its next message.
func TestStreamOutlivedBySession(t *testing.T) {
	for _, tt := range []struct {
		name string
		end  func(counterClient, context.Context) error
		code codes.Code
	}{
		{"logout", func(c counterClient, ctx context.Context) error { return c.Logout(ctx) }, codes.Unauthenticated},
		{"renew", func(c counterClient, ctx context.Context) error { _, err := c.Renew(ctx); return err }, codes.Aborted},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, appConfig{})
			c, jar := ts.client(t)
			ctx := with(t)
			if _, err := c.Increment(ctx); err != nil {
				t.Fatal(err)
			}
			v := jar.Value()
			s, err := ts.bare(t).IncrementStream(with(t, v))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Send(&emptypb.Empty{}); err != nil {
				t.Fatal(err)
			}
			if r, err := s.Recv(); err != nil || r.GetValue() != 2 {
				t.Fatalf("first reply %v, %v; want 2", r, err)
			}
			if err := tt.end(c, ctx); err != nil {
				t.Fatal(err)
			}
			_ = s.Send(&emptypb.Empty{})
			_, err = s.Recv()
			wantCode(t, "the stream's next message", err, tt.code, "")
		})
	}
}

// failingStorage fails every write while fail is set, with an error that
// holds what must never reach a client.
type failingStorage struct {
	storage.Storage
	mu   sync.Mutex // protects fail
	fail bool
}

var errDisk = errors.New("write /var/lib/secret/path: no space left on device")

func (s *failingStorage) setFail(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = v
}

func (s *failingStorage) failing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fail
}

func (s *failingStorage) Write(ctx context.Context, id string, expires time.Time, fn func(io.Writer) error) error {
	if s.failing() {
		return errDisk
	}
	return s.Storage.Write(ctx, id, expires, fn)
}

func TestStorageFailure(t *testing.T) {
	st := &failingStorage{Storage: storage.NewMemory(storage.MemoryOptions{})}
	ts := startServer(t, appConfig{Storage: st})
	c, _ := ts.client(t)
	ctx := with(t)
	if _, err := c.Increment(ctx); err != nil {
		t.Fatal(err)
	}
	st.setFail(true)
	_, err := c.Increment(ctx)
	wantCode(t, "Increment", err, codes.Unavailable, "storage unavailable")
	_, err = streamN(ctx, c, 2)
	wantCode(t, "IncrementStream", err, codes.Unavailable, "storage unavailable")
	_, err = ts.bare(t).Increment(with(t))
	wantCode(t, "Increment creating a session", err, codes.Unavailable, "storage unavailable")
	st.setFail(false)
	n, err := c.Increment(ctx)
	mustCount(t, "Increment after the storage came back", n, err, 2)
}

func TestStatusOf(t *testing.T) {
	s := &Sessions{log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	mine := status.Error(codes.InvalidArgument, "mine")
	tests := []struct {
		name string
		err  error
		code codes.Code
		msg  string
	}{
		{"no session", engine.ErrNoSession, codes.Unauthenticated, "no session"},
		{"renewed", engine.ErrRenewed, codes.Aborted, ""},
		{"storage", errors.Join(engine.ErrStorage, errDisk), codes.Unavailable, "storage unavailable"},
		{"conflict", errors.Join(engine.ErrConflict, engine.ErrStorage), codes.Aborted, ""},
		{"closed", engine.ErrClosed, codes.Unavailable, "shutting down"},
		{"maybe applied", errors.Join(engine.ErrMaybeApplied, context.DeadlineExceeded), codes.Unknown, ""},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded, ""},
		{"canceled", context.Canceled, codes.Canceled, ""},
		{"overflow", errOverflow, codes.OutOfRange, "counter overflow"},
		{"panic", engine.ErrPanic, codes.Internal, "internal error"},
		{"too late", engine.ErrTooLate, codes.Internal, "internal error"},
		{"anything", errDisk, codes.Internal, "internal error"},
		{"the handler's own status", mine, codes.InvalidArgument, "mine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.statusOf(ctx, "/m", tt.err)
			wantCode(t, tt.name, err, tt.code, tt.msg)
			if strings.Contains(status.Convert(err).Message(), "/var/lib") {
				t.Errorf("the status leaks the error: %v", err)
			}
		})
	}
}

// TestRun runs the program as main does: a server, and clients made with
// -call, then the server's shutdown by its context.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, pw, io.Discard)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("no output: %v", <-done)
	}
	addr, ok := strings.CutPrefix(lines.Text(), "listening on ")
	if !ok {
		t.Fatalf("first line %q, want listening on ADDR", lines.Text())
	}
	go io.Copy(io.Discard, pr)

	call := func(args ...string) string {
		t.Helper()
		var out strings.Builder
		if err := run(context.Background(), append([]string{"-addr", addr}, args...), &out, io.Discard); err != nil {
			t.Fatalf("%v: %v (output %q)", args, err, out.String())
		}
		return out.String()
	}
	out := call("-call", "increment")
	m := regexp.MustCompile(`^count 1\nsession-id (\S+)\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("-call increment printed %q", out)
	}
	session := m[1]
	if out := call("-call", "stream", "-n", "2", "-session", session); out != "count 2\ncount 3\n" {
		t.Errorf("-call stream printed %q", out)
	}
	if out := call("-call", "get", "-session", session); out != "count 3\n" {
		t.Errorf("-call get printed %q", out)
	}
	if out := call("-call", "logout", "-session", session); out != "session cleared\n" {
		t.Errorf("-call logout printed %q", out)
	}
	var out2 strings.Builder
	err := run(context.Background(), []string{"-addr", addr, "-call", "get", "-session", session}, &out2, io.Discard)
	wantCode(t, "-call get after logout", err, codes.Unauthenticated, "no session")

	var stderr strings.Builder
	if err := run(context.Background(), []string{"-call", "bogus"}, io.Discard, &stderr); !errors.Is(err, errUsage) || !strings.Contains(stderr.String(), "unknown -call") {
		t.Errorf("-call bogus: %v, stderr %q; want a usage error", err, stderr.String())
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run returned %v after its context ended, want nil", err)
		}
	case <-time.After(guard):
		t.Fatal("run did not return after its context ended")
	}
}

// TestServiceDescMatchesProto keeps the hand-written grpc.ServiceDesc and
// counter.proto, the contract for other clients, in step.
func TestServiceDescMatchesProto(t *testing.T) {
	src, err := os.ReadFile("counter.proto")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), "package steward.examples.counter.v1;") || !strings.Contains(string(src), "service Counter {") {
		t.Fatalf("counter.proto does not declare %s", serviceName)
	}
	// The Go types of the well-known messages serviceDesc uses.
	types := map[string]string{
		"google.protobuf.Empty":      "emptypb.Empty",
		"google.protobuf.Int64Value": "wrapperspb.Int64Value",
	}
	rpc := regexp.MustCompile(`rpc (\w+)\((stream )?([\w.]+)\) returns \((stream )?([\w.]+)\);`)
	inProto := make(map[string]string)
	for _, m := range rpc.FindAllStringSubmatch(string(src), -1) {
		inProto[m[1]] = m[2] + types[m[3]] + " -> " + m[4] + types[m[5]]
	}
	inDesc := map[string]string{
		"Get":       "emptypb.Empty -> wrapperspb.Int64Value",
		"Increment": "emptypb.Empty -> wrapperspb.Int64Value",
		"Renew":     "emptypb.Empty -> wrapperspb.Int64Value",
		"Logout":    "emptypb.Empty -> emptypb.Empty",
	}
	if len(serviceDesc.Methods) != len(inDesc) {
		t.Errorf("serviceDesc has %d unary methods, the test knows %d", len(serviceDesc.Methods), len(inDesc))
	}
	for _, md := range serviceDesc.Methods {
		if _, ok := inDesc[md.MethodName]; !ok {
			t.Errorf("serviceDesc method %s is unknown to the test", md.MethodName)
		}
	}
	for _, sd := range serviceDesc.Streams {
		in, out := "", ""
		if sd.ClientStreams {
			in = "stream "
		}
		if sd.ServerStreams {
			out = "stream "
		}
		inDesc[sd.StreamName] = in + "emptypb.Empty -> " + out + "wrapperspb.Int64Value"
	}
	for name, want := range inDesc {
		if got := inProto[name]; got != want {
			t.Errorf("rpc %s: counter.proto says %q, serviceDesc %q", name, got, want)
		}
	}
	for name := range inProto {
		if _, ok := inDesc[name]; !ok {
			t.Errorf("rpc %s of counter.proto is not in serviceDesc", name)
		}
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// eagerHeader is a counter whose handlers break the rule of Sessions:
// they send the header themselves before touching the session.
type eagerHeader struct{ *counterService }

func (e eagerHeader) Increment(ctx context.Context, in *emptypb.Empty) (*wrapperspb.Int64Value, error) {
	if err := grpc.SendHeader(ctx, nil); err != nil {
		return nil, err
	}
	return e.counterService.Increment(ctx, in)
}

func (e eagerHeader) IncrementStream(stream grpc.BidiStreamingServer[emptypb.Empty, wrapperspb.Int64Value]) error {
	if err := grpc.SendHeader(stream.Context(), nil); err != nil {
		return err
	}
	return e.counterService.IncrementStream(stream)
}

// A handler that sends the header itself fails the call when the session
// had something to send, rather than losing the new ID silently.
func TestHandlerSentHeader(t *testing.T) {
	eng, err := engine.New(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	counts, err := engine.Register[Count](eng, "counter", engine.KindOptions{Storage: storage.NewMemory(storage.MemoryOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	sessions, err := NewSessions(counts, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(sessions.UnaryInterceptor()), grpc.StreamInterceptor(sessions.StreamInterceptor()))
	srv.RegisterService(&serviceDesc, eagerHeader{&counterService{counts: counts, codec: engine.JSONCodec{}}})
	ts := serve(t, &app{eng: eng, sessions: sessions, srv: srv})

	bare := ts.bare(t)
	_, err = bare.Increment(with(t))
	wantCode(t, "Increment creating a session", err, codes.Internal, "internal error")
	_, err = streamN(with(t), bare, 1)
	wantCode(t, "IncrementStream creating a session", err, codes.Internal, "internal error")
}
