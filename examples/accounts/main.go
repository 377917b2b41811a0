// Command accounts is a demo of a user's sessions with Steward: login
// binds the session to its user (after renewing its ID), the user lists
// their devices, revokes one or all the others, and sees a flash message
// exactly once.
//
//	go run ./examples/accounts [-addr 127.0.0.1:8081] [-storage directory|memory|redis]
//	     [-dir PATH] [-redis URL] [-max-sessions N]
//
//	POST /login?user=U             200 {"user":"U"}  renews the ID, binds the owner U
//	GET  /me                       200 {"user":"U","flash":"..."} or 401; a flash is shown once
//	GET  /sessions                 200 [{"handle":"...","current":true,...}, ...] or 401
//	POST /sessions/revoke-others   200 {"revoked":N}
//	POST /sessions/revoke?handle=H 204 (404 for a handle that is none of the user's sessions)
//	POST /flash?msg=M              204: the next GET /me shows M, the one after does not
//	POST /logout                   204
//
// With -max-sessions N, the (N+1)th login of a user evicts that user's
// least recently used session. The session cookie is SESSION_ID.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
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

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/storage/redisstore"
	"github.com/steward-sessions/steward/transport"
)

// Account is the session's value: who is logged in, and a flash message
// waiting to be shown.
type Account struct {
	User  string `json:"user,omitempty"`
	Flash string `json:"flash,omitempty"`
}

type config struct {
	Addr        string
	Storage     string
	Dir         string
	Redis       string
	MaxSessions int
	Verbose     bool
	logOut      io.Writer // tests: where logs go
}

func main() {
	cfg, err := parseArgs(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "accounts:", err)
		os.Exit(1)
	}
}

func parseArgs(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("accounts", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8081", "address to listen on")
	fs.StringVar(&cfg.Storage, "storage", "directory", "where sessions live: directory, memory or redis")
	fs.StringVar(&cfg.Dir, "dir", ".accounts", "the session directory (-storage directory)")
	fs.StringVar(&cfg.Redis, "redis", "redis://127.0.0.1:6379", "the Redis URL (-storage redis)")
	fs.IntVar(&cfg.MaxSessions, "max-sessions", 0, "sessions a user may hold at once; past it, a login evicts the least recently used (0: no bound)")
	fs.BoolVar(&cfg.Verbose, "v", false, "log debug messages")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "accounts: unexpected argument %q\n", fs.Arg(0))
		return cfg, errors.New("unexpected arguments")
	}
	if cfg.MaxSessions < 0 {
		fmt.Fprintln(stderr, "accounts: -max-sessions must be 0 or more")
		return cfg, errors.New("bad -max-sessions")
	}
	return cfg, nil
}

// run serves until ctx ends, then shuts down: the server first, then the
// engine, which flushes the sessions.
func run(ctx context.Context, cfg config, stdout io.Writer) error {
	a, err := newApp(cfg)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		_ = a.eng.Close(context.Background())
		return err
	}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err = <-served:
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutdown); serr != nil && err == nil {
		err = serr
	}
	if cerr := a.eng.Close(shutdown); cerr != nil && err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

type app struct {
	log      *slog.Logger
	eng      *engine.Engine
	accounts *engine.Kind[Account]
	handler  http.Handler
}

