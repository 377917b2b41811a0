// Command routers serves one session counter through the router of your
// choice, to show how Steward's middleware goes into each:
//
//	go run ./examples/routers [-router servemux|chi|echo|gin] [-addr 127.0.0.1:8083]
//
// The endpoints are the same for every router; each is written the
// router's way (its path parameters, its replies):
//
//	GET  /count     200 {"count": N}   0 without a session; creates no session
//	POST /add/{n}   200 {"count": N}   adds n (1 to 1000) to the session's count
//	POST /logout    204                the session cleared, its cookie expired
//
// servemux.go uses net/http's ServeMux with Go 1.22's method and path
// patterns and r.PathValue; chi.go installs the middleware with chi's Use;
// echo.go wraps it with echo.WrapMiddleware; gin.go uses the small adapter
// github.com/steward-sessions/steward/transport/ginsteward, because gin's
// writer sends the headers at other moments than net/http's.
//
// This example is its own module, so that chi, echo and gin never enter
// the root module's go.mod; go.work ties it in. Try it:
//
//	curl -c jar -b jar -X POST http://127.0.0.1:8083/add/5
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
)

func main() {
	gin.SetMode(gin.ReleaseMode) // no debug lines on stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2) // the flag package printed the problem
	default:
		fmt.Fprintln(os.Stderr, "routers:", err)
		os.Exit(1)
	}
}

// errUsage wraps a command-line error that was already reported.
var errUsage = errors.New("usage")

// shutdownTimeout bounds how long stopping waits for requests in flight,
// and then for the engine to drain.
const shutdownTimeout = 10 * time.Second

// run is the whole program: it serves until ctx is cancelled, then shuts
// the server down and closes the engine. It writes "listening on
// http://ADDR (ROUTER)" to stdout once the listener is open.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("routers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8083", "TCP `address` to listen on")
	router := fs.String("router", "servemux", "the router: servemux, chi, echo or gin")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "routers: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}

	// Warnings and errors only: the engine's start and stop are not news.
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := newApp(log)
	if err != nil {
		return err
	}
	h, err := a.handler(*router)
	if err == nil {
		err = serve(ctx, h, *addr, *router, log, stdout)
	}
	cctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return errors.Join(err, a.close(cctx))
}

// serve serves h on addr until ctx is cancelled.
func serve(ctx context.Context, h http.Handler, addr, router string, log *slog.Logger, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(stdout, "listening on http://%s (%s)\n", ln.Addr(), router)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
