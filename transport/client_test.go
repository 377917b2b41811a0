package transport_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/transport"
)

var (
	key1 = bytes.Repeat([]byte{1}, 32)
	key2 = bytes.Repeat([]byte{2}, 32)
	aes1 = bytes.Repeat([]byte{3}, 16)
	aes2 = bytes.Repeat([]byte{4}, 32)
)

// cart is a client-side session value.
type cart struct {
	Items []string
	N     int
}

// clientApp serves a client-side kind: GET reads, POST /add appends,
// POST /clear clears; responses are "N items" or "none".
type clientApp struct {
	eng   *engine.Engine
	kind  *engine.Kind[cart]
	h     http.Handler
	clock *clock
}

func newClientApp(t testing.TB, name string, codec engine.Codec, bind func(k *engine.Kind[cart]) transport.Binding) *clientApp {
	t.Helper()
	clk := newClock()
	eng, err := engine.New(benchOptions(t, engine.Options{Now: clk.Now}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close(context.Background()) })
	k, err := engine.Register[cart](eng, name, engine.KindOptions{Codec: codec, IdleTimeout: time.Hour, Lifetime: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	mw, err := transport.Middleware(bind(k))
	if err != nil {
		t.Fatal(err)
	}
	a := &clientApp{eng: eng, kind: k, clock: clk}
	a.h = mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/add":
			c, err := k.Update(r.Context(), func(c *cart) error {
				c.Items = append(c.Items, r.URL.Query().Get("item"))
				c.N++
				return nil
			})
			if errors.Is(err, transport.ErrTooLarge) {
				http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
				return
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			fmt.Fprintf(w, "%d items", c.N)
		case "/clear":
			_ = k.Clear(r.Context())
			fmt.Fprint(w, "none")
		default:
			c, ok, err := k.Get(r.Context())
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if !ok {
				fmt.Fprint(w, "none")
				return
			}
			fmt.Fprintf(w, "%d items", c.N)
		}
	}))
	return a
}

// call runs one request carrying the cookie value (or header) and returns
// the response.
func (a *clientApp) call(path, cookieName, value string, header bool) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", path, nil)
	if value != "" {
		if header {
			req.Header.Set(cookieName, value)
		} else {
			req.Header.Set("Cookie", cookieName+"="+value)
		}
	}
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	return rec
}

// sent returns the value the response sets, and whether it clears it.
func sent(rec *httptest.ResponseRecorder, name string, header bool) (value string, cleared bool) {
	if header {
		v, ok := rec.Header()[http.CanonicalHeaderKey(name)]
		if !ok {
			return "", false
		}
		return v[0], v[0] == ""
	}
	for _, line := range rec.Header()["Set-Cookie"] {
		c, err := http.ParseSetCookie(line)
		if err == nil && c.Name == name {
			return c.Value, c.MaxAge < 0
		}
	}
	return "", false
}

func TestClientSideRoundTrips(t *testing.T) {
	chains := map[string][]transport.Transformer{
		"encrypt128":     {transport.Encrypt(aes1)},
		"encrypt256":     {transport.Encrypt(aes2)},
		"sign":           {transport.Sign(key1)},
		"sign+encrypt":   {transport.Sign(key1), transport.Encrypt(aes1)},
		"encrypt+sign":   {transport.Encrypt(aes2), transport.Sign(key2)},
		"digest+encrypt": {transport.Digest([]byte("salt")), transport.Encrypt(aes1)},
		"chain":          {transport.Chain(transport.Sign(key1), transport.Encrypt(aes1))},
	}
	codecs := map[string]engine.Codec{"json": engine.JSONCodec{}, "gob": engine.GobCodec{}}
	for cname, codec := range codecs {
		for tname, ts := range chains {
			for _, header := range []bool{false, true} {
				name := fmt.Sprintf("%s/%s/header=%v", cname, tname, header)
				t.Run(name, func(t *testing.T) {
					a := newClientApp(t, "CART", codec, func(k *engine.Kind[cart]) transport.Binding {
						if header {
							return transport.Header(k, transport.HeaderConfig{Name: "X-Cart"}, ts...)
						}
						return transport.Cookie(k, transport.CookieConfig{}, ts...)
					})
					slot := "CART"
					if header {
						slot = "X-Cart"
					}
					value := ""
					for i := 1; i <= 3; i++ {
						rec := a.call("/add?item=x", slot, value, header)
						if got := rec.Body.String(); got != fmt.Sprintf("%d items", i) {
							t.Fatalf("add %d: %q", i, got)
						}
						v, _ := sent(rec, slot, header)
						if v == "" || v == value {
							t.Fatalf("add %d sent %q", i, v)
						}
						if strings.Contains(v, "Items") || strings.Contains(v, "items") {
							t.Fatal("the value travels in clear text")
						}
						value = v
					}
					rec := a.call("/", slot, value, header)
					if got := rec.Body.String(); got != "3 items" {
						t.Fatalf("read back: %q", got)
					}
					if v, cleared := sent(rec, slot, header); v != "" || cleared {
						t.Fatalf("a read resent the value: %q %v", v, cleared)
					}
					rec = a.call("/clear", slot, value, header)
					if _, cleared := sent(rec, slot, header); !cleared {
						t.Fatal("clear did not remove the client's copy")
					}
					if n := a.eng.Stats().Spawned; n != 0 {
						t.Fatalf("client-side sessions spawned %d actors", n)
					}
				})
			}
		}
	}
}

