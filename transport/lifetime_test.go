package transport_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/internal/fakeclock"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/transport"
)

type visit struct{ N int }

// TestRememberMe: a session given its own lifetime (remember-me) gets a
// cookie whose Max-Age matches its own expiry, while the kind's cookie is
// a browser-session cookie; it outlives the kind's idle timeout on the
// server; and a session without one keeps the kind's rules.
func TestRememberMe(t *testing.T) {
	clock := fakeclock.New(time.Now())
	eng, err := engine.New(engine.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(context.Background())
	k, err := engine.Register[visit](eng, "SID", engine.KindOptions{
		Storage:     storage.NewMemory(storage.MemoryOptions{Now: clock.Now}),
		IdleTimeout: 30 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	mw, err := transport.Middleware(transport.Cookie(k, transport.CookieConfig{Name: "SID"}))
	if err != nil {
		t.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := k.Update(r.Context(), func(v *visit) error { v.N++; return nil }); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if r.URL.Query().Get("remember") != "" {
			if err := k.SetLifetime(r.Context(), 7*24*time.Hour, 30*24*time.Hour); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
	}))
	call := func(cookie, query string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/?"+query, nil)
		if cookie != "" {
			req.Header.Set("Cookie", "SID="+cookie)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		return rec
	}
	value := regexp.MustCompile(`^SID=([^;]+)`)
	maxAge := regexp.MustCompile(`Max-Age=(\d+)`)

	plain := call("", "")
	line := plain.Header().Get("Set-Cookie")
	if maxAge.MatchString(line) {
		t.Fatalf("a session without its own lifetime got a Max-Age: %s", line)
	}
	plainID := value.FindStringSubmatch(line)[1]

	rec := call("", "remember=1")
	line = rec.Header().Get("Set-Cookie")
	m := maxAge.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("remember-me cookie without Max-Age: %s", line)
	}
	if secs, _ := strconv.Atoi(m[1]); secs < 7*24*3600-5 || secs > 7*24*3600 {
		t.Fatalf("Max-Age=%d, want about a week", secs)
	}
	id := value.FindStringSubmatch(line)[1]

	// Two hours later, past the kind's idle timeout: the remembered
	// session lives on, the plain one is gone.
	clock.Advance(2 * time.Hour)
	if _, err := k.Raw().Load(context.Background(), id); err != nil {
		t.Fatalf("the remembered session after 2 h: %v", err)
	}
	if _, err := k.Raw().Load(context.Background(), plainID); err == nil {
		t.Fatal("the plain session outlived its idle timeout")
	}
	// A later request that refreshes it sends the cookie again, with a
	// Max-Age from now.
	clock.Advance(24 * time.Hour)
	rec = call(id, "")
	if m = maxAge.FindStringSubmatch(rec.Header().Get("Set-Cookie")); m == nil {
		t.Fatalf("a refreshed remembered session was not sent again: %q", rec.Header().Get("Set-Cookie"))
	}
}
