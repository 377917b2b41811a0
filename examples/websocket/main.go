// Command websocket serves a per-session counter to the browser over a
// WebSocket (github.com/coder/websocket), through Steward's middleware.
//
//	go run ./examples/websocket [-addr 127.0.0.1:8082] [-poll 250ms]
//
// It prints "listening on http://ADDR" once it accepts connections and
// closes gracefully on SIGINT or SIGTERM, ending open sockets with 1001
// "server shutting down". The endpoints:
//
//	GET  /     the page: the count, pushed live, and two buttons
//	GET  /ws   the WebSocket: {"count": N} whenever the count changes
//	POST /inc  200 {"count": N}  atomic +1 through the engine's Update
//	POST /logout  204            session cleared, cookie expired
//
// /ws creates the session if the request has none: its Set-Cookie travels
// in the 101 Switching Protocols response, which the middleware lets
// through Hijack. Session events do not exist yet, so the socket's
// goroutine polls its session by ID (engine.RawKind.Load) every -poll and
// pushes the count when it changed; when the session is gone (POST /logout
// from another tab, or expiry) it closes the socket with 1000 "session
// ended". Each poll is an operation on the session, so an open page keeps
// its session from idling out, up to the kind's Lifetime (24 hours).
//
// The socket follows the session it was opened with: after a renewal it
// would end when the old ID's grace period does.
//
// This example is its own module, so that the WebSocket library never
// enters the root module's go.mod; go.work ties it in.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/transport"
)

// Count is the session value.
type Count struct {
	N int `json:"n"`
}

// config is what the flags set.
type config struct {
	Addr string
	Poll time.Duration // how often an open socket reads its session
}

//go:embed index.html
var page []byte

func main() {
	var cfg config
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:8082", "address to listen on")
	flag.DurationVar(&cfg.Poll, "poll", 250*time.Millisecond, "how often an open socket reads its session")
	flag.Parse()
	if err := run(cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "websocket:", err)
		os.Exit(1)
	}
}

// run serves until SIGINT or SIGTERM, then shuts down gracefully: the
// server stops taking requests, open sockets are closed, the engine drains.
func run(cfg config, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	a, err := newApp(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		_ = a.close(context.Background())
		return err
	}
	srv := &http.Server{Handler: a.handler, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err = <-served: // the listener failed
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Shutdown neither closes nor waits for hijacked connections: a.close
	// ends the sockets, then closes the engine.
	if serr := srv.Shutdown(shutdown); serr != nil && err == nil {
		err = serr
	}
	if cerr := a.close(shutdown); cerr != nil && err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// app is the example's engine, session kind, HTTP handler and open sockets.
type app struct {
	eng     *engine.Engine
	counts  *engine.Kind[Count]
	poll    time.Duration
	handler http.Handler

	stop    chan struct{}  // closed by close: open sockets end
	sockets sync.WaitGroup // the handlers of open sockets

	mu      sync.Mutex // protects closing, and orders sockets.Add before close's Wait
	closing bool
}

func newApp(cfg config) (*app, error) {
	if cfg.Poll <= 0 {
		return nil, fmt.Errorf("-poll must be positive, not %v", cfg.Poll)
	}
	eng, err := engine.New(engine.Options{})
	if err != nil {
		return nil, err
	}
	a := &app{eng: eng, poll: cfg.Poll, stop: make(chan struct{})}
	a.counts, err = engine.Register[Count](eng, "SESSION_ID", engine.KindOptions{
		Storage: storage.NewMemory(storage.MemoryOptions{}),
		Codec:   engine.JSONCodec{}, // the default, named: the socket decodes what Load returns
	})
	if err != nil {
		_ = eng.Close(context.Background())
		return nil, err
	}
	sessions, err := transport.Middleware(transport.Cookie(a.counts, transport.CookieConfig{}))
	if err != nil {
		_ = eng.Close(context.Background())
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.index)
	mux.HandleFunc("GET /ws", a.socket)
	mux.HandleFunc("POST /inc", a.increment)
	mux.HandleFunc("POST /logout", a.logout)
	a.handler = sessions(mux)
	return a, nil
}

// close ends the open sockets with 1001, waits for their handlers (as long
// as ctx allows), then closes the engine. It is safe to call more than
// once.
func (a *app) close(ctx context.Context) error {
	a.mu.Lock()
	if !a.closing {
		a.closing = true
		close(a.stop)
	}
	a.mu.Unlock()
	done := make(chan struct{})
	go func() {
		a.sockets.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("closing the sockets: %w", ctx.Err())
	}
	return a.eng.Close(ctx)
}

func (a *app) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(page)
}

func (a *app) increment(w http.ResponseWriter, r *http.Request) {
	c, err := a.counts.Update(r.Context(), func(c *Count) error {
		c.N++
		return nil
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"count\":%d}\n", c.N)
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	if err := a.counts.Clear(r.Context()); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Close reasons the page shows.
const (
	reasonEnded    = "session ended"
	reasonStopping = "server shutting down"
	reasonFailed   = "session unavailable"
)

// socket upgrades the request and pushes the session's count until the
// session ends, the client leaves or the server stops.
func (a *app) socket(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	if a.closing {
		a.mu.Unlock()
		http.Error(w, reasonStopping, http.StatusServiceUnavailable)
		return
	}
	a.sockets.Add(1)
	a.mu.Unlock()
	defer a.sockets.Done()

	// Make sure there is a session before upgrading: a new one's cookie
	// goes out with the 101 response.
	if _, err := a.counts.GetOrSet(r.Context(), func() Count { return Count{} }); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	id := a.counts.ID(r.Context())
	conn, err := websocket.Accept(w, r, nil) // same-origin pages only
	if err != nil {
		return // Accept answered the request
	}
	defer conn.CloseNow()
	// The page sends nothing; CloseRead answers pings and the client's
	// close, and its context ends when the connection does.
	ctx := conn.CloseRead(r.Context())

	tick := time.NewTicker(a.poll)
	defer tick.Stop()
	last := -1
	for {
		data, err := a.counts.Raw().Load(ctx, id)
		var c Count
		if err == nil {
			err = engine.JSONCodec{}.Unmarshal(data, &c)
		}
		switch {
		case ctx.Err() != nil:
			return // the client left
		case errors.Is(err, engine.ErrNoSession):
			conn.Close(websocket.StatusNormalClosure, reasonEnded)
			return
		case err != nil:
			conn.Close(websocket.StatusInternalError, reasonFailed)
			return
		}
		if c.N != last {
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := wsjson.Write(wctx, conn, map[string]int{"count": c.N})
			cancel()
			if err != nil {
				return
			}
			last = c.N
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		case <-a.stop:
			conn.Close(websocket.StatusGoingAway, reasonStopping)
			return
		}
	}
}
