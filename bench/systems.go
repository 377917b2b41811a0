package main

import (
	"context"
	"crypto/rand"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/gorilla/sessions"
	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/transport"
)

// A system is one way of keeping the counter: a session library with one
// of its storages, or no session at all.
type system struct {
	name string
	// steward marks Steward's systems, which must never lose an update.
	steward bool
	// clientSide marks a system whose session value travels to the client:
	// concurrent requests of one session each carry their own copy, so
	// lost updates are in its nature (Steward documents it) and not a defect.
	clientSide bool
	// sharedStorage marks a system whose instances can share one storage
	// (Redis), the systems of the multi-instance scenarios.
	sharedStorage bool
	// missing, when not empty, says why the system cannot be measured yet.
	missing string
	// build makes the server in a process of its own.
	build func(so serverOptions) (built, error)
}

// serverOptions are what a run asks of a system's server.
type serverOptions struct {
	dir string // an empty temporary directory the system may use
	// passivateAfter is the engine's PassivateAfter for Steward's systems
	// (the realistic scenario shortens it); zero: the engine's default.
	passivateAfter time.Duration
}

// built is a system's server as its build made it.
type built struct {
	handler http.Handler
	close   func() error // releases what the handler holds
	// stats returns the engine's counters (Steward's systems only; nil
	// for the others), which the server reports when it stops.
	stats func() engine.Stats
}

// systems lists every system in the order they run and appear.
var systems = []system{
	{name: "no-session", build: buildNoSession},
	{name: "steward-memory", steward: true, build: buildStewardMemory},
	{name: "steward-directory", steward: true, missing: directoryMissing, build: buildStewardDirectory},
	{name: "steward-client", steward: true, clientSide: true, build: buildStewardClient},
	{name: "steward-redis", steward: true, sharedStorage: true, missing: redisMissing(), build: buildStewardRedis},
	{name: "steward-redis-local", steward: true, sharedStorage: true, missing: redisMissing(), build: buildStewardRedisLocal},
	{name: "scs-memstore", build: buildSCSMemstore},
	{name: "scs-redis", sharedStorage: true, missing: redisMissing(), build: buildSCSRedis},
	{name: "gorilla-cookie", build: buildGorillaCookie},
	{name: "gorilla-filesystem", build: buildGorillaFilesystem},
}

func systemNames() []string {
	names := make([]string, len(systems))
	for i, s := range systems {
		names[i] = s.name
	}
	return names
}

func findSystem(name string) (system, bool) {
	for _, s := range systems {
		if s.name == name {
			return s, true
		}
	}
	return system{}, false
}

// counter is the tiny handler every system runs:
//
//	POST /increment  read the counter, add one, write it back, reply with it
//	GET  /count      reply with the counter, writing nothing
//
// The reply is the number and a newline, as text/plain.
type counter struct {
	incr func(w http.ResponseWriter, r *http.Request) (int, error)
	read func(w http.ResponseWriter, r *http.Request) (int, error)
}

func (c counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var op func(http.ResponseWriter, *http.Request) (int, error)
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/increment":
		op = c.incr
	case r.Method == http.MethodGet && r.URL.Path == "/count":
		op = c.read
	default:
		http.NotFound(w, r)
		return
	}
	n, err := op(w, r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var buf [24]byte
	b := append(strconv.AppendInt(buf[:0], int64(n), 10), '\n')
	h := w.Header()
	h["Content-Type"] = textPlain
	_, _ = w.Write(b)
}

var textPlain = []string{"text/plain; charset=utf-8"}

// no-session: the same handler with one global counter and no session at
// all, the physical limit of this HTTP server.
func buildNoSession(serverOptions) (built, error) {
	var n atomic.Int64
	return plain(counter{
		incr: func(http.ResponseWriter, *http.Request) (int, error) { return int(n.Add(1)), nil },
		read: func(http.ResponseWriter, *http.Request) (int, error) { return int(n.Load()), nil },
	}), nil
}

// plain is a built server that holds nothing to release and has no
// engine.
func plain(h http.Handler) built {
	return built{handler: h, close: func() error { return nil }}
}

// Count is Steward's session value.
type Count struct {
	N int `json:"n"`
}

// stewardCookie is the name of the cookie of Steward's systems.
const stewardCookie = "SESSION_ID"

// stewardBuilt serves the counter from a Steward engine (PassivateAfter
// from so, every other option at its default) whose one kind keeps its
// values in store, its ID in the cookie SESSION_ID; with a nil store the
// kind is client-side and the value travels in the cookie, sealed by ts.
func stewardBuilt(so serverOptions, store storage.Storage, ts ...transport.Transformer) (built, error) {
	h, eng, closeEng, err := stewardServer(engine.Options{PassivateAfter: so.passivateAfter}, store, ts...)
	if err != nil {
		return built{}, err
	}
	return built{handler: h, close: closeEng, stats: eng.Stats}, nil
}

