// Command counter is Steward's demo server: a per-session counter that
// concurrent requests of one session increment without ever losing an
// update. It is also the reference for running Steward hardened.
//
//	go run ./examples/counter [-addr 127.0.0.1:8080] [-storage directory|memory|redis] [-dir PATH] [-redis URL]
//	                          [-transport cookie|header]
//	                          [-mode server|client] [-secret-file PATH]
//	                          [-read-header-timeout 5s] [-read-timeout 10s] [-write-timeout 15s] [-idle-timeout 30s]
//	                          [-tls-cert PEM -tls-key PEM | -secure] [-metrics]
//
// It prints "listening on http://ADDR" ("https://ADDR" with -tls-cert and
// -tls-key: it serves HTTPS) once it accepts connections and closes
// gracefully on SIGINT or SIGTERM. The endpoints:
//
//	GET  /           200 {"count": N}  N is 0 without a session; creates no session
//	POST /increment  200 {"count": N}  atomic +1 through the engine's Update
//	POST /renew      200 {"count": N}  same value under a new session ID
//	POST /logout     204               session cleared, cookie expired / header emptied
//	GET  /metrics    200               with -metrics: the engine's metrics in Prometheus text format
//
// With -metrics it also prints "metrics on http://ADDR/metrics" and serves
// there, beside the other endpoints, every steward_ series the engine
// records (README, "Metrics"), through the OpenTelemetry SDK and its
// Prometheus exporter on a registry of its own. Let only your scraper reach
// that path.
//
// Sessions live in ./.sessions by default (-storage directory, with a
// 60-second cache in front), so they survive a restart; -storage memory
// keeps them in memory, -storage redis in Redis.
//
// In server mode (the default) the session ID travels in the cookie
// SESSION_ID (cookie transport) or the header X-Session (header transport)
// and the count lives in the storage. In client mode the count itself
// travels, encrypted (AES-GCM), in the cookie SESSION or the header
// X-Session. Served over TLS, or with -secure when a proxy in front
// terminates TLS, the cookies are Secure and named __Host-SESSION_ID and
// __Host-SESSION.
//
// The secret is a key of 32 bytes in hex: it encrypts the value in client
// mode and signs the ID in server mode; without it client mode uses a
// random key (sessions do not survive a restart) and server mode sends
// bare IDs. Give it in a file (-secret-file PATH, mode 600) or in the
// environment (STEWARD_SECRET), one way only; -secret HEX still works but
// logs a warning, since a command line is readable by every local user.
//
// Session IDs carry 130 random bits. A browser's POST from another origin
// is refused (403) before it reaches a session. A client that is slow to
// send its headers or its request, that reads its response too slowly, or
// that keeps a connection idle is cut off after the timeout of that flag;
// request headers may take 32 KiB. A storage failure answers 503 with a JSON error body that says only
// "storage unavailable" (other failures: 500, "internal error"); the
// details go to the log. Try it:
//
//	curl -c jar -b jar -X POST http://127.0.0.1:8080/increment
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
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
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/storage/redisstore"
	"github.com/steward-sessions/steward/transport"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Count is the session value.
type Count struct {
	N int `json:"n"`
}

// config is what the flags set.
type config struct {
	Addr      string
	Storage   string // directory | memory | redis
	Dir       string // the directory for -storage directory
	Redis     string // redis:// URL for -storage redis
	Transport string // cookie | header
	Mode      string // server | client
	Verbose   bool
	Metrics   bool // serve /metrics

	// The secret, 32 bytes in hex, comes from at most one of these; none
	// means no secret.
	SecretFile string // -secret-file: a file holding it
	SecretEnv  string // the value of STEWARD_SECRET
	Secret     string // -secret: on the command line, which every local user can read

	// The http.Server's timeouts; each must be positive.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration

	// TLSCert and TLSKey are PEM files: with both the counter serves HTTPS.
	TLSCert, TLSKey string
	// Secure says the clients reach the counter over HTTPS even though it
	// serves HTTP (TLS terminated by a proxy in front). With TLS or Secure,
	// cookies are Secure and named with the __Host- prefix.
	Secure bool

	// PassivateAfter is the engine's passivation timeout (tests shorten
	// it); zero means the engine's default.
	PassivateAfter time.Duration
	// store replaces the storage chosen by Storage (tests inject failures).
	store storage.Storage
	// logOut receives the logs; nil means os.Stderr (tests capture them).
	logOut io.Writer
}