// TestClientSideHostileValues: each hostile cookie value is "no session",
// never a panic or a 500, and the client's copy is cleared.
func TestClientSideHostileValues(t *testing.T) {
	bind := func(ts ...transport.Transformer) func(k *engine.Kind[cart]) transport.Binding {
		return func(k *engine.Kind[cart]) transport.Binding {
			return transport.Cookie(k, transport.CookieConfig{}, ts...)
		}
	}
	a := newClientApp(t, "CART", nil, bind(transport.Sign(key1), transport.Encrypt(aes1)))
	valid, _ := sent(a.call("/add?item=x", "CART", "", false), "CART", false)
	raw, err := base64.RawURLEncoding.DecodeString(valid)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[(i+len(b))%len(b)] ^= 1
		return enc(b)
	}
	// Values made by other configurations.
	other := func(name string, ts ...transport.Transformer) string {
		o := newClientApp(t, name, nil, bind(ts...))
		v, _ := sent(o.call("/add?item=x", name, "", false), name, false)
		return v
	}
	oldKey := other("CART", transport.Sign(key2), transport.Encrypt(aes2))
	otherName := other("OTHER", transport.Sign(key1), transport.Encrypt(aes1))
	signOnly := other("CART", transport.Sign(key1))
	encryptOnly := other("CART", transport.Encrypt(aes1))
	macOverGarbage := func() string {
		// A correct MAC over bytes that are not an AES-GCM value.
		v, err := transport.Sign(key1).Transform("CART", []byte("garbage that is not ciphertext"))
		if err != nil {
			t.Fatal(err)
		}
		return enc(v)
	}()
	expired := func() string {
		o := newClientApp(t, "CART", nil, bind(transport.Sign(key1), transport.Encrypt(aes1)))
		v, _ := sent(o.call("/add?item=x", "CART", "", false), "CART", false)
		return v
	}()

	hostile := map[string]string{
		"flipped first byte":    flip(0),
		"flipped middle byte":   flip(len(raw) / 2),
		"flipped last byte":     flip(-1),
		"truncated by one":      enc(raw[:len(raw)-1]),
		"truncated to half":     enc(raw[:len(raw)/2]),
		"truncated to one byte": enc(raw[:1]),
		"extended by one":       enc(append(bytes.Clone(raw), 0)),
		"padded base64":         valid + "==",
		"standard base64":       base64.StdEncoding.EncodeToString(raw),
		"wrong key":             oldKey,
		"other session name":    otherName,
		"sign only":             signOnly,
		"encrypt only":          encryptOnly,
		"valid MAC over junk":   macOverGarbage,
		"not base64":            "!!!***",
		"empty quotes":          `""`,
		"oversized":             strings.Repeat("A", 5000),
		"just over the limit":   strings.Repeat("A", transport.MaxValueLen),
		"all zero":              enc(make([]byte, len(raw))),
		"a session ID":          "6f1c2e0a-1b2c-4d3e-8f90-a1b2c3d4e5f6",
		"non-canonical tail":    valid[:len(valid)-1] + string(rune(valid[len(valid)-1]+1)),
		"NUL":                   "a\x00b",
	}
	for name, v := range hostile {
		t.Run(name, func(t *testing.T) {
			rec := a.call("/", "CART", v, false)
			if rec.Code != http.StatusOK || rec.Body.String() != "none" {
				t.Fatalf("%d %q", rec.Code, rec.Body.String())
			}
		})
	}
	// Expiry inside the value: after its lifetime it is refused and cleared
	// even though the client kept it.
	a.clock.Advance(25 * time.Hour)
	rec := a.call("/", "CART", expired, false)
	if rec.Body.String() != "none" {
		t.Fatalf("expired value accepted: %q", rec.Body.String())
	}
	if _, cleared := sent(rec, "CART", false); !cleared {
		t.Fatal("an expired value must be cleared")
	}
	// A garbage value that reaches the engine is cleared as well.
	rec = a.call("/", "CART", flip(3), false)
	if _, cleared := sent(rec, "CART", false); !cleared {
		t.Fatal("an unverifiable value must be cleared")
	}
}