// stewardServer is stewardBuilt for an engine made with opts, returning
// the engine itself, whose counters the scale measurements read.
func stewardServer(opts engine.Options, store storage.Storage, ts ...transport.Transformer) (http.Handler, *engine.Engine, func() error, error) {
	eng, err := engine.New(opts)
	if err != nil {
		return nil, nil, nil, err
	}
	closeEng := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return eng.Close(ctx)
	}
	counts, err := engine.Register[Count](eng, stewardCookie, engine.KindOptions{Storage: store})
	if err != nil {
		_ = closeEng()
		return nil, nil, nil, err
	}
	mw, err := transport.Middleware(transport.Cookie(counts, transport.CookieConfig{Name: stewardCookie}, ts...))
	if err != nil {
		_ = closeEng()
		return nil, nil, nil, err
	}
	h := counter{
		incr: func(_ http.ResponseWriter, r *http.Request) (int, error) {
			c, err := counts.Update(r.Context(), func(c *Count) error { // atomic per session
				c.N++
				return nil
			})
			return c.N, err
		},
		read: func(_ http.ResponseWriter, r *http.Request) (int, error) {
			c, _, err := counts.Get(r.Context())
			return c.N, err
		},
	}
	return mw(h), eng, closeEng, nil
}

func buildStewardMemory(so serverOptions) (built, error) {
	return stewardBuilt(so, newStewardMemory())
}

// newStewardMemory is the storage of steward-memory.
func newStewardMemory() storage.Storage { return storage.NewMemory(storage.MemoryOptions{}) }

// steward-client: the count travels in the cookie, encrypted (AES-128-GCM).
func buildStewardClient(so serverOptions) (built, error) {
	key := make([]byte, 16)
	if _, err := rand.Read(key); err != nil {
		return built{}, err
	}
	return stewardBuilt(so, nil, transport.Encrypt(key))
}

// scs-memstore: scs's default store, through its LoadAndSave middleware.
func buildSCSMemstore(serverOptions) (built, error) {
	return plain(scsCounter(scs.New())), nil // memstore, gob codec, cookie "session"
}

// scsCounter is the counter on an scs session manager.
func scsCounter(sm *scs.SessionManager) http.Handler {
	h := counter{
		incr: func(_ http.ResponseWriter, r *http.Request) (int, error) {
			n := sm.GetInt(r.Context(), "n") + 1
			sm.Put(r.Context(), "n", n)
			return n, nil
		},
		read: func(_ http.ResponseWriter, r *http.Request) (int, error) {
			return sm.GetInt(r.Context(), "n"), nil
		},
	}
	return sm.LoadAndSave(h)
}

// Fixed keys: the bench needs no secrecy, only the same work as production.
var (
	gorillaHashKey  = []byte("bench-hash-key-0123456789abcdef-bench-hash-key-0123456789abcdef!") // 64 bytes: HMAC-SHA256
	gorillaBlockKey = []byte("bench-block-key-0123456789abcdef")                                 // 32 bytes: AES-256
)

// gorillaCounter serves the counter from a gorilla/sessions store.
func gorillaCounter(store sessions.Store) http.Handler {
	return counter{
		incr: func(w http.ResponseWriter, r *http.Request) (int, error) {
			s, _ := store.Get(r, "session") // an undecodable cookie gives a new session
			n, _ := s.Values["n"].(int)
			n++
			s.Values["n"] = n
			return n, s.Save(r, w)
		},
		read: func(_ http.ResponseWriter, r *http.Request) (int, error) {
			s, _ := store.Get(r, "session")
			n, _ := s.Values["n"].(int)
			return n, nil
		},
	}
}

// gorilla-cookie: the value travels in the cookie, signed (HMAC-SHA256)
// and encrypted (AES-256-CTR), the peer of Steward's client-side sessions.
func buildGorillaCookie(serverOptions) (built, error) {
	return plain(gorillaCounter(sessions.NewCookieStore(gorillaHashKey, gorillaBlockKey))), nil
}

// gorilla-filesystem: one file per session in dir, the signed ID in the
// cookie.
func buildGorillaFilesystem(so serverOptions) (built, error) {
	if err := os.MkdirAll(so.dir, 0o700); err != nil {
		return built{}, err
	}
	return plain(gorillaCounter(sessions.NewFilesystemStore(so.dir, gorillaHashKey))), nil
}
