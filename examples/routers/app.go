package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/transport"
)

// Count is the session value.
type Count struct {
	N int `json:"n"`
}

// reply is the JSON body of /count and /add/{n}.
type reply struct {
	Count int `json:"count"`
}

// app is what every router's handlers share: the engine, the session kind
// and the session middleware. The handlers of each router are in the file
// named after it.
type app struct {
	log      *slog.Logger
	eng      *engine.Engine
	counts   *engine.Kind[Count]
	sessions func(http.Handler) http.Handler // the transport middleware
}

// newApp makes the engine, registers the counter's kind (memory storage,
// ID in the cookie SESSION_ID) and builds its middleware.
func newApp(log *slog.Logger) (*app, error) {
	eng, err := engine.New(engine.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	counts, err := engine.Register[Count](eng, "SESSION_ID", engine.KindOptions{
		Storage: storage.NewMemory(storage.MemoryOptions{}),
	})
	if err == nil {
		var sessions func(http.Handler) http.Handler
		// Behind TLS: CookieConfig{Secure: true} and a __Host- name.
		sessions, err = transport.Middleware(transport.Cookie(counts, transport.CookieConfig{}))
		if err == nil {
			return &app{log: log, eng: eng, counts: counts, sessions: sessions}, nil
		}
	}
	return nil, errors.Join(err, eng.Close(context.Background()))
}

// close closes the engine: every acknowledged write is stored.
func (a *app) close(ctx context.Context) error { return a.eng.Close(ctx) }

// handler returns the app's handler built with the named router.
func (a *app) handler(router string) (http.Handler, error) {
	switch router {
	case "servemux":
		return a.serveMuxHandler(), nil
	case "chi":
		return a.chiHandler(), nil
	case "echo":
		return a.echoHandler(), nil
	case "gin":
		return a.ginHandler(), nil
	}
	return nil, fmt.Errorf("%w: unknown router %q (servemux, chi, echo or gin)", errUsage, router)
}

// errBadNumber is add's error for a path parameter that is not 1 to 1000.
var errBadNumber = errors.New("n must be a number from 1 to 1000")

// count returns the session's count, 0 without a session.
func (a *app) count(ctx context.Context) (reply, error) {
	c, _, err := a.counts.Get(ctx)
	return reply{c.N}, err
}

// add adds n, the path parameter as the router gives it, to the session's
// count, atomically for the session, creating the session if need be.
func (a *app) add(ctx context.Context, n string) (reply, error) {
	d, err := strconv.Atoi(n)
	if err != nil || d < 1 || d > 1000 {
		return reply{}, errBadNumber
	}
	c, err := a.counts.Update(ctx, func(c *Count) error { c.N += d; return nil })
	return reply{c.N}, err
}

// logout clears the session: the middleware expires its cookie.
func (a *app) logout(ctx context.Context) error { return a.counts.Clear(ctx) }

// failure returns the HTTP status and the message for a handler's error,
// and logs the errors that are the server's.
func (a *app) failure(err error) (int, string) {
	switch {
	case errors.Is(err, errBadNumber):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, engine.ErrRenewed): // raced its own renewal: the client has the new ID
		return http.StatusConflict, "retry"
	case errors.Is(err, engine.ErrStorage), errors.Is(err, context.DeadlineExceeded):
		a.log.Warn("session operation", "error", err)
		return http.StatusServiceUnavailable, "storage unavailable"
	}
	a.log.Error("session operation", "error", err)
	return http.StatusInternalServerError, "internal error"
}