// secretEnv is the environment variable that can hold the secret.
const secretEnv = "STEWARD_SECRET"

func main() {
	cfg, err := parseArgs(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		os.Exit(2) // parseArgs said why
	}
	// Read once: children of this process need not inherit it.
	_ = os.Unsetenv(secretEnv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		stop()
		fmt.Fprintln(os.Stderr, "counter:", err)
		os.Exit(1)
	}
}

// parseArgs reads the command line and, through getenv, the environment.
// Errors and the usage are written to stderr, as the flag package does.
func parseArgs(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("counter", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&cfg.Storage, "storage", "directory", "where sessions live: directory (cached) | memory | redis")
	fs.StringVar(&cfg.Dir, "dir", ".sessions", "the session directory for -storage directory")
	fs.StringVar(&cfg.Redis, "redis", "redis://127.0.0.1:6379/0", "Redis URL for -storage redis")
	fs.StringVar(&cfg.Transport, "transport", "cookie", "how the session travels: cookie | header")
	fs.StringVar(&cfg.Mode, "mode", "server", "server: the count lives in the storage; client: it travels, encrypted")
	fs.StringVar(&cfg.SecretFile, "secret-file", "", "file holding the 32-byte key in hex: encrypts in client mode, signs the ID in server mode (or set "+secretEnv+")")
	fs.StringVar(&cfg.Secret, "secret", "", "the key in hex on the command line: discouraged, every local user can read it; use -secret-file or "+secretEnv)
	fs.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", defaultReadHeaderTimeout, "how long a client may take to send a request's headers")
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", defaultReadTimeout, "how long a client may take to send a whole request, body included")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", defaultWriteTimeout, "how long a request may take from the end of its headers to the end of the response")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", defaultIdleTimeout, "how long a keep-alive connection may stay idle between requests")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "certificate chain (PEM) to serve HTTPS, with -tls-key")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "private key (PEM) of -tls-cert")
	fs.BoolVar(&cfg.Secure, "secure", false, "clients come over HTTPS through a proxy that terminates TLS: cookies are Secure, named __Host-")
	fs.BoolVar(&cfg.Verbose, "v", false, "log the engine's debug messages to stderr")
	fs.BoolVar(&cfg.Metrics, "metrics", false, "serve the engine's metrics at /metrics in Prometheus text format")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected argument %q", fs.Arg(0))
		fmt.Fprintln(fs.Output(), err)
		fs.Usage()
		return config{}, err
	}
	cfg.SecretEnv = getenv(secretEnv)
	return cfg, nil
}

// The http.Server's limits, the defaults of their flags. Without them a
// client holds a connection for as long as it likes: one that sends its
// headers or its body a byte at a time, or that never closes an idle
// keep-alive connection.
const (
	defaultReadHeaderTimeout = 5 * time.Second  // the request line and headers
	defaultReadTimeout       = 10 * time.Second // the whole request, body included (the counter reads none)
	defaultWriteTimeout      = 15 * time.Second // from the end of the headers to the end of the response
	defaultIdleTimeout       = 30 * time.Second // a keep-alive connection between requests
	// maxHeaderBytes bounds the request line and headers: room for several
	// 4096-byte cookies, far below net/http's default of 1 MiB.
	maxHeaderBytes = 32 << 10
)

