package transport_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/transport"
)

// TestBadInput sends what a hostile or broken client might as the session
// ID, over the wire when the client can send it and in process always:
// never a panic, never a 500, never an adopted ID.
func TestBadInput(t *testing.T) {
	values := []struct{ name, value string }{
		{"empty", ""},
		{"garbage", "garbage!!"},
		{"10 KB of ID characters", strings.Repeat("a", 10<<10)},
		{"one byte too long", strings.Repeat("x", storage.MaxIDLen+1)},
		{"slash", "a/b"},
		{"path traversal", "../../etc/passwd"},
		{"dot dot", ".."},
		{"NUL", "a\x00b"},
		{"percent-encoded NUL", "a%00b"},
		{"CRLF", "a\r\nSet-Cookie: x=y"},
		{"unicode", "сессия"},
		{"snowman", "☃"},
		{"space", "a b"},
		{"quoted garbage", `"!!"`},
		{"well-formed unknown UUID", "6f1c2e1a-3b5d-4c8e-9f00-123456789abc"},
		{"well-formed unknown short ID", "a"},
	}
	transports := []struct {
		name   string
		bind   func(k transport.Kind) transport.Binding
		header func(v string) string // the request header line
		sent   func(r response) string
	}{
		{
			name:   "cookie",
			bind:   func(k transport.Kind) transport.Binding { return transport.Cookie(k, transport.CookieConfig{}) },
			header: func(v string) string { return "Cookie: SESSION_ID=" + v },
			sent: func(r response) string {
				if c, err := http.ParseSetCookie(r.header.Get("Set-Cookie")); err == nil {
					return c.Value
				}
				return ""
			},
		},
		{
			name: "header",
			bind: func(k transport.Kind) transport.Binding {
				return transport.Header(k, transport.HeaderConfig{Name: "X-Session"})
			},
			header: func(v string) string { return "X-Session: " + v },
			sent:   func(r response) string { return r.header.Get("X-Session") },
		},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			a := newApp(t, appConfig{bind: tr.bind})
			check := func(t *testing.T, r response, method, value string) {
				t.Helper()
				if r.status != http.StatusOK {
					t.Fatalf("%s: status %d, body %q", method, r.status, r.body)
				}
				id := tr.sent(r)
				switch method {
				case "GET":
					if r.body != "none" || id != "" {
						t.Errorf("GET: body %q, sent ID %q; want none and nothing", r.body, id)
					}
				case "POST":
					if r.body != "1" {
						t.Errorf("POST: count %q, want a new session's 1", r.body)
					}
					if !storage.ValidID(id) || id == value {
						t.Errorf("POST: sent ID %q for incoming %q: want a fresh server-generated ID", id, value)
					}
				}
			}
			for _, v := range values {
				t.Run(v.name, func(t *testing.T) {
					line := tr.header(v.value)
					name, value, _ := strings.Cut(line, ": ")
					for _, method := range []string{"GET", "POST"} {
						path := map[string]string{"GET": "/get", "POST": "/inc"}[method]
						// In process: any bytes at all.
						rec := httptestRecord(a.srv.Config.Handler, method, path, http.Header{
							textproto.CanonicalMIMEHeaderKey(name): {value},
						})
						check(t, response{status: rec.Code, header: rec.Header(), body: rec.Body.String()}, method, v.value)

						// Over the wire, when net/http lets the client send it.
						req, err := http.NewRequest(method, a.srv.URL+path, nil)
						if err != nil {
							t.Fatal(err)
						}
						req.Header.Add(name, value)
						resp, err := a.plain.Do(req)
						if err != nil {
							continue // an invalid header value: the client refuses
						}
						body, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						check(t, response{status: resp.StatusCode, header: resp.Header, body: string(body)}, method, v.value)
					}
				})
			}
		})
	}
}

