package transport_test

import (
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/transport"
)

func TestCookieAttributes(t *testing.T) {
	tests := []struct {
		name      string
		cfg       transport.CookieConfig
		wantSet   string // "<id>" stands for the session ID
		wantClear string
	}{
		{
			name:      "defaults",
			cfg:       transport.CookieConfig{},
			wantSet:   "SESSION_ID=<id>; Path=/; HttpOnly; SameSite=Lax",
			wantClear: "SESSION_ID=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; SameSite=Lax",
		},
		{
			name: "everything set",
			cfg: transport.CookieConfig{
				Name: "sid", Path: "/app", Domain: "example.com", MaxAge: 3600, Secure: true,
				DisableHTTPOnly: true, SameSite: http.SameSiteStrictMode, Partitioned: true,
			},
			wantSet:   "sid=<id>; Path=/app; Domain=example.com; Max-Age=3600; Secure; SameSite=Strict; Partitioned",
			wantClear: "sid=; Path=/app; Domain=example.com; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Secure; SameSite=Strict; Partitioned",
		},
		{
			name:      "browser default SameSite",
			cfg:       transport.CookieConfig{SameSite: http.SameSiteDefaultMode},
			wantSet:   "SESSION_ID=<id>; Path=/; HttpOnly",
			wantClear: "SESSION_ID=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly",
		},
		{
			name:      "SameSite None",
			cfg:       transport.CookieConfig{SameSite: http.SameSiteNoneMode, Secure: true},
			wantSet:   "SESSION_ID=<id>; Path=/; HttpOnly; Secure; SameSite=None",
			wantClear: "SESSION_ID=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Secure; SameSite=None",
		},
		{
			name:      "__Host- prefix",
			cfg:       transport.CookieConfig{Name: "__Host-sid", Secure: true},
			wantSet:   "__Host-sid=<id>; Path=/; HttpOnly; Secure; SameSite=Lax",
			wantClear: "__Host-sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Secure; SameSite=Lax",
		},
		{
			name:      "__Secure- prefix with a path",
			cfg:       transport.CookieConfig{Name: "__Secure-sid", Secure: true, Path: "/api"},
			wantSet:   "__Secure-sid=<id>; Path=/api; HttpOnly; Secure; SameSite=Lax",
			wantClear: "__Secure-sid=; Path=/api; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Secure; SameSite=Lax",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			a := newApp(t, appConfig{bind: func(k transport.Kind) transport.Binding { return transport.Cookie(k, cfg) }})
			name := cfg.Name
			if name == "" {
				name = "SESSION_ID"
			}

			r := a.ok(t, a.plain, "POST", "/inc")
			c := r.cookie(t)
			if c == nil {
				t.Fatal("no Set-Cookie on the first Set")
			}
			if !storage.ValidID(c.Value) {
				t.Fatalf("cookie value %q is not a valid ID", c.Value)
			}
			got := r.header.Get("Set-Cookie")
			if c.MaxAge > 0 {
				// Expires goes with Max-Age, at the same instant.
				base, exp, ok := strings.Cut(got, "; Expires=")
				at, err := http.ParseTime(exp)
				if !ok || err != nil || at.Sub(time.Now().Add(time.Duration(c.MaxAge)*time.Second)).Abs() > time.Minute {
					t.Errorf("Set-Cookie %s: Expires %q does not match Max-Age %d", got, exp, c.MaxAge)
				}
				got = base
			}
			if want := strings.Replace(tt.wantSet, "<id>", c.Value, 1); got != want {
				t.Errorf("Set-Cookie:\n got %s\nwant %s", got, want)
			}
			if got := r.header.Values("Vary"); len(got) != 1 || got[0] != "Cookie" {
				t.Errorf("Vary = %q, want [Cookie]", got)
			}
			if got := r.header.Values("Cache-Control"); len(got) != 1 || got[0] != `no-cache="Set-Cookie"` {
				t.Errorf(`Cache-Control = %q, want [no-cache="Set-Cookie"]`, got)
			}

			r = a.ok(t, a.plain, "POST", "/clear", "Cookie: "+name+"="+c.Value)
			if got := r.header.Get("Set-Cookie"); got != tt.wantClear {
				t.Errorf("clearing Set-Cookie:\n got %s\nwant %s", got, tt.wantClear)
			}
			if cc := r.cookie(t); cc.MaxAge >= 0 {
				t.Errorf("clearing cookie parses with MaxAge %d, want < 0", cc.MaxAge)
			}
			if got := r.header.Values("Vary"); len(got) != 1 || got[0] != "Cookie" {
				t.Errorf("Vary = %q, want [Cookie]", got)
			}
		})
	}
}

