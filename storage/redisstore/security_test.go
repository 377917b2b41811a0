package redisstore_test

import (
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/internal/redistest"
	"github.com/steward-sessions/steward/storage/redisstore"
	"github.com/steward-sessions/steward/transport"
)

// TestFixationAcrossInstances: two engine instances over one Redis, each
// behind the cookie middleware. The attacker's planted ID, renewed by the
// victim's login on instance A, reaches nothing on instance B afterwards
// and is never answered with the new ID; the victim's session goes on on
// both. A SCAN of every key and value then finds no session ID in any
// encoding.
func TestFixationAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	kinds := instances(t, srv, 2, engine.KindOptions{}, redisstore.Options{})
	servers := make([]*httptest.Server, 2)
	for i, k := range kinds {
		mw, err := transport.Middleware(transport.Cookie(k, transport.CookieConfig{Name: "SESSION_ID"}))
		if err != nil {
			t.Fatal(err)
		}
		servers[i] = httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b := engine.BindingOf(r.Context(), k)
			switch r.URL.Path {
			case "/new":
				id, err := k.Create(r.Context(), []byte("attacker"))
				if err != nil {
					http.Error(w, err.Error(), 500)
					return
				}
				io.WriteString(w, id)
			case "/login":
				id, err := k.Renew(r.Context(), b.ID())
				if err != nil {
					http.Error(w, err.Error(), 500)
					return
				}
				http.SetCookie(w, &http.Cookie{Name: "SESSION_ID", Value: id})
			case "/get":
				v, err := k.Load(r.Context(), b.ID())
				switch {
				case errors.Is(err, engine.ErrRenewed):
					http.Error(w, "renewed", http.StatusConflict)
				case err != nil:
					http.Error(w, "none", http.StatusNotFound)
				default:
					w.Write(v)
				}
			}
		})))
		t.Cleanup(servers[i].Close)
	}
	get := func(s *httptest.Server, path, id string) (int, string, http.Header) {
		req, _ := http.NewRequest("GET", s.URL+path, nil)
		if id != "" {
			req.Header.Set("Cookie", "SESSION_ID="+id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header
	}
	_, planted, _ := get(servers[0], "/new", "")
	code, body, h := get(servers[0], "/login", planted)
	c, err := http.ParseSetCookie(h.Get("Set-Cookie"))
	if err != nil || c.Value == planted {
		t.Fatalf("login: %d %q: %v %v", code, body, c, err)
	}
	victim := c.Value
	for i, s := range servers {
		code, body, h := get(s, "/get", planted)
		if code != http.StatusConflict || strings.Contains(body, victim) || strings.Contains(h.Get("Set-Cookie"), victim) {
			t.Errorf("instance %d, planted ID after the login: %d %q %v", i, code, body, h)
		}
		if code, body, _ := get(s, "/get", victim); code != 200 || body != "attacker" {
			t.Errorf("instance %d, the victim's ID: %d %q", i, code, body)
		}
	}

	// Every key and value in Redis.
	var all strings.Builder
	keys, err := srv.Do(t.Context(), "KEYS", "*").AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range keys {
		all.WriteString(key + "\n")
		v, _ := srv.Do(t.Context(), "GET", key).ToString()
		all.WriteString(v + "\n")
	}
	low := strings.ToLower(all.String())
	for _, id := range []string{planted, victim} {
		for enc, s := range map[string]string{
			"raw":       id,
			"base32":    base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte(id)),
			"base64url": base64.RawURLEncoding.EncodeToString([]byte(id)),
			"base64":    base64.RawStdEncoding.EncodeToString([]byte(id)),
			"hex":       hex.EncodeToString([]byte(id)),
			"nodash":    strings.ReplaceAll(id, "-", ""),
		} {
			if strings.Contains(low, strings.ToLower(s)) {
				t.Errorf("session ID %s found in Redis (%s)", id, enc)
			}
		}
	}
	if len(keys) == 0 {
		t.Fatal("no keys in Redis: nothing was checked")
	}
}
