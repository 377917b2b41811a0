package transport_test

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/transport"
)

// carrier is how a test client presents a session ID: as a cookie or in
// the X-Session header.
type carrier struct {
	name  string
	bind  func(k transport.Kind) transport.Binding
	send  func(id string) string // the request header line
	given func(r response) string
}

var carriers = []carrier{
	{
		name: "cookie",
		bind: func(k transport.Kind) transport.Binding { return transport.Cookie(k, transport.CookieConfig{}) },
		send: func(id string) string { return "Cookie: SESSION_ID=" + id },
		given: func(r response) string {
			for _, line := range r.header.Values("Set-Cookie") {
				if c, err := http.ParseSetCookie(line); err == nil {
					return c.Value
				}
			}
			return ""
		},
	},
	{
		name: "header",
		bind: func(k transport.Kind) transport.Binding {
			return transport.Header(k, transport.HeaderConfig{Name: "X-Session"})
		},
		send:  func(id string) string { return "X-Session: " + id },
		given: func(r response) string { return r.header.Get("X-Session") },
	},
}

// TestFixation: an attacker plants the ID of a fresh session of its own;
// the victim logs in with it (Renew). Afterwards a request with the planted
// ID sees no session, is refused (409 in the test app), applies nothing,
// and is never answered with the victim's new ID, whatever it asks; the
// victim's session goes on. For cookie and header transports, on Memory
// and Directory storage.
func TestFixation(t *testing.T) {
	for _, c := range carriers {
		for _, st := range []string{"memory", "directory"} {
			t.Run(c.name+"/"+st, func(t *testing.T) {
				var s storage.Storage = storage.NewMemory(storage.MemoryOptions{})
				if st == "directory" {
					d, err := storage.NewDirectory(t.TempDir(), storage.DirectoryOptions{})
					if err != nil {
						t.Fatal(err)
					}
					s = d
				}
				a := newApp(t, appConfig{bind: c.bind, kind: engine.KindOptions{Storage: s}})
				planted := c.given(a.ok(t, a.plain, "POST", "/inc"))
				if planted == "" {
					t.Fatal("no ID for the attacker's session")
				}
				// The victim arrives with the planted ID and logs in.
				a.ok(t, a.plain, "POST", "/inc", c.send(planted))
				login := a.ok(t, a.plain, "POST", "/renew", c.send(planted))
				victim := c.given(login)
				if victim == "" || victim == planted {
					t.Fatalf("Renew gave %q (planted %q)", victim, planted)
				}
				for _, m := range []string{"GET /get", "POST /inc", "GET /id", "POST /renew", "POST /clear", "GET /get"} {
					method, path, _ := strings.Cut(m, " ")
					r := a.do(t, a.plain, method, path, c.send(planted))
					if strings.Contains(r.body, victim) || strings.Contains(fmt.Sprint(r.header), victim) {
						t.Fatalf("%s with the planted ID revealed the victim's new ID: %d %q %v", m, r.status, r.body, r.header)
					}
					if got := c.given(r); got != "" {
						t.Errorf("%s with the planted ID was given the ID %q", m, got)
					}
					if path == "/get" && r.body != "none" && r.status != http.StatusConflict {
						t.Errorf("%s with the planted ID: %d %q, want no session", m, r.status, r.body)
					}
				}
				if r := a.ok(t, a.plain, "GET", "/get", c.send(victim)); r.body != "2" {
					t.Fatalf("the victim's session holds %q, want 2", r.body)
				}
			})
		}
	}
}

// TestRenewWithSharedJar: 16 clients of one browser (one cookie jar)
// increment while the session is renewed 5 times. A request refused with
// 409 (it carried an ID renewed before it began) is retried; every
// increment counts exactly once.
func TestRenewWithSharedJar(t *testing.T) {
	a := newApp(t, appConfig{kind: engine.KindOptions{Storage: storage.NewMemory(storage.MemoryOptions{})}})
	a.ok(t, a.client, "POST", "/inc")
	const clients, each = 16, 60
	var wg sync.WaitGroup
	var retried atomic.Int64
	stop := make(chan struct{})
	for range clients {
		wg.Go(func() {
			for range each {
				for {
					r := a.do(t, a.client, "POST", "/inc")
					if r.status == http.StatusConflict {
						retried.Add(1)
						continue
					}
					if r.status != http.StatusOK {
						t.Errorf("POST /inc: %d %q", r.status, r.body)
						return
					}
					break
				}
			}
		})
	}
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		for range 5 {
			select {
			case <-stop:
				return
			default:
			}
			a.ok(t, a.client, "POST", "/renew")
		}
	}()
	wg.Wait()
	close(stop)
	<-renewed
	t.Logf("%d requests refused and retried", retried.Load())
	if r := a.ok(t, a.client, "GET", "/get"); r.body != fmt.Sprint(1+clients*each) {
		t.Fatalf("count %q, want %d", r.body, 1+clients*each)
	}
}