func TestCookieConfigErrors(t *testing.T) {
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
	badName, err := engine.RegisterRaw(eng, "not a token", engine.KindOptions{Storage: st})
	if err != nil {
		t.Fatal(err)
	}
	cookie := func(cfg transport.CookieConfig) []transport.Binding {
		return []transport.Binding{transport.Cookie(kind, cfg)}
	}
	bad := []struct {
		name     string
		bindings []transport.Binding
	}{
		{"invalid name", cookie(transport.CookieConfig{Name: "a b"})},
		{"name with a semicolon", cookie(transport.CookieConfig{Name: "a;b"})},
		{"kind name not a token", []transport.Binding{transport.Cookie(badName, transport.CookieConfig{})}},
		{"__Host- without Secure", cookie(transport.CookieConfig{Name: "__Host-sid"})},
		{"__host- lower case without Secure", cookie(transport.CookieConfig{Name: "__host-sid"})},
		{"__Host- with a Domain", cookie(transport.CookieConfig{Name: "__Host-sid", Secure: true, Domain: "example.com"})},
		{"__Host- with a Path", cookie(transport.CookieConfig{Name: "__Host-sid", Secure: true, Path: "/app"})},
		{"__Secure- without Secure", cookie(transport.CookieConfig{Name: "__Secure-sid"})},
		{"SameSite=None without Secure", cookie(transport.CookieConfig{SameSite: http.SameSiteNoneMode})},
		{"Partitioned without Secure", cookie(transport.CookieConfig{Partitioned: true})},
		{"relative Path", cookie(transport.CookieConfig{Path: "app"})},
		{"Path with a semicolon", cookie(transport.CookieConfig{Path: "/a;Domain=evil.com"})},
		{"bad Domain", cookie(transport.CookieConfig{Domain: "exa mple.com"})},
		{"negative MaxAge", cookie(transport.CookieConfig{MaxAge: -1})},
		{"unknown SameSite", cookie(transport.CookieConfig{SameSite: 99})},
		{"nil kind", []transport.Binding{transport.Cookie(nil, transport.CookieConfig{})}},
		{"nil *engine.Kind", []transport.Binding{transport.Cookie((*engine.Kind[counter])(nil), transport.CookieConfig{})}},
		{"nil *engine.RawKind", []transport.Binding{transport.Cookie((*engine.RawKind)(nil), transport.CookieConfig{})}},
		{"same kind twice", []transport.Binding{
			transport.Cookie(kind, transport.CookieConfig{}),
			transport.Cookie(kind, transport.CookieConfig{Name: "other"}),
		}},
		{"same kind as cookie and header", []transport.Binding{
			transport.Cookie(kind, transport.CookieConfig{}),
			transport.Header(kind, transport.HeaderConfig{}),
		}},
		{"two kinds in one cookie", []transport.Binding{
			transport.Cookie(kind, transport.CookieConfig{Name: "sid"}),
			transport.Cookie(other, transport.CookieConfig{Name: "sid"}),
		}},
		{"zero Binding", []transport.Binding{{}}},
		{"no binding", nil},
	}
	for _, tt := range bad {
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

	good := []struct {
		name     string
		bindings []transport.Binding
	}{
		{"__Host- done right", cookie(transport.CookieConfig{Name: "__Host-sid", Secure: true, Path: "/"})},
		{"SameSite=None with Secure", cookie(transport.CookieConfig{SameSite: http.SameSiteNoneMode, Secure: true})},
		{"Partitioned with Secure", cookie(transport.CookieConfig{Partitioned: true, Secure: true})},
		{"two kinds, one name, two paths", []transport.Binding{
			transport.Cookie(kind, transport.CookieConfig{Name: "sid", Path: "/a"}),
			transport.Cookie(other, transport.CookieConfig{Name: "sid", Path: "/b"}),
		}},
		{"raw kind", []transport.Binding{transport.Cookie(other, transport.CookieConfig{})}},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := transport.Middleware(tt.bindings...); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCookieLazy(t *testing.T) {
	a := newApp(t, appConfig{})
	// A handler that looked at the session answers according to the
	// cookie, even without one: Vary says so.
	for _, tc := range []struct {
		path string
		vary []string
	}{{"/noop", nil}, {"/get", []string{"Cookie"}}, {"/id", []string{"Cookie"}}} {
		r := a.ok(t, a.client, "GET", tc.path)
		if got := r.header.Values("Set-Cookie"); len(got) != 0 {
			t.Errorf("GET %s: Set-Cookie %q on a request that stored nothing", tc.path, got)
		}
		if got := r.header.Values("Vary"); !slices.Equal(got, tc.vary) {
			t.Errorf("GET %s: Vary %q, want %q", tc.path, got, tc.vary)
		}
		if got := r.header.Values("Cache-Control"); len(got) != 0 {
			t.Errorf("GET %s: Cache-Control %q without Set-Cookie", tc.path, got)
		}
	}
	if s := a.eng.Stats(); s.Spawned != 0 {
		t.Errorf("requests that stored nothing spawned %d actors", s.Spawned)
	}

	r := a.ok(t, a.client, "POST", "/inc")
	if r.cookie(t) == nil {
		t.Fatal("no Set-Cookie on the first Set")
	}
	spawned := a.eng.Stats().Spawned
	r = a.ok(t, a.client, "GET", "/noop")
	if r.cookie(t) != nil {
		t.Error("Set-Cookie on a request that did not touch its session")
	}
	if got := a.eng.Stats().Spawned; got != spawned {
		t.Errorf("a request that did not touch its session spawned %d actors", got-spawned)
	}
}

func TestCookieRoundTrip(t *testing.T) {
	a := newApp(t, appConfig{})
	r := a.ok(t, a.client, "POST", "/inc")
	if r.body != "1" {
		t.Fatalf("first count %q, want 1", r.body)
	}
	first := r.cookie(t)
	if first == nil {
		t.Fatal("no Set-Cookie on the first Set")
	}
	for want := 2; want <= 4; want++ {
		r = a.ok(t, a.client, "POST", "/inc")
		if r.body != strconv.Itoa(want) {
			t.Fatalf("count %q, want %d", r.body, want)
		}
		if c := r.cookie(t); c != nil {
			t.Fatalf("cookie sent again (%v) though the ID did not change", c)
		}
		if got := r.header.Values("Vary"); len(got) != 1 || got[0] != "Cookie" {
			t.Errorf("Vary %q on a response that read the session, want [Cookie]", got)
		}
	}
	if r = a.ok(t, a.client, "GET", "/id"); r.body != first.Value {
		t.Errorf("the handler sees ID %q, the client holds %q", r.body, first.Value)
	}
}

// TestCookieRefresh checks that a cookie with a MaxAge is sent again when
// the session's idle expiry moves forward, and a session cookie is not.
func TestCookieRefresh(t *testing.T) {
	for _, maxAge := range []int{0, 3600} {
		t.Run("MaxAge="+strconv.Itoa(maxAge), func(t *testing.T) {
			a := newApp(t, appConfig{
				bind: func(k transport.Kind) transport.Binding {
					return transport.Cookie(k, transport.CookieConfig{MaxAge: maxAge})
				},
				// The engine writes a sliding expiry through (and reports
				// it refreshed) once it moved by a tenth of the idle timeout.
				kind: engine.KindOptions{IdleTimeout: 10 * time.Second},
			})
			first := a.ok(t, a.client, "POST", "/inc").cookie(t)
			if first == nil {
				t.Fatal("no Set-Cookie on the first Set")
			}
			if first.MaxAge != maxAge {
				t.Errorf("Max-Age %d, want %d", first.MaxAge, maxAge)
			}
			if c := a.ok(t, a.client, "GET", "/get").cookie(t); c != nil {
				t.Errorf("cookie sent again with no time passed: %v", c)
			}

			a.clock.Advance(2 * time.Second)
			r := a.ok(t, a.client, "GET", "/get")
			if r.body != "1" {
				t.Fatalf("count %q, want 1", r.body)
			}
			c := r.cookie(t)
			switch {
			case maxAge == 0 && c != nil:
				t.Errorf("session cookie sent again on refresh: %v", c)
			case maxAge > 0 && c == nil:
				t.Error("cookie with a Max-Age not sent again when the expiry moved")
			case maxAge > 0 && (c.Value != first.Value || c.MaxAge != maxAge):
				t.Errorf("refreshed cookie %q Max-Age %d, want %q Max-Age %d", c.Value, c.MaxAge, first.Value, maxAge)
			}
			if c := a.ok(t, a.client, "GET", "/get").cookie(t); c != nil {
				t.Errorf("cookie sent again with no time passed since the refresh: %v", c)
			}

			// Past the idle timeout the session is gone, and a read expires
			// the stale cookie.
			a.clock.Advance(11 * time.Second)
			r = a.ok(t, a.client, "GET", "/get")
			if r.body != "none" {
				t.Errorf("count %q after the idle timeout, want none", r.body)
			}
			if c := r.cookie(t); c == nil || c.MaxAge >= 0 || c.Value != "" {
				t.Errorf("a read of an expired session sent %v, want the cookie expired", c)
			}
		})
	}
}

func TestCookieRenew(t *testing.T) {
	a := newApp(t, appConfig{})
	old := a.ok(t, a.client, "POST", "/inc").cookie(t)
	r := a.ok(t, a.client, "POST", "/renew")
	renewed := r.cookie(t)
	if renewed == nil {
		t.Fatal("no Set-Cookie after Renew")
	}
	if renewed.Value == old.Value || !storage.ValidID(renewed.Value) {
		t.Fatalf("renewed ID %q (old %q)", renewed.Value, old.Value)
	}
	if r.header.Get("Vary") != "Cookie" {
		t.Errorf("Vary %q, want Cookie", r.header.Get("Vary"))
	}

	// The jar holds the new cookie now.
	r = a.ok(t, a.client, "POST", "/inc")
	if r.body != "2" {
		t.Errorf("count through the new ID %q, want 2", r.body)
	}
	if c := r.cookie(t); c != nil {
		t.Errorf("cookie sent again: %v", c)
	}

	// A request that arrives later with the old cookie has no session: it
	// is refused (409 here), applies nothing, learns nothing of the new ID
	// and leaves the client's cookie alone.
	for _, m := range []string{"POST /inc", "GET /get", "POST /renew", "POST /clear"} {
		method, path, _ := strings.Cut(m, " ")
		r = a.do(t, a.plain, method, path, "Cookie: SESSION_ID="+old.Value)
		if r.status != http.StatusConflict || len(r.header.Values("Set-Cookie")) != 0 || strings.Contains(r.body, renewed.Value) {
			t.Errorf("%s with the old cookie: %d %q, Set-Cookie %q; want 409 and no cookie", m, r.status, r.body, r.header.Values("Set-Cookie"))
		}
	}
	if r = a.ok(t, a.client, "GET", "/get"); r.body != "2" {
		t.Errorf("count through the new ID %q, want 2: nothing through the old one counts", r.body)
	}

	// After the grace period the old ID is dead, and never adopted.
	a.clock.Advance(31 * time.Second)
	r = a.ok(t, a.plain, "GET", "/get", "Cookie: SESSION_ID="+old.Value)
	if c := r.cookie(t); r.body != "none" || c == nil || c.MaxAge >= 0 {
		t.Errorf("old ID after the grace period: body %q, Set-Cookie %q; want none and the cookie expired", r.body, r.header.Values("Set-Cookie"))
	}
	r = a.ok(t, a.plain, "POST", "/inc", "Cookie: SESSION_ID="+old.Value)
	if c := r.cookie(t); r.body != "1" || c == nil || c.Value == old.Value || c.Value == renewed.Value {
		t.Errorf("a Set with the dead old ID: body %q cookie %v, want 1 and a fresh ID", r.body, c)
	}
	if r = a.ok(t, a.client, "GET", "/get"); r.body != "2" {
		t.Errorf("count through the new ID %q, want 2", r.body)
	}
}

func TestCookieClear(t *testing.T) {
	a := newApp(t, appConfig{})
	a.ok(t, a.client, "POST", "/inc")
	r := a.ok(t, a.client, "POST", "/clear")
	c := r.cookie(t)
	if c == nil || c.Name != "SESSION_ID" || c.Value != "" || c.MaxAge >= 0 {
		t.Fatalf("clearing Set-Cookie %q, want an expired SESSION_ID", r.header.Get("Set-Cookie"))
	}
	if got := len(a.client.Jar.Cookies(mustURL(t, a.srv.URL))); got != 0 {
		t.Errorf("the jar still holds %d cookies", got)
	}
	if r = a.ok(t, a.client, "GET", "/get"); r.body != "none" {
		t.Errorf("count %q after Clear, want none", r.body)
	}

	// Clearing a request that has no session sends nothing.
	if r = a.ok(t, a.client, "POST", "/clear"); r.cookie(t) != nil {
		t.Errorf("Clear without a session sent %q", r.header.Get("Set-Cookie"))
	}
}

// TestCookieTwoKinds checks two cookie kinds and a header kind on one
// middleware, and that Vary and Cache-Control are not duplicated.
func TestCookieTwoKinds(t *testing.T) {
	type cart struct{ Items []string }
	a := newApp(t, appConfig{})
	carts, err := engine.Register[cart](a.eng, "CART", engine.KindOptions{Storage: newMapStorage()})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := engine.RegisterRaw(a.eng, "TOKEN", engine.KindOptions{Storage: newMapStorage()})
	if err != nil {
		t.Fatal(err)
	}
	mw, err := transport.Middleware(
		transport.Cookie(a.kind, transport.CookieConfig{}),
		transport.Cookie(carts, transport.CookieConfig{Path: "/"}),
		transport.Header(tokens, transport.HeaderConfig{Name: "X-Token"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "Accept-Encoding, cookie")
		if _, err := a.kind.Update(r.Context(), func(c *counter) error { c.N++; return nil }); err != nil {
			t.Error(err)
		}
		if err := carts.Set(r.Context(), cart{Items: []string{"tea"}}); err != nil {
			t.Error(err)
		}
		if engine.BindingOf(r.Context(), tokens) == nil {
			t.Error("no binding for the header kind")
		}
		io.Copy(w, struct{ io.Reader }{strings.NewReader("body")}) // the recorder has no ReadFrom
	}))
	rec := httptestRecord(h, "POST", "/", nil)
	if got := rec.Header().Values("Set-Cookie"); len(got) != 2 ||
		!strings.HasPrefix(got[0], "SESSION_ID=") || !strings.HasPrefix(got[1], "CART=") {
		t.Errorf("Set-Cookie %q, want SESSION_ID and CART", got)
	}
	if got := rec.Header().Values("Vary"); len(got) != 1 || got[0] != "Accept-Encoding, cookie" {
		t.Errorf("Vary %q, want the handler's alone", got)
	}
	if got := rec.Header().Values("Cache-Control"); len(got) != 1 {
		t.Errorf("Cache-Control %q, want one", got)
	}
	if _, sent := rec.Header()["X-Token"]; sent {
		t.Error("the untouched header kind sent X-Token")
	}
	if rec.Body.String() != "body" {
		t.Errorf("body %q", rec.Body.String())
	}
}