func newApp(cfg config) (*app, error) {
	level := slog.LevelWarn
	if cfg.Verbose {
		level = slog.LevelDebug
	}
	out := cfg.logOut
	if out == nil {
		out = os.Stderr
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
	store, err := openStorage(cfg)
	if err != nil {
		return nil, err
	}
	eng, err := engine.New(engine.Options{Logger: logger})
	if err != nil {
		return nil, err
	}
	a := &app{log: logger, eng: eng}
	a.accounts, err = engine.Register[Account](eng, "SESSION_ID", engine.KindOptions{
		Storage:     store,
		NewID:       func() (string, error) { return rand.Text(), nil }, // 130 random bits
		MaxPerOwner: cfg.MaxSessions,
	})
	if err != nil {
		if c, ok := store.(io.Closer); ok {
			_ = c.Close()
		}
		_ = eng.Close(context.Background())
		return nil, err
	}
	sessions, err := transport.Middleware(transport.Cookie(a.accounts, transport.CookieConfig{Name: "SESSION_ID"}))
	if err != nil {
		_ = eng.Close(context.Background())
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("GET /me", a.me)
	mux.HandleFunc("GET /sessions", a.list)
	mux.HandleFunc("POST /sessions/revoke-others", a.revokeOthers)
	mux.HandleFunc("POST /sessions/revoke", a.revoke)
	mux.HandleFunc("POST /flash", a.flash)
	mux.HandleFunc("POST /logout", a.logout)
	csrf := http.NewCrossOriginProtection() // a browser on another site may not POST here
	a.handler = noStore(csrf.Handler(sessions(mux)))
	return a, nil
}

func openStorage(cfg config) (storage.Storage, error) {
	switch cfg.Storage {
	case "directory":
		return storage.NewCachedDirectory(cfg.Dir, storage.DirectoryOptions{})
	case "memory":
		return storage.NewMemory(storage.MemoryOptions{}), nil
	case "redis":
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return redisstore.New(ctx, cfg.Redis, redisstore.Options{})
	}
	return nil, fmt.Errorf("unknown -storage %q (want directory, memory or redis)", cfg.Storage)
}

func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// errNotLoggedIn is an update function's refusal: the session has no user.
var errNotLoggedIn = errors.New("not logged in")

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	user := r.URL.Query().Get("user")
	if user == "" || len(user) > 255 {
		a.fail(w, r, http.StatusBadRequest, "user must be 1 to 255 bytes", nil)
		return
	}
	// A new ID at every login, against session fixation; a request with
	// no session gets its first one from the Update below.
	if err := a.accounts.Renew(ctx); err != nil && !errors.Is(err, engine.ErrNoSession) {
		a.failErr(w, r, err)
		return
	}
	if _, err := a.accounts.Update(ctx, func(v *Account) error {
		*v = Account{User: user}
		return nil
	}); err != nil {
		a.failErr(w, r, err)
		return
	}
	if err := a.accounts.BindOwner(ctx, user); err != nil {
		a.failErr(w, r, err)
		return
	}
	a.json(w, map[string]string{"user": user})
}

func (a *app) me(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if _, ok, err := a.accounts.Get(ctx); err != nil || !ok {
		a.unauthorized(w, r, err)
		return
	}
	// Read and clear the flash in one turn of the session: of concurrent
	// requests, one shows it.
	var shown string
	v, err := a.accounts.Update(ctx, func(v *Account) error {
		if v.User == "" {
			return errNotLoggedIn
		}
		shown, v.Flash = v.Flash, ""
		return nil
	})
	if err != nil {
		a.unauthorized(w, r, err)
		return
	}
	a.json(w, map[string]string{"user": v.User, "flash": shown})
}

// sessionJSON is one entry of GET /sessions.
type sessionJSON struct {
	Handle   string    `json:"handle"`
	Current  bool      `json:"current"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
	Expires  time.Time `json:"expires,omitzero"`
}

func (a *app) list(w http.ResponseWriter, r *http.Request) {
	infos, err := a.accounts.Sessions(r.Context())
	if err != nil {
		a.unauthorized(w, r, err)
		return
	}
	out := make([]sessionJSON, 0, len(infos))
	for _, in := range infos {
		out = append(out, sessionJSON{Handle: in.Handle, Current: in.Current, Created: in.Created.UTC(),
			LastSeen: in.LastSeen.UTC(), Expires: in.Expires.UTC()})
	}
	a.json(w, out)
}

func (a *app) revokeOthers(w http.ResponseWriter, r *http.Request) {
	n, err := a.accounts.InvalidateOthers(r.Context())
	if err != nil {
		a.unauthorized(w, r, err)
		return
	}
	a.json(w, map[string]int{"revoked": n})
}

func (a *app) revoke(w http.ResponseWriter, r *http.Request) {
	err := a.accounts.InvalidateHandle(r.Context(), r.URL.Query().Get("handle"))
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, engine.ErrNoSession):
		// No session, no owner, or a handle that is none of theirs.
		if _, ok, gerr := a.accounts.Get(r.Context()); gerr == nil && ok {
			a.fail(w, r, http.StatusNotFound, "no such session", nil)
			return
		}
		a.unauthorized(w, r, err)
	default:
		a.failErr(w, r, err)
	}
}

func (a *app) flash(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if _, ok, err := a.accounts.Get(ctx); err != nil || !ok {
		a.unauthorized(w, r, err)
		return
	}
	msg := r.URL.Query().Get("msg")
	if _, err := a.accounts.Update(ctx, func(v *Account) error {
		if v.User == "" {
			return errNotLoggedIn
		}
		v.Flash = msg
		return nil
	}); err != nil {
		a.unauthorized(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	if err := a.accounts.Clear(r.Context()); err != nil {
		a.failErr(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *app) json(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// unauthorized answers 401 for a request with no logged-in session, and
// err's status for anything else.
func (a *app) unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	if err == nil || errors.Is(err, engine.ErrNoSession) || errors.Is(err, errNotLoggedIn) {
		a.fail(w, r, http.StatusUnauthorized, "not logged in", nil)
		return
	}
	a.failErr(w, r, err)
}

// failErr answers an engine error: 503 for the storage (or shutdown), 409
// for a session renewed since the request began (retry), 500 otherwise.
// The details go to the log only.
func (a *app) failErr(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, engine.ErrStorage), errors.Is(err, engine.ErrClosed):
		a.fail(w, r, http.StatusServiceUnavailable, "storage unavailable", err)
	case errors.Is(err, engine.ErrRenewed):
		a.fail(w, r, http.StatusConflict, "session renewed: retry", err)
	case errors.Is(err, engine.ErrNoSession):
		a.fail(w, r, http.StatusUnauthorized, "not logged in", nil)
	default:
		a.fail(w, r, http.StatusInternalServerError, "internal error", err)
	}
}

func (a *app) fail(w http.ResponseWriter, r *http.Request, status int, msg string, err error) {
	if err != nil {
		a.log.Error("accounts: request failed", "method", r.Method, "path", r.URL.Path, "status", status, "error", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