// TestShadowing: with several cookies of one name before the valid one
// (as a sibling subdomain can plant), values that fail verification or
// have no session never hide it: 1 and 99 bad ones, of each kind, for a
// plain ID, a signed ID and a signed client-side value.
func TestShadowing(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	for _, mode := range []string{"plain", "signed", "client"} {
		t.Run(mode, func(t *testing.T) {
			cfg := appConfig{}
			switch mode {
			case "signed":
				cfg.bind = func(k transport.Kind) transport.Binding {
					return transport.Cookie(k, transport.CookieConfig{}, transport.Sign(key))
				}
			case "client":
				cfg = clientAppConfig(key)
			}
			a := newApp(t, cfg)
			first := a.ok(t, a.plain, "POST", "/inc")
			var good string
			for _, line := range first.header.Values("Set-Cookie") {
				c, _ := http.ParseSetCookie(line)
				good = c.Value
			}
			other := a.ok(t, a.plain, "POST", "/inc") // a real session of someone else would be "valid": not used
			_ = other
			bad := map[string]func(i int) string{
				"malformed":     func(i int) string { return fmt.Sprintf("bad..%d", i) },
				"forged":        func(i int) string { return "A" + good[1:len(good)-1] + fmt.Sprint(i%10) },
				"unknown":       func(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) },
				"wrong-encoded": func(i int) string { return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprint("junk", i))) },
			}
			for name, gen := range bad {
				for _, n := range []int{1, 99} {
					var parts []string
					for i := range n {
						parts = append(parts, "SESSION_ID="+gen(i))
					}
					parts = append(parts, "SESSION_ID="+good)
					r := a.ok(t, a.plain, "GET", "/get", "Cookie: "+strings.Join(parts, "; "))
					if r.body != "1" {
						t.Errorf("%d %s cookies before the valid one: got %q, want 1", n, name, r.body)
					}
				}
			}
		})
	}
}

// clientAppConfig binds the test app's kind as a client-side session
// signed with key.
func clientAppConfig(key []byte) appConfig {
	return appConfig{
		kind: engine.KindOptions{Storage: nil},
		bind: func(k transport.Kind) transport.Binding {
			return transport.Cookie(k, transport.CookieConfig{}, transport.Sign(key))
		},
		clientSide: true,
	}
}

// TestNoIDAtRest: after sessions are created and renewed on a Directory,
// no file name or file content under its root holds a session ID in any
// encoding.
func TestNoIDAtRest(t *testing.T) {
	root := t.TempDir()
	d, err := storage.NewDirectory(root, storage.DirectoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a := newApp(t, appConfig{kind: engine.KindOptions{Storage: d}})
	var ids []string
	for range 20 {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Transport: a.client.Transport}
		a.ok(t, c, "POST", "/inc")
		a.ok(t, c, "POST", "/renew")
		a.ok(t, c, "POST", "/inc")
		for _, ck := range jar.Cookies(mustURL(t, a.srv.URL)) {
			ids = append(ids, ck.Value)
		}
	}
	var everything strings.Builder
	err = filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		everything.WriteString(path + "\n")
		if de.Type().IsRegular() {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			everything.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	assertNoID(t, everything.String(), ids)
}

// assertNoID fails if haystack holds any of ids in any usual encoding.
func assertNoID(t *testing.T, haystack string, ids []string) {
	t.Helper()
	low := strings.ToLower(haystack)
	for _, id := range ids {
		raw := []byte(id)
		for enc, s := range map[string]string{
			"raw":         id,
			"base32":      base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw),
			"base32hex":   base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(raw),
			"base64":      base64.RawStdEncoding.EncodeToString(raw),
			"base64url":   base64.RawURLEncoding.EncodeToString(raw),
			"hex":         hex.EncodeToString(raw),
			"uuid-nodash": strings.ReplaceAll(id, "-", ""),
		} {
			if strings.Contains(low, strings.ToLower(s)) {
				t.Errorf("session ID %s found at rest (%s)", id, enc)
			}
		}
	}
}