// TestClientSideKeyRotation: values written under the old key are read
// under (new, old) and rewritten under the new one.
func TestClientSideKeyRotation(t *testing.T) {
	for _, c := range []struct {
		mk         func(keys ...[]byte) transport.Transformer
		oldK, newK []byte
	}{{transport.Sign, key1, key2}, {transport.Encrypt, aes1, aes2}} {
		mk, oldK, newK := c.mk, c.oldK, c.newK
		before := newClientApp(t, "CART", nil, func(k *engine.Kind[cart]) transport.Binding {
			return transport.Cookie(k, transport.CookieConfig{}, mk(oldK))
		})
		v, _ := sent(before.call("/add?item=x", "CART", "", false), "CART", false)
		during := newClientApp(t, "CART", nil, func(k *engine.Kind[cart]) transport.Binding {
			return transport.Cookie(k, transport.CookieConfig{}, mk(newK, oldK))
		})
		rec := during.call("/add?item=y", "CART", v, false)
		if rec.Body.String() != "2 items" {
			t.Fatalf("old value not read during rotation: %q", rec.Body.String())
		}
		rewritten, _ := sent(rec, "CART", false)
		after := newClientApp(t, "CART", nil, func(k *engine.Kind[cart]) transport.Binding {
			return transport.Cookie(k, transport.CookieConfig{}, mk(newK))
		})
		if got := after.call("/", "CART", rewritten, false).Body.String(); got != "2 items" {
			t.Fatalf("rewritten value not read under the new key alone: %q", got)
		}
		if got := after.call("/", "CART", v, false).Body.String(); got != "none" {
			t.Fatalf("old-key value read after rotation ended: %q", got)
		}
	}
}

func TestClientSideTooLarge(t *testing.T) {
	a := newClientApp(t, "CART", nil, func(k *engine.Kind[cart]) transport.Binding {
		return transport.Cookie(k, transport.CookieConfig{}, transport.Encrypt(aes1))
	})
	var value string
	for i := 0; ; i++ {
		rec := a.call("/add?item="+strings.Repeat("x", 200), "CART", value, false)
		if rec.Code == http.StatusRequestEntityTooLarge {
			if !strings.Contains(rec.Body.String(), "4096") {
				t.Fatalf("the error does not name the limit: %q", rec.Body.String())
			}
			if v, cleared := sent(rec, "CART", false); v != "" || cleared {
				t.Fatal("a failed write sent a cookie")
			}
			break
		}
		if i > 40 {
			t.Fatal("never refused")
		}
		value, _ = sent(rec, "CART", false)
		if len("CART=")+len(value) > transport.MaxValueLen {
			t.Fatalf("sent a %d-byte cookie value", len(value))
		}
	}
	// The value before the failed write is still what the client holds.
	if got := a.call("/", "CART", value, false).Body.String(); got == "none" {
		t.Fatal("the last good value no longer reads")
	}
}

func TestClientSideConfigErrors(t *testing.T) {
	eng, _ := engine.New(engine.Options{})
	defer eng.Close(context.Background())
	k, _ := engine.Register[cart](eng, "CART", engine.KindOptions{})
	for name, b := range map[string]transport.Binding{
		"no transformer":    transport.Cookie(k, transport.CookieConfig{}),
		"digest only":       transport.Cookie(k, transport.CookieConfig{}, transport.Digest(nil)),
		"short sign key":    transport.Cookie(k, transport.CookieConfig{}, transport.Sign([]byte("short"))),
		"24-byte aes key":   transport.Header(k, transport.HeaderConfig{}, transport.Encrypt(make([]byte, 24))),
		"nil transformer":   transport.Cookie(k, transport.CookieConfig{}, nil),
		"custom, no crypto": transport.Custom(k, nopTransport{}),
	} {
		if _, err := transport.Middleware(b); !errors.Is(err, engine.ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}

type nopTransport struct{}

func (nopTransport) Receive(*http.Request) string     { return "" }
func (nopTransport) Send(http.ResponseWriter, string) {}
func (nopTransport) Clear(http.ResponseWriter)        {}

// TestSignedServerSideIDs: the same transformers sign server-side IDs; an
// unsigned or forged ID is no session.
func TestSignedServerSideIDs(t *testing.T) {
	for _, header := range []bool{false, true} {
		eng, _ := engine.New(engine.Options{})
		t.Cleanup(func() { _ = eng.Close(context.Background()) })
		k, _ := engine.Register[counter](eng, "SID", engine.KindOptions{Storage: newMapStorage()})
		b := transport.Cookie(k, transport.CookieConfig{}, transport.Sign(key1))
		if header {
			b = transport.Header(k, transport.HeaderConfig{}, transport.Sign(key1))
		}
		mw, err := transport.Middleware(b)
		if err != nil {
			t.Fatal(err)
		}
		h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, _ := k.Update(r.Context(), func(c *counter) error { c.N++; return nil })
			fmt.Fprint(w, c.N)
		}))
		call := func(v string) *httptest.ResponseRecorder {
			req := httptest.NewRequest("POST", "/", nil)
			if v != "" {
				if header {
					req.Header.Set("SID", v)
				} else {
					req.Header.Set("Cookie", "SID="+v)
				}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec
		}
		first := call("")
		v, _ := sent(first, "SID", header)
		raw, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(raw) != 36+32 {
			t.Fatalf("signed ID %q: %d bytes, %v", v, len(raw), err)
		}
		id := string(raw[:36])
		if got := call(v).Body.String(); got != "2" {
			t.Fatalf("signed ID not accepted: %q", got)
		}
		// The bare ID, or a forged MAC, is no session: a new one starts.
		for _, bad := range []string{id, base64.RawURLEncoding.EncodeToString(append([]byte(id), make([]byte, 32)...))} {
			rec := call(bad)
			if rec.Body.String() != "1" {
				t.Fatalf("forged ID %q accepted: %q", bad, rec.Body.String())
			}
		}
	}
}