// TestCookieDuplicates checks that among several cookies of the session's
// name the first well-formed ID wins, and that junk around it is ignored.
func TestCookieDuplicates(t *testing.T) {
	a := newApp(t, appConfig{})
	id := a.ok(t, a.plain, "POST", "/inc").cookie(t).Value
	big := strings.Repeat("a", 10<<10)
	tests := []struct {
		name    string
		cookies []string // Cookie header lines
		want    string   // the ID the handler sees
	}{
		{"garbage first", []string{"SESSION_ID=junk!; SESSION_ID=" + id}, id},
		{"oversized first", []string{"SESSION_ID=" + big + "; SESSION_ID=" + id}, id},
		{"valid first", []string{"SESSION_ID=" + id + "; SESSION_ID=junk!"}, id},
		{"two header lines", []string{"SESSION_ID=../x", "SESSION_ID=" + id}, id},
		{"quoted", []string{`SESSION_ID="` + id + `"`}, id},
		{"among other cookies", []string{"a=1; SESSION_ID=" + id + "; b=2"}, id},
		{"spaces around", []string{"a=1;   SESSION_ID = " + id + "  ;b=2"}, id},
		{"other name", []string{"OTHER=" + id}, ""},
		{"name prefix", []string{"SESSION_ID2=" + id + "; XSESSION_ID=" + id}, ""},
		{"no value", []string{"SESSION_ID"}, ""},
		{"only separators", []string{";;; ;"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var header []string
			for _, c := range tt.cookies {
				header = append(header, "Cookie: "+c)
			}
			r := a.ok(t, a.plain, "GET", "/id", header...)
			if r.body != tt.want {
				t.Errorf("the handler sees ID %q, want %q", r.body, tt.want)
			}
			r = a.ok(t, a.plain, "GET", "/get", header...)
			if want := map[bool]string{true: "1", false: "none"}[tt.want != ""]; r.body != want {
				t.Errorf("count %q, want %s", r.body, want)
			}
			if c := r.cookie(t); c != nil {
				t.Errorf("a read sent %v", c)
			}
		})
	}
}

// TestLateChange changes the session after the body was written: the
// change could not reach the client, so it is refused with ErrTooLate and
// nothing changes, on a new session and on an existing one.
func TestLateChange(t *testing.T) {
	done := make(chan error, 1)
	a := newApp(t, appConfig{wrap: func(mux *http.ServeMux, k *engine.Kind[counter]) {
		mux.HandleFunc("POST /late", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "written")
			_, err := k.Update(r.Context(), func(c *counter) error { c.N++; return nil })
			done <- err
		})
	}})
	r := a.ok(t, a.plain, "POST", "/late")
	if err := <-done; !errors.Is(err, engine.ErrTooLate) {
		t.Fatalf("Update after the body: %v, want ErrTooLate", err)
	}
	if r.body != "written" {
		t.Errorf("body %q", r.body)
	}
	if c := r.cookie(t); c != nil {
		t.Errorf("Set-Cookie %v after the headers were sent", c)
	}
	// With an existing session: nothing changes either.
	id := a.ok(t, a.plain, "POST", "/inc").cookie(t).Value
	a.ok(t, a.plain, "POST", "/late", "Cookie: SESSION_ID="+id)
	if err := <-done; !errors.Is(err, engine.ErrTooLate) {
		t.Fatalf("Update after the body, existing session: %v", err)
	}
	if r := a.ok(t, a.plain, "GET", "/get", "Cookie: SESSION_ID="+id); r.body != "1" {
		t.Errorf("count %q, want 1: the late update must change nothing", r.body)
	}
}

// TestResponseWriter checks the wrapper: Flush and ResponseController
// through Unwrap, io.Copy and io.WriteString, an explicit WriteHeader, and
// 1xx responses that do not carry the session.
func TestResponseWriter(t *testing.T) {
	inc := func(k *engine.Kind[counter], r *http.Request) error {
		_, err := k.Update(r.Context(), func(c *counter) error { c.N++; return nil })
		return err
	}
	a := newApp(t, appConfig{wrap: func(mux *http.ServeMux, k *engine.Kind[counter]) {
		mux.HandleFunc("GET /flush", func(w http.ResponseWriter, r *http.Request) {
			if _, ok := w.(http.Flusher); !ok {
				t.Error("the ResponseWriter is not an http.Flusher")
			}
			if err := inc(k, r); err != nil {
				t.Error(err)
			}
			rc := http.NewResponseController(w)
			if err := rc.Flush(); err != nil {
				t.Errorf("ResponseController.Flush: %v", err)
			}
			if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
				t.Errorf("ResponseController.SetWriteDeadline: %v", err)
			}
			io.WriteString(w, "flushed")
			w.(http.Flusher).Flush()
		})
		mux.HandleFunc("GET /copy", func(w http.ResponseWriter, r *http.Request) {
			if err := inc(k, r); err != nil {
				t.Error(err)
			}
			// Hide WriterTo, so that io.Copy takes the ReaderFrom path.
			io.Copy(w, struct{ io.Reader }{strings.NewReader("copied")})
		})
		mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
			if err := inc(k, r); err != nil {
				t.Error(err)
			}
			w.WriteHeader(http.StatusCreated)
		})
		mux.HandleFunc("GET /early", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</app.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			if err := inc(k, r); err != nil {
				t.Error(err)
			}
			io.WriteString(w, "final")
		})
	}})

	for _, path := range []string{"/flush", "/copy", "/status"} {
		t.Run(path, func(t *testing.T) {
			r := a.do(t, a.plain, "GET", path)
			if r.status >= 300 {
				t.Fatalf("status %d, body %q", r.status, r.body)
			}
			if c := r.cookie(t); c == nil || !storage.ValidID(c.Value) {
				t.Errorf("Set-Cookie %q", r.header.Values("Set-Cookie"))
			}
		})
	}

	t.Run("/early", func(t *testing.T) {
		var early []textproto.MIMEHeader
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			early = append(early, h)
			return nil
		}}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", a.srv.URL+"/early", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := a.plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if len(early) != 1 || early[0].Get("Link") == "" {
			t.Fatalf("1xx responses %v, want one 103 with Link", early)
		}
		if got := early[0].Values("Set-Cookie"); len(got) != 0 {
			t.Errorf("the 103 carries Set-Cookie %q", got)
		}
		if resp.StatusCode != http.StatusOK || len(resp.Header.Values("Set-Cookie")) != 1 {
			t.Errorf("final response %d with Set-Cookie %q", resp.StatusCode, resp.Header.Values("Set-Cookie"))
		}
	})
}

