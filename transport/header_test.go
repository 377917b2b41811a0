package transport_test

import (
	"net/http"
	"testing"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/transport"
)

func headerApp(t *testing.T) *app {
	t.Helper()
	return newApp(t, appConfig{bind: func(k transport.Kind) transport.Binding {
		return transport.Header(k, transport.HeaderConfig{Name: "X-Session"})
	}})
}

func TestHeaderRoundTrip(t *testing.T) {
	a := headerApp(t)
	if r := a.ok(t, a.plain, "GET", "/get"); r.body != "none" || len(r.header.Values("X-Session")) != 0 {
		t.Fatalf("a read without a session: body %q, X-Session %q", r.body, r.header.Values("X-Session"))
	}
	if s := a.eng.Stats(); s.Spawned != 0 {
		t.Errorf("a read without a session spawned %d actors", s.Spawned)
	}

	r := a.ok(t, a.plain, "POST", "/inc")
	id := r.header.Get("X-Session")
	if !storage.ValidID(id) {
		t.Fatalf("X-Session %q after the first Set", id)
	}
	if got := r.header.Values("Vary"); len(got) != 1 || got[0] != "X-Session" {
		t.Errorf("Vary %q, want [X-Session]", got)
	}
	if got := r.header.Get("Cache-Control"); got != `no-cache="X-Session"` {
		t.Errorf("Cache-Control %q", got)
	}
	if len(r.header.Values("Set-Cookie")) != 0 {
		t.Error("the header transport sent a cookie")
	}

	r = a.ok(t, a.plain, "POST", "/inc", "X-Session: "+id)
	if r.body != "2" {
		t.Errorf("count %q, want 2", r.body)
	}
	if got, sent := r.header["X-Session"]; sent {
		t.Errorf("X-Session %q sent again though the ID did not change", got)
	}
	if got := r.header.Values("Vary"); len(got) != 1 || got[0] != "X-Session" {
		t.Errorf("Vary %q on a response that read the session, want [X-Session]", got)
	}

	// Renew: the new ID comes back; a later request with the old one is
	// refused and learns nothing.
	r = a.ok(t, a.plain, "POST", "/renew", "X-Session: "+id)
	renewed := r.header.Get("X-Session")
	if !storage.ValidID(renewed) || renewed == id {
		t.Fatalf("X-Session %q after Renew (old %q)", renewed, id)
	}
	r = a.do(t, a.plain, "POST", "/inc", "X-Session: "+id)
	if _, sent := r.header["X-Session"]; r.status != http.StatusConflict || sent {
		t.Errorf("through the old ID: %d %q, X-Session %q; want 409 and no header", r.status, r.body, r.header.Values("X-Session"))
	}
	if r = a.ok(t, a.plain, "POST", "/inc", "X-Session: "+renewed); r.body != "3" {
		t.Errorf("through the new ID: %q, want 3", r.body)
	}

	// Clear: the header comes back empty.
	r = a.ok(t, a.plain, "POST", "/clear", "X-Session: "+renewed)
	if got, sent := r.header["X-Session"]; !sent || len(got) != 1 || got[0] != "" {
		t.Errorf("X-Session %q after Clear, want one empty value", got)
	}
	if got := r.header.Values("Vary"); len(got) != 1 || got[0] != "X-Session" {
		t.Errorf("Vary %q after Clear, want [X-Session]", got)
	}
	if r = a.ok(t, a.plain, "GET", "/get", "X-Session: "+renewed); r.body != "none" {
		t.Errorf("count %q after Clear, want none", r.body)
	}
}

func TestHeaderMultipleValues(t *testing.T) {
	a := headerApp(t)
	id := a.ok(t, a.plain, "POST", "/inc").header.Get("X-Session")
	tests := []struct {
		name   string
		header []string
	}{
		{"two lines, garbage first", []string{"X-Session: not/valid", "X-Session: " + id}},
		{"comma list, garbage first", []string{"X-Session: ../x, " + id}},
		{"comma list, empty first", []string{"X-Session: ," + id + ", other"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := a.ok(t, a.plain, "GET", "/id", tt.header...); r.body != id {
				t.Errorf("the handler sees %q, want %q", r.body, id)
			}
		})
	}
}

func TestHeaderDefaultName(t *testing.T) {
	a := newApp(t, appConfig{bind: func(k transport.Kind) transport.Binding {
		return transport.Header(k, transport.HeaderConfig{})
	}})
	r := a.ok(t, a.plain, "POST", "/inc")
	id := r.header.Get("SESSION_ID")
	if !storage.ValidID(id) {
		t.Fatalf("SESSION_ID header %q", id)
	}
	if r = a.ok(t, a.plain, "GET", "/get", "Session_id: "+id); r.body != "1" {
		t.Errorf("count %q, want 1", r.body)
	}
}

func TestHeaderConfigErrors(t *testing.T) {
	eng, err := engine.New(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(t.Context()) })
	st := newMapStorage()
	kind, err := engine.Register[counter](eng, "SESSION_ID", engine.KindOptions{Storage: st})
	if err != nil {
		t.Fatal(err)
	}
	other, err := engine.RegisterRaw(eng, "OTHER", engine.KindOptions{Storage: st})
	if err != nil {
		t.Fatal(err)
	}
	badName, err := engine.RegisterRaw(eng, "a:b", engine.KindOptions{Storage: st})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		bindings []transport.Binding
	}{
		{"invalid name", []transport.Binding{transport.Header(kind, transport.HeaderConfig{Name: "X Session"})}},
		{"kind name not a token", []transport.Binding{transport.Header(badName, transport.HeaderConfig{})}},
		{"Cookie", []transport.Binding{transport.Header(kind, transport.HeaderConfig{Name: "cookie"})}},
		{"Content-Length", []transport.Binding{transport.Header(kind, transport.HeaderConfig{Name: "Content-Length"})}},
		{"nil kind", []transport.Binding{transport.Header(nil, transport.HeaderConfig{})}},
		{"two kinds in one header", []transport.Binding{
			transport.Header(kind, transport.HeaderConfig{Name: "X-Session"}),
			transport.Header(other, transport.HeaderConfig{Name: "x-session"}),
		}},
		{"nil custom transport", []transport.Binding{transport.Custom(kind, nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := transport.Middleware(tt.bindings...)
			if err == nil {
				t.Fatal("Middleware accepted the configuration")
			}
			isConfigError(t, err)
			if mw != nil {
				t.Error("Middleware returned a middleware with its error")
			}
		})
	}
}
