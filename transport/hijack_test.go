package transport_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/transport"
)

// TestHijack upgrades connections through the middleware over loopback,
// the way WebSocket libraries do: the 101 response carries the Set-Cookie
// of the session the handler created before hijacking, whether net/http
// writes it (WriteHeader, then Hijack: coder/websocket) or the handler
// writes it by hand from w.Header() (gorilla/websocket).
func TestHijack(t *testing.T) {
	created := func(t *testing.T, k *engine.Kind[counter], r *http.Request) {
		if _, err := k.Update(r.Context(), func(c *counter) error { c.N++; return nil }); err != nil {
			t.Error(err)
		}
	}
	// talk ends the upgraded exchange: one line each way.
	talk := func(t *testing.T, conn net.Conn, brw *bufio.ReadWriter) {
		defer conn.Close()
		line, err := brw.ReadString('\n')
		if err != nil {
			t.Errorf("reading the upgraded connection: %v", err)
			return
		}
		brw.WriteString("echo " + line)
		if err := brw.Flush(); err != nil {
			t.Errorf("writing the upgraded connection: %v", err)
		}
	}
	a := newApp(t, appConfig{wrap: func(mux *http.ServeMux, k *engine.Kind[counter]) {
		mux.HandleFunc("GET /upgrade/status", func(w http.ResponseWriter, r *http.Request) {
			created(t, k, r)
			w.Header().Set("Upgrade", "test")
			w.Header().Set("Connection", "Upgrade")
			w.WriteHeader(http.StatusSwitchingProtocols)
			conn, brw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Errorf("Hijack: %v", err)
				return
			}
			talk(t, conn, brw)
		})
		mux.HandleFunc("GET /upgrade/raw", func(w http.ResponseWriter, r *http.Request) {
			created(t, k, r)
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("Hijack: %v", err)
				return
			}
			// After Hijack, w.Header() holds what the middleware applied.
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n")
			if err := w.Header().Write(brw); err != nil {
				t.Error(err)
			}
			brw.WriteString("\r\n")
			if err := brw.Flush(); err != nil {
				t.Error(err)
			}
			talk(t, conn, brw)
		})
	}})

	for _, path := range []string{"/upgrade/status", "/upgrade/raw"} {
		t.Run(path, func(t *testing.T) {
			conn, err := net.Dial("tcp", a.srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			req, err := http.NewRequest("GET", a.srv.URL+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "test")
			if err := req.Write(conn); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status %d, want 101", resp.StatusCode)
			}
			r := response{status: resp.StatusCode, header: resp.Header}
			c := r.cookie(t)
			if c == nil || !storage.ValidID(c.Value) {
				t.Fatalf("the 101 carries Set-Cookie %q, want the new session's", resp.Header.Values("Set-Cookie"))
			}
			if got := resp.Header.Values("Vary"); len(got) != 1 || got[0] != "Cookie" {
				t.Errorf("Vary %q, want [Cookie]", got)
			}
			if _, err := io.WriteString(conn, "ping\n"); err != nil {
				t.Fatal(err)
			}
			if line, err := br.ReadString('\n'); err != nil || line != "echo ping\n" {
				t.Fatalf("upgraded connection answered %q, %v", line, err)
			}
			// The cookie names the session the handler created.
			if got := a.ok(t, a.plain, "GET", "/get", "Cookie: SESSION_ID="+c.Value); got.body != "1" {
				t.Errorf("the session of the 101's cookie holds %q, want 1", got.body)
			}
		})
	}
}

// capableWriter has the optional interfaces of the servers' writers and
// records how they are used: Hijack keeps the Set-Cookie lines the header
// held when it was called.
type capableWriter struct {
	discardWriter
	pushed    []string
	hijacked  bool
	atHijack  []string
	hijackErr error
}

func (w *capableWriter) Push(target string, _ *http.PushOptions) error {
	w.pushed = append(w.pushed, target)
	return nil
}

func (w *capableWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.hijacked = true
	w.atHijack = w.h.Values("Set-Cookie")
	return nil, nil, w.hijackErr
}

// unwrapOnly is another middleware's writer: it hides every optional
// interface of the writer it wraps but Unwrap.
type unwrapOnly struct{ http.ResponseWriter }