// TestConcurrentIncrements runs 32 clients × 100 increments of one session
// through a real server: no update may be lost.
func TestConcurrentIncrements(t *testing.T) {
	const clients, perClient = 32, 100
	a := newApp(t, appConfig{})
	id := a.ok(t, a.plain, "POST", "/inc").cookie(t).Value

	var resent atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for range perClient {
				req, err := http.NewRequest("POST", a.srv.URL+"/inc", nil)
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set("Cookie", "SESSION_ID="+id)
				resp, err := a.plain.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("status %d", resp.StatusCode)
					return
				}
				if len(resp.Header.Values("Set-Cookie")) != 0 {
					resent.Add(1)
				}
			}
		})
	}
	wg.Wait()
	want := strconv.Itoa(clients*perClient + 1)
	if r := a.ok(t, a.plain, "GET", "/get", "Cookie: SESSION_ID="+id); r.body != want {
		t.Errorf("count %s, want %s", r.body, want)
	}
	if n := resent.Load(); n != 0 {
		t.Errorf("%d responses sent the unchanged cookie again", n)
	}
}

// recordingTransport is a custom Transport that takes the ID from a query
// parameter and records what it is asked to send.
type recordingTransport struct {
	refresh bool
	mu      sync.Mutex // protects calls
	calls   []string
}

func (t *recordingTransport) Receive(r *http.Request) string { return r.URL.Query().Get("sid") }

func (t *recordingTransport) Send(w http.ResponseWriter, id string) {
	w.Header().Set("X-Sid", id)
	t.record("send " + id)
}

func (t *recordingTransport) Clear(w http.ResponseWriter) { t.record("clear") }

func (t *recordingTransport) SendsOnRefresh() bool { return t.refresh }

func (t *recordingTransport) record(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls = append(t.calls, s)
}

func (t *recordingTransport) take() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.calls
	t.calls = nil
	return c
}

func TestCustomTransport(t *testing.T) {
	for _, refresh := range []bool{false, true} {
		t.Run(fmt.Sprint("SendsOnRefresh=", refresh), func(t *testing.T) {
			rt := &recordingTransport{refresh: refresh}
			a := newApp(t, appConfig{
				bind: func(k transport.Kind) transport.Binding { return transport.Custom(k, rt) },
				kind: engine.KindOptions{IdleTimeout: 10 * time.Second},
			})
			id := a.ok(t, a.plain, "POST", "/inc").header.Get("X-Sid")
			if got := rt.take(); len(got) != 1 || got[0] != "send "+id {
				t.Fatalf("calls %q, want one send", got)
			}
			a.ok(t, a.plain, "GET", "/get?sid="+id)
			if got := rt.take(); len(got) != 0 {
				t.Errorf("calls %q on an unchanged session", got)
			}
			a.clock.Advance(2 * time.Second)
			a.ok(t, a.plain, "GET", "/get?sid="+id)
			got := rt.take()
			if refresh && (len(got) != 1 || got[0] != "send "+id) {
				t.Errorf("calls %q on a refresh, want one send", got)
			}
			if !refresh && len(got) != 0 {
				t.Errorf("calls %q on a refresh, want none", got)
			}
			a.ok(t, a.plain, "POST", "/clear?sid="+id)
			if got := rt.take(); len(got) != 1 || got[0] != "clear" {
				t.Errorf("calls %q on Clear, want one clear", got)
			}
		})
	}
}

func TestNilHandlerPanics(t *testing.T) {
	a := newApp(t, appConfig{})
	mw, err := transport.Middleware(transport.Cookie(a.kind, transport.CookieConfig{}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := recover(); r == nil || !strings.HasPrefix(fmt.Sprint(r), "transport: ") {
			t.Errorf("recovered %v, want a transport: panic", r)
		}
	}()
	mw(nil)
}