// run serves until ctx ends (main: SIGINT or SIGTERM), then shuts down
// gracefully.
func run(ctx context.Context, cfg config, stdout io.Writer) error {
	srv, err := newServer(cfg)
	if err != nil {
		return err
	}
	app, err := newApp(cfg)
	if err != nil {
		return err
	}
	srv.Handler = app.handler
	srv.ErrorLog = slog.NewLogLogger(app.log.Handler(), slog.LevelWarn)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		_ = app.close(context.Background())
		return err
	}
	served := make(chan error, 1)
	scheme := "http"
	if srv.TLSConfig != nil {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "listening on %s://%s\n", scheme, ln.Addr())
	if app.metrics != nil {
		fmt.Fprintf(stdout, "metrics on %s://%s/metrics\n", scheme, ln.Addr())
	}
	if srv.TLSConfig != nil {
		go func() { served <- srv.ServeTLS(ln, "", "") }() // the certificate is in TLSConfig
	} else {
		go func() { served <- srv.Serve(ln) }()
	}

	select {
	case err = <-served: // the listener failed
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutdown); serr != nil && err == nil {
		err = serr
	}
	if cerr := app.close(shutdown); cerr != nil && err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// servesTLS reports whether cfg asks for HTTPS: -tls-cert and -tls-key,
// which go together.
func servesTLS(cfg config) (bool, error) {
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return false, errors.New("-tls-cert and -tls-key go together")
	}
	return cfg.TLSCert != "", nil
}