func (w unwrapOnly) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestOptionalInterfaces checks that Hijack and Push reach the writer
// underneath, through other wrappers' Unwrap, with the session applied
// before the connection is handed over, and that they say
// http.ErrNotSupported, applying nothing, when nothing underneath can.
func TestOptionalInterfaces(t *testing.T) {
	a := newApp(t, appConfig{})
	mw, err := transport.Middleware(transport.Cookie(a.kind, transport.CookieConfig{}))
	if err != nil {
		t.Fatal(err)
	}
	var hijackErr, pushErr error
	var beforeHijack []string
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := a.kind.Update(r.Context(), func(c *counter) error { c.N++; return nil }); err != nil {
			t.Error(err)
		}
		pushErr = w.(http.Pusher).Push("/app.css", nil)
		_, _, hijackErr = w.(http.Hijacker).Hijack()
		beforeHijack = w.Header().Values("Set-Cookie")
	}))

	t.Run("supported", func(t *testing.T) {
		w := &capableWriter{discardWriter: discardWriter{h: make(http.Header)}}
		h.ServeHTTP(unwrapOnly{w}, httptest.NewRequest("GET", "/", nil))
		if pushErr != nil || len(w.pushed) != 1 || w.pushed[0] != "/app.css" {
			t.Errorf("Push: %v, pushed %q", pushErr, w.pushed)
		}
		if hijackErr != nil || !w.hijacked {
			t.Fatalf("Hijack: %v, reached the writer: %v", hijackErr, w.hijacked)
		}
		if len(w.atHijack) != 1 || !strings.HasPrefix(w.atHijack[0], "SESSION_ID=") {
			t.Errorf("Set-Cookie %q when the connection was handed over, want the session's", w.atHijack)
		}
	})

	t.Run("hijack fails", func(t *testing.T) {
		errGone := errors.New("connection gone")
		w := &capableWriter{discardWriter: discardWriter{h: make(http.Header)}, hijackErr: errGone}
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		if !errors.Is(hijackErr, errGone) {
			t.Errorf("Hijack: %v, want the writer's error", hijackErr)
		}
	})

	t.Run("not supported", func(t *testing.T) {
		rec := httptest.NewRecorder() // neither a Hijacker nor a Pusher
		h.ServeHTTP(unwrapOnly{rec}, httptest.NewRequest("GET", "/", nil))
		if !errors.Is(pushErr, http.ErrNotSupported) {
			t.Errorf("Push: %v, want http.ErrNotSupported", pushErr)
		}
		if !errors.Is(hijackErr, http.ErrNotSupported) {
			t.Errorf("Hijack: %v, want http.ErrNotSupported", hijackErr)
		}
		if len(beforeHijack) != 0 {
			t.Errorf("a failed Hijack applied the session: Set-Cookie %q", beforeHijack)
		}
		// The response the handler then writes carries the session.
		if got := rec.Header().Values("Set-Cookie"); len(got) != 1 {
			t.Errorf("Set-Cookie %q after the handler returned, want one", got)
		}
	})
}

// TestVaryOnRead checks the Vary header of responses whose handler read
// sessions of several kinds: one line per transport's request header, and
// none for a Custom transport, whose request header the middleware does
// not know.
func TestVaryOnRead(t *testing.T) {
	a := newApp(t, appConfig{})
	type pref struct{ Dark bool }
	prefs, err := engine.Register[pref](a.eng, "PREF", engine.KindOptions{Storage: newMapStorage()})
	if err != nil {
		t.Fatal(err)
	}
	type token struct{}
	tokens, err := engine.Register[token](a.eng, "TOK", engine.KindOptions{Storage: newMapStorage()})
	if err != nil {
		t.Fatal(err)
	}
	mw, err := transport.Middleware(
		transport.Cookie(a.kind, transport.CookieConfig{}),
		transport.Header(tokens, transport.HeaderConfig{Name: "X-Token"}),
		transport.Custom(prefs, &recordingTransport{}),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		read func(r *http.Request) error
		want []string
	}{
		{"none", func(*http.Request) error { return nil }, nil},
		{"cookie", func(r *http.Request) error { _, _, err := a.kind.Get(r.Context()); return err }, []string{"Cookie"}},
		{"header", func(r *http.Request) error { _, _, err := tokens.Get(r.Context()); return err }, []string{"X-Token"}},
		{"custom", func(r *http.Request) error { _, _, err := prefs.Get(r.Context()); return err }, nil},
		{"all", func(r *http.Request) error {
			_, _, err1 := a.kind.Get(r.Context())
			_, _, err2 := tokens.Get(r.Context())
			_, _, err3 := prefs.Get(r.Context())
			return errors.Join(err1, err2, err3)
		}, []string{"Cookie", "X-Token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptestRecord(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := tc.read(r); err != nil {
					t.Error(err)
				}
				fmt.Fprint(w, "ok")
			})), "GET", "/", nil)
			if got := rec.Header().Values("Vary"); !slices.Equal(got, tc.want) {
				t.Errorf("Vary %q, want %q", got, tc.want)
			}
			if got := rec.Header().Values("Cache-Control"); len(got) != 0 {
				t.Errorf("Cache-Control %q on a response that sends no ID", got)
			}
		})
	}
}
