package main

import (
	"context"
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

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

// closeTimeout bounds how long shutdown waits for the engine to drain.
const closeTimeout = 10 * time.Second

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
		fmt.Fprintln(os.Stderr, "linecount:", err)
		os.Exit(1)
	}
}

// errUsage wraps a command-line error that was already reported.
var errUsage = errors.New("usage")

// run is the whole program: it serves until ctx is cancelled, then drains
// the engine. It writes "listening on ADDR" to stdout once the listener is
// open, and logs to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("linecount", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:7070", "TCP `address` to listen on")
	idle := fs.Duration("idle", defaultIdleTimeout, "close connections idle this long (negative: never)")
	verbose := fs.Bool("v", false, "log connections and commands (debug level)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "linecount: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	eng, err := engine.New(engine.Options{Logger: log})
	if err != nil {
		return err
	}
	serveErr := serve(ctx, eng, *addr, *idle, log, stdout)

	log.Debug("draining the engine")
	cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	closeErr := eng.Close(cctx)
	log.Debug("engine drained", "error", closeErr)
	return errors.Join(serveErr, closeErr)
}

// serve registers the counter kind on eng and serves the protocol on addr
// until ctx is cancelled.
func serve(ctx context.Context, eng *engine.Engine, addr string, idle time.Duration, log *slog.Logger, stdout io.Writer) error {
	kind, err := engine.RegisterRaw(eng, "counter", engine.KindOptions{
		Storage: storage.NewMemory(storage.MemoryOptions{}),
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	srv := &Server{Kind: kind, Logger: log, IdleTimeout: idle}
	return srv.Serve(ctx, ln)
}
