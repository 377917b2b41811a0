package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode) // no debug lines on stdout
	goleak.VerifyTestMain(m)
}

var routers = []string{"servemux", "chi", "echo", "gin"}

// startApp starts the app with the named router on a real HTTP server on
// a loopback port, and returns the server and a client with its own cookie
// jar, as a browser.
func startApp(t *testing.T, router string) (*httptest.Server, *http.Client) {
	t.Helper()
	a, err := newApp(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	h, err := a.handler(router)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar, Transport: &http.Transport{}, Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	return srv, client
}

// result is what the tests look at in a response.
type result struct {
	status    int
	count     int      // from a JSON body; -1 without one
	setCookie []string // the Set-Cookie lines, as the server sent them
	vary      string
}

func call(t *testing.T, c *http.Client, method, url string) result {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	res := result{status: resp.StatusCode, count: -1, setCookie: resp.Header.Values("Set-Cookie"), vary: resp.Header.Get("Vary")}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && resp.StatusCode == http.StatusOK {
		var v reply
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("%s %s: %v in %q", method, url, err, body)
		}
		res.count = v.Count
	}
	return res
}

// Every router: the count goes up over requests that carry the cookie the
// first one set, Set-Cookie is in the headers a real server sends, and
// logging out expires the cookie.
func TestCounter(t *testing.T) {
	for _, router := range routers {
		t.Run(router, func(t *testing.T) {
			srv, client := startApp(t, router)
			if r := call(t, client, "GET", srv.URL+"/count"); r.status != 200 || r.count != 0 || len(r.setCookie) != 0 {
				t.Fatalf("GET /count without a session: %+v, want 200, 0 and no Set-Cookie", r)
			}
			for i := 1; i <= 4; i++ {
				r := call(t, client, "POST", srv.URL+"/add/1")
				if r.status != 200 || r.count != i {
					t.Fatalf("POST /add/1 #%d: %+v, want 200 and count %d", i, r, i)
				}
				if i == 1 && (len(r.setCookie) != 1 || !strings.HasPrefix(r.setCookie[0], "SESSION_ID=")) {
					t.Fatalf("POST /add/1 #1: Set-Cookie %q, want one SESSION_ID", r.setCookie)
				}
				if i > 1 && len(r.setCookie) != 0 {
					t.Errorf("POST /add/1 #%d: Set-Cookie %q, want none (the ID did not change)", i, r.setCookie)
				}
				if r.vary != "Cookie" {
					t.Errorf("POST /add/1 #%d: Vary %q, want Cookie", i, r.vary)
				}
			}
			if r := call(t, client, "POST", srv.URL+"/add/6"); r.count != 10 {
				t.Errorf("POST /add/6: %+v, want count 10", r)
			}
			for _, bad := range []string{"0", "1001", "x"} {
				if r := call(t, client, "POST", srv.URL+"/add/"+bad); r.status != http.StatusBadRequest {
					t.Errorf("POST /add/%s: status %d, want 400", bad, r.status)
				}
			}
			if r := call(t, client, "GET", srv.URL+"/count"); r.count != 10 || len(r.setCookie) != 0 || r.vary != "Cookie" {
				t.Errorf("GET /count: %+v, want 10, no Set-Cookie, Vary: Cookie", r)
			}

			r := call(t, client, "POST", srv.URL+"/logout")
			if r.status != http.StatusNoContent || len(r.setCookie) != 1 ||
				!strings.HasPrefix(r.setCookie[0], "SESSION_ID=;") || !strings.Contains(r.setCookie[0], "Max-Age=0") {
				t.Errorf("POST /logout: %+v, want 204 and SESSION_ID expired", r)
			}
			if r := call(t, client, "GET", srv.URL+"/count"); r.count != 0 {
				t.Errorf("GET /count after logout: %+v, want 0", r)
			}
		})
	}
}

// Every router: concurrent requests of one session lose no update.
func TestConcurrentAdds(t *testing.T) {
	const workers, each = 8, 25
	for _, router := range routers {
		t.Run(router, func(t *testing.T) {
			srv, client := startApp(t, router)
			call(t, client, "POST", srv.URL+"/add/1") // the session; its cookie is in the jar
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range each {
						resp, err := client.Post(srv.URL+"/add/1", "", nil)
						if err != nil {
							errs <- err
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							errs <- fmt.Errorf("POST /add/1: %s", resp.Status)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if r := call(t, client, "GET", srv.URL+"/count"); r.count != 1+workers*each {
				t.Errorf("GET /count: %d, want %d", r.count, 1+workers*each)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer that run may write to while the test reads.
type syncBuffer struct {
	mu  sync.Mutex // protects buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The program: it prints its address, serves the chosen router there and
// stops when its context ends.
func TestRun(t *testing.T) {
	for _, router := range routers {
		t.Run(router, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pr, pw := io.Pipe()
			var stderr syncBuffer
			done := make(chan error, 1)
			go func() {
				err := run(ctx, []string{"-addr", "127.0.0.1:0", "-router", router}, pw, &stderr)
				pw.Close()
				done <- err
			}()
			line, err := bufio.NewReader(pr).ReadString('\n')
			if err != nil {
				t.Fatalf("reading the address: %v (stderr: %s)", err, stderr.String())
			}
			go io.Copy(io.Discard, pr)
			addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
			addr, ok2 := strings.CutSuffix(addr, " ("+router+")")
			if !ok || !ok2 {
				t.Fatalf("first line %q, want listening on http://ADDR (%s)", line, router)
			}
			jar, _ := cookiejar.New(nil)
			client := &http.Client{Jar: jar, Transport: &http.Transport{}, Timeout: 10 * time.Second}
			for i := 1; i <= 2; i++ {
				if r := call(t, client, "POST", addr+"/add/3"); r.count != 3*i {
					t.Errorf("POST /add/3 #%d: %+v, want count %d", i, r, 3*i)
				}
			}
			client.CloseIdleConnections()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{{"-router", "mux"}, {"-nope"}, {"extra"}} {
		var stderr syncBuffer
		err := run(context.Background(), append([]string{"-addr", "127.0.0.1:0"}, args...), io.Discard, &stderr)
		if !errors.Is(err, errUsage) {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
	}
}