// FuzzClientCookie feeds arbitrary cookie values to a client-side session
// through the middleware: never a panic, never a 500, and a value that
// reads must be one we sealed.
func FuzzClientCookie(f *testing.F) {
	a := newClientApp(f, "CART", nil, func(k *engine.Kind[cart]) transport.Binding {
		return transport.Cookie(k, transport.CookieConfig{}, transport.Sign(key1), transport.Encrypt(aes1))
	})
	chain := transport.Chain(transport.Sign(key1), transport.Encrypt(aes1))
	valid, _ := sent(a.call("/add?item=x", "CART", "", false), "CART", false)
	f.Add(valid)
	f.Add("")
	f.Add("AAAA")
	f.Add(valid[:len(valid)/2])
	f.Add(strings.Repeat("A", 5000))
	f.Fuzz(func(t *testing.T, v string) {
		if strings.ContainsAny(v, ";\r\n") {
			return
		}
		rec := a.call("/", "CART", v, false)
		if rec.Code != http.StatusOK {
			t.Fatalf("%d for %q", rec.Code, v)
		}
		if rec.Body.String() == "none" {
			return
		}
		// Accepted: it must be a value the key holder sealed, whatever
		// path the middleware took to read it.
		raw, err := base64.RawURLEncoding.Strict().DecodeString(v)
		if err != nil {
			t.Fatalf("accepted a value that is not canonical base64url: %q", v)
		}
		if _, err := chain.Untransform("CART", raw); err != nil {
			t.Fatalf("accepted a value that does not verify: %q: %v", v, err)
		}
	})
}

// BenchmarkClientSide is the per-request cost of a client-side session
// that is read and rewritten (open, decode, update, encode, seal).
func BenchmarkClientSide(b *testing.B) {
	for name, ts := range map[string][]transport.Transformer{
		"signed":    {transport.Sign(key1)},
		"encrypted": {transport.Encrypt(aes1)},
	} {
		b.Run(name, func(b *testing.B) {
			a := newClientApp(b, "CART", nil, func(k *engine.Kind[cart]) transport.Binding {
				return transport.Cookie(k, transport.CookieConfig{}, ts...)
			})
			value, _ := sent(a.call("/add?item=x", "CART", "", false), "CART", false)
			req := httptest.NewRequest("POST", "/add?item=x", nil)
			req.Header.Set("Cookie", "CART="+value)
			w := &discardWriter{h: make(http.Header)}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				a.h.ServeHTTP(w, req)
			}
		})
	}
}

// rot13 is a user-written Transformer that hides nothing.
type rot13 struct{ authenticator bool }

func (rot13) Transform(_ string, d []byte) ([]byte, error)   { return bytes.Clone(d), nil }
func (rot13) Untransform(_ string, d []byte) ([]byte, error) { return bytes.Clone(d), nil }
func (r rot13) Authenticates() bool                          { return r.authenticator }

// TestClientSideNeedsAuthentication: a user-written Transformer alone is
// not enough for a client-side kind unless it says it authenticates.
func TestClientSideNeedsAuthentication(t *testing.T) {
	eng, _ := engine.New(engine.Options{})
	defer eng.Close(context.Background())
	k, _ := engine.Register[cart](eng, "CART", engine.KindOptions{})
	if _, err := transport.Middleware(transport.Cookie(k, transport.CookieConfig{}, rot13{})); !errors.Is(err, engine.ErrConfig) {
		t.Fatalf("a plain custom transformer: %v", err)
	}
	if _, err := transport.Middleware(transport.Cookie(k, transport.CookieConfig{}, rot13{authenticator: true})); err != nil {
		t.Fatalf("an Authenticator: %v", err)
	}
}