// newServer returns the http.Server with the limits of cfg, and no
// handler yet; with TLS its TLSConfig holds the certificate, loaded now so
// that a bad file stops the counter before it says it is listening.
func newServer(cfg config) (*http.Server, error) {
	for _, t := range []struct {
		flag string
		d    time.Duration
	}{
		{"-read-header-timeout", cfg.ReadHeaderTimeout},
		{"-read-timeout", cfg.ReadTimeout},
		{"-write-timeout", cfg.WriteTimeout},
		{"-idle-timeout", cfg.IdleTimeout},
	} {
		if t.d <= 0 {
			return nil, fmt.Errorf("%s must be positive, not %v", t.flag, t.d)
		}
	}
	srv := &http.Server{
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
	on, err := servesTLS(cfg)
	if err != nil || !on {
		return srv, err
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("-tls-cert, -tls-key: %w", err)
	}
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	return srv, nil
}

// app is the counter's engine, session kind and HTTP handler.
type app struct {
	log     *slog.Logger
	eng     *engine.Engine
	counts  *engine.Kind[Count]
	metrics *sdkmetric.MeterProvider // with -metrics
	handler http.Handler
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

	key, err := loadSecret(cfg, logger)
	if err != nil {
		return nil, err
	}
	overTLS, err := servesTLS(cfg)
	if err != nil {
		return nil, err
	}
	// Over HTTPS the cookie is Secure, so that it never travels in clear,
	// and named __Host-, which browsers accept only from a secure origin,
	// for this host alone (no Domain) and Path=/: a sibling subdomain or a
	// plain-HTTP page cannot plant or overwrite it.
	secure := overTLS || cfg.Secure
	opts := engine.Options{Logger: logger, PassivateAfter: cfg.PassivateAfter}
	var metrics http.Handler
	var mp *sdkmetric.MeterProvider
	if cfg.Metrics {
		if mp, metrics, err = newMetrics(); err != nil {
			return nil, err
		}
		opts.MeterProvider = mp
	}
	eng, err := engine.New(opts)
	if err != nil {
		return nil, err
	}
	a := &app{log: logger, eng: eng, metrics: mp}
	fail := func(err error) (*app, error) {
		_ = a.close(context.Background())
		return nil, err
	}
	var (
		store storage.Storage // nil in client mode
		name  = "SESSION_ID"
		ts    []transport.Transformer
	)
	switch cfg.Mode {
	case "", "server":
		if store, err = openStorage(cfg); err != nil {
			return fail(err)
		}
		if key != nil {
			ts = append(ts, transport.Sign(key))
		}
	case "client":
		name = "SESSION"
		if key == nil {
			key = make([]byte, 32)
			_, _ = rand.Read(key)
			logger.Warn("client mode without a secret (-secret-file or " + secretEnv + "): a random key is used, sessions end when the server stops")
		}
		ts = append(ts, transport.Encrypt(key))
	default:
		return fail(fmt.Errorf("unknown -mode %q (want server or client)", cfg.Mode))
	}

	kind := engine.KindOptions{Storage: store}
	if store != nil {
		kind.NewID = newID
	}
	a.counts, err = engine.Register[Count](eng, name, kind)
	if err != nil {
		if c, ok := store.(io.Closer); ok {
			_ = c.Close() // the engine owns it only once registered
		}
		return fail(err)
	}
	var binding transport.Binding
	switch cfg.Transport {
	case "cookie":
		cc := transport.CookieConfig{Name: name}
		if secure {
			cc.Name, cc.Secure = "__Host-"+name, true
		}
		binding = transport.Cookie(a.counts, cc, ts...)
	case "header":
		binding = transport.Header(a.counts, transport.HeaderConfig{Name: "X-Session"}, ts...)
	default:
		return fail(fmt.Errorf("unknown -transport %q (want cookie or header)", cfg.Transport))
	}
	sessions, err := transport.Middleware(binding)
	if err != nil {
		return fail(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.get)
	mux.HandleFunc("POST /increment", a.increment)
	mux.HandleFunc("POST /renew", a.renew)
	mux.HandleFunc("POST /logout", a.logout)
	// A browser on another site may not make the POSTs (CSRF): refused
	// before they reach a session. Requests without Sec-Fetch-Site and
	// Origin (curl, API clients) pass.
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(a.crossOrigin))
	h := csrf.Handler(sessions(mux))
	if metrics != nil {
		// Beside the application, not behind its sessions: a scrape
		// carries no cookie and touches no session.
		top := http.NewServeMux()
		top.Handle("GET /metrics", metrics)
		top.Handle("/", h)
		h = top
	}
	a.handler = noStore(h)
	return a, nil
}

// newMetrics returns the MeterProvider the engine records into and the
// handler that serves what it recorded in Prometheus text format: the
// OpenTelemetry SDK read by its Prometheus exporter, on a registry of its
// own (never the default one, so nothing else is served), without the
// exporter's target_info and otel_scope_info series, so that every series
// is the engine's, prefixed steward_.
func newMetrics() (*sdkmetric.MeterProvider, http.Handler, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutTargetInfo(), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	return mp, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil
}

// newID generates session IDs of 26 base32 characters, 130 random bits
// from crypto/rand: OWASP ASVS 5.0 asks 128 bits of a session token, and
// the engine's default, a random UUID, has 122.
func newID() (string, error) { return rand.Text(), nil }

// noStore marks every response as private to its client and as JSON that
// must not be sniffed as anything else.
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// crossOrigin answers a request refused by the cross-origin protection.
func (a *app) crossOrigin(w http.ResponseWriter, r *http.Request) {
	a.log.Info("counter: cross-origin request refused", "method", r.Method, "path", r.URL.Path,
		"origin", r.Header.Get("Origin"), "sec-fetch-site", r.Header.Get("Sec-Fetch-Site"))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusForbidden)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": "cross-origin request refused"})
}

// close closes the engine, then the metrics that recorded it.
func (a *app) close(ctx context.Context) error {
	err := a.eng.Close(ctx)
	if err == nil && a.metrics != nil {
		err = a.metrics.Shutdown(ctx)
	}
	return err
}

