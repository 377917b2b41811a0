package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

const (
	// stopTimeout bounds how long shutdown waits for calls in flight (and
	// open streams) before it cuts them.
	stopTimeout = 10 * time.Second
	// closeTimeout bounds how long shutdown waits for the engine to drain.
	closeTimeout = 10 * time.Second
	// maxHeaderList bounds a call's metadata: room for a few session
	// values, far below grpc-go's default of 16 MiB.
	maxHeaderList = 64 << 10
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, a second one kills the process at once.
	context.AfterFunc(ctx, stop)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2) // the flag package printed the problem
	default:
		fmt.Fprintln(os.Stderr, "grpc:", err)
		os.Exit(1)
	}
}

// errUsage wraps a command-line error that was already reported.
var errUsage = errors.New("usage")

// run is the whole program: a server until ctx ends, or with -call one
// client call.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("grpc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:7071", "TCP `address` to listen on, or with -call to call")
	verbose := fs.Bool("v", false, "log the engine's and the calls' debug messages to stderr")
	call := fs.String("call", "", "be a client: make one call (get, increment, renew, logout or stream) and print the count")
	session := fs.String("session", "", "with -call: the session `value` to send, as a previous call printed it")
	n := fs.Int("n", 3, "with -call stream: how many increments to send on the stream")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "grpc: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	if *call != "" {
		switch *call {
		case "get", "increment", "renew", "logout", "stream":
		default:
			fmt.Fprintf(stderr, "grpc: unknown -call %q (want get, increment, renew, logout or stream)\n", *call)
			return errUsage
		}
		return runClient(ctx, *addr, *call, *session, *n, stdout)
	}

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	a, err := newApp(appConfig{Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return errors.Join(err, a.shutdown())
	}
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- a.srv.Serve(ln) }()
	select {
	case err = <-served: // the listener failed
	case <-ctx.Done():
	}
	log.Debug("shutting down")
	return errors.Join(err, a.shutdown())
}

// appConfig configures newApp; the zero value is a memory storage, a
// random signing key and no logs.
type appConfig struct {
	Logger *slog.Logger
	// Key signs session IDs; nil: 32 random bytes. With a storage that
	// outlives the process, load a fixed key instead, or every session
	// ends with the process anyway.
	Key []byte
	// Storage holds the sessions; nil: storage.NewMemory.
	Storage storage.Storage
}

// app is the counter's engine, session kind and gRPC server.
type app struct {
	eng      *engine.Engine
	sessions *Sessions
	srv      *grpc.Server
}

func newApp(cfg appConfig) (*app, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	key := cfg.Key
	if key == nil {
		key = make([]byte, 32)
		_, _ = rand.Read(key) // never fails (crypto/rand)
	}
	st := cfg.Storage
	if st == nil {
		st = storage.NewMemory(storage.MemoryOptions{})
	}
	eng, err := engine.New(engine.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	codec := engine.JSONCodec{}
	counts, err := engine.Register[Count](eng, "counter", engine.KindOptions{
		Storage: st,
		Codec:   codec, // named: IncrementStream decodes what the byte-level API returns
		NewID:   newID,
	})
	if err != nil {
		return nil, errors.Join(err, eng.Close(context.Background()))
	}
	sessions, err := NewSessions(counts, key, log)
	if err != nil {
		return nil, errors.Join(err, eng.Close(context.Background()))
	}
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(sessions.UnaryInterceptor()),
		grpc.StreamInterceptor(sessions.StreamInterceptor()),
		grpc.MaxHeaderListSize(maxHeaderList),
	)
	srv.RegisterService(&serviceDesc, &counterService{counts: counts, codec: codec})
	return &app{eng: eng, sessions: sessions, srv: srv}, nil
}

// newID generates session IDs of 26 base32 characters, 130 random bits
// from crypto/rand, as examples/counter does.
func newID() (string, error) { return rand.Text(), nil }

// shutdown stops the server gracefully: no new calls, the ones in flight
// finish (cut after stopTimeout: an open stream may never end by itself),
// then the engine drains. It is safe to call more than once.
func (a *app) shutdown() error {
	done := make(chan struct{})
	go func() {
		a.srv.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		a.srv.Stop()
		<-done
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	return a.eng.Close(ctx)
}

// runClient makes one call on addr with session as the session value and
// prints the count(s) and, when the server sent one, the new session
// value.
func runClient(ctx context.Context, addr, call, session string, n int, stdout io.Writer) error {
	jar := &Jar{}
	jar.SetValue(session)
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(jar.UnaryInterceptor()),
		grpc.WithStreamInterceptor(jar.StreamInterceptor()),
	)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()

	c := counterClient{conn}
	var count int64
	switch call {
	case "get":
		count, err = c.Get(ctx)
	case "increment":
		count, err = c.Increment(ctx)
	case "renew":
		count, err = c.Renew(ctx)
	case "logout":
		err = c.Logout(ctx)
	case "stream":
		err = streamIncrements(ctx, c, n, stdout)
	default:
		return fmt.Errorf("unknown call %q", call)
	}
	if err == nil && (call == "get" || call == "increment" || call == "renew") {
		fmt.Fprintf(stdout, "count %d\n", count)
	}
	switch v := jar.Value(); {
	case v == session:
	case v == "":
		fmt.Fprintln(stdout, "session cleared")
	default:
		fmt.Fprintf(stdout, "session-id %s\n", v)
	}
	return err
}

// streamIncrements sends n increments on one IncrementStream, printing
// each count.
func streamIncrements(ctx context.Context, c counterClient, n int, stdout io.Writer) error {
	stream, err := c.IncrementStream(ctx)
	if err != nil {
		return err
	}
	for range n {
		if err := stream.Send(nil); err != nil {
			break // the reason comes with Recv
		}
		v, err := stream.Recv()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "count %d\n", v.GetValue())
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