// openStorage opens the storage that -storage names.
func openStorage(cfg config) (storage.Storage, error) {
	if cfg.store != nil {
		return cfg.store, nil
	}
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

// maxSecretFile bounds what -secret-file reads: a key is 64 hex digits.
const maxSecretFile = 4096

// loadSecret returns the key from -secret-file, STEWARD_SECRET or -secret,
// nil if none is given, and an error if more than one is: which one wins
// must never be a guess. -secret works but is logged as a warning: the
// command line of a process is readable by every local user (ps,
// /proc/PID/cmdline) for as long as it runs.
func loadSecret(cfg config, log *slog.Logger) ([]byte, error) {
	var given []string
	if cfg.SecretFile != "" {
		given = append(given, "-secret-file")
	}
	if cfg.SecretEnv != "" {
		given = append(given, secretEnv)
	}
	if cfg.Secret != "" {
		given = append(given, "-secret")
	}
	switch {
	case len(given) == 0:
		return nil, nil
	case len(given) > 1:
		return nil, fmt.Errorf("the secret is given %d ways (%s): give it one way", len(given), strings.Join(given, ", "))
	case cfg.SecretFile != "":
		h, err := readSecretFile(cfg.SecretFile, log)
		if err != nil {
			return nil, err
		}
		return parseSecret(h, "the file of -secret-file")
	case cfg.SecretEnv != "":
		return parseSecret(cfg.SecretEnv, secretEnv)
	}
	log.Warn("counter: -secret puts the key on the command line, where every local user can read it (ps, /proc/PID/cmdline); use -secret-file PATH or " + secretEnv)
	return parseSecret(cfg.Secret, "-secret")
}

// readSecretFile returns the contents of the -secret-file file, and warns
// when other users may read or change it.
func readSecretFile(path string, log *slog.Logger) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("-secret-file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("counter: the secret file is open to other users; chmod 600 it", "file", path, "mode", fi.Mode().Perm().String())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("-secret-file: %w", err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("-secret-file: %s is larger than a key (%d bytes or more)", path, maxSecretFile)
	}
	return string(b), nil
}

// parseSecret decodes a secret: 32 bytes in hex, surrounding white space
// (a final newline) ignored. Its errors never quote the secret.
func parseSecret(h, from string) ([]byte, error) {
	key, err := hex.DecodeString(strings.TrimSpace(h))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%s must hold 32 bytes in hex (64 hex digits), e.g. from: openssl rand -hex 32", from)
	}
	return key, nil
}

func (a *app) get(w http.ResponseWriter, r *http.Request) {
	c, _, err := a.counts.Get(r.Context())
	a.reply(w, r, c, err)
}

func (a *app) increment(w http.ResponseWriter, r *http.Request) {
	c, err := a.counts.Update(r.Context(), func(c *Count) error {
		c.N++
		return nil
	})
	a.reply(w, r, c, err)
}

func (a *app) renew(w http.ResponseWriter, r *http.Request) {
	err := a.counts.Renew(r.Context())
	if errors.Is(err, engine.ErrNoSession) {
		a.reply(w, r, Count{}, nil) // nothing to renew: still no session
		return
	}
	if err != nil {
		a.reply(w, r, Count{}, err)
		return
	}
	c, _, err := a.counts.Get(r.Context())
	a.reply(w, r, c, err)
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	if err := a.counts.Clear(r.Context()); err != nil {
		a.reply(w, r, Count{}, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// reply writes {"count": N}, or the error: 503 when the storage or the
// engine is unavailable, 409 for a cookie renewed since the request began
// (engine.ErrRenewed: retry), 500 otherwise. The body names only the class of
// the failure ("storage unavailable", "internal error"): the error itself
// can hold file paths, the Redis address or a session's file name, so it
// goes to the log, never to the client.
func (a *app) reply(w http.ResponseWriter, r *http.Request, c Count, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		status, msg := http.StatusInternalServerError, "internal error"
		switch {
		case errors.Is(err, engine.ErrStorage):
			status, msg = http.StatusServiceUnavailable, "storage unavailable"
		case errors.Is(err, engine.ErrClosed):
			status, msg = http.StatusServiceUnavailable, "shutting down"
		case errors.Is(err, engine.ErrRenewed):
			// The cookie was renewed (a login) after this request began:
			// the client has the new one by now and may retry.
			status, msg = http.StatusConflict, "session renewed: retry"
		}
		level := slog.LevelError
		if errors.Is(err, context.Canceled) || errors.Is(err, engine.ErrRenewed) {
			level = slog.LevelInfo // the client went away, or raced its own login
		}
		a.log.Log(r.Context(), level, "counter: request failed",
			"method", r.Method, "path", r.URL.Path, "status", status, "error", err)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]int{"count": c.N})
}
