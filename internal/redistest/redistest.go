// Package redistest starts redis-server processes for tests: each on a
// free loopback port, with persistence off, stopped when the test ends. When
// the binary is missing the test is skipped with a message saying how to
// install it, or failed when the CI environment variable is set.
package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"
)

// Server is a redis-server of the test's own, on a free loopback port,
// with persistence off: stopping it loses every key.
type Server struct {
	tb   testing.TB
	bin  string
	args []string
	port int
	dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd      // protected by mu; nil while stopped
	done chan struct{}  // closed when cmd has exited
	log  *bytes.Buffer  // the server's output, for failures
	raw  rueidis.Client // protected by mu; made by client
}

// Binary returns the path of redis-server, or skips tb (fails it under
// CI) when there is none.
func Binary(tb testing.TB) string {
	tb.Helper()
	bin := "/usr/bin/redis-server"
	if _, err := os.Stat(bin); err != nil {
		if bin, err = exec.LookPath("redis-server"); err != nil {
			if os.Getenv("CI") != "" {
				tb.Fatal("redis-server not found, and CI must run the Redis tests: apt-get install -y redis-server")
			}
			tb.Skip("redis-server not found: the Redis tests are skipped; to run them, apt-get install -y redis-server")
		}
	}
	return bin
}

// Start starts a redis-server for tb and stops it when tb ends. args
// are extra configuration, such as "--requirepass", "pw".
func Start(tb testing.TB, args ...string) *Server {
	tb.Helper()
	s := &Server{tb: tb, bin: Binary(tb), args: args, dir: tb.TempDir()}
	tb.Cleanup(func() {
		s.mu.Lock()
		if s.raw != nil {
			s.raw.Close()
			s.raw = nil
		}
		s.mu.Unlock()
		s.Stop()
	})
	// A free port can be taken between finding it and binding it: try a
	// few.
	var err error
	for range 5 {
		s.port = FreePort(tb)
		if err = s.launch(); err == nil {
			return s
		}
	}
	tb.Fatalf("starting redis-server: %v", err)
	return nil
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr() }

// launch runs redis-server on s.port and waits until it answers PING.
func (s *Server) launch() error {
	args := append([]string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--loglevel", "warning",
	}, s.args...)
	cmd := exec.Command(s.bin, args...)
	log := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done, s.log = cmd, done, log
	s.mu.Unlock()

	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-done:
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
			return fmt.Errorf("redis-server exited: %s", log)
		default:
		}
		if ping(s.Addr()) {
			return nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("redis-server does not answer PING: %s", log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ping reports whether a Redis server at addr answers PING.
func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 7)
	n, _ := c.Read(buf)
	// A server with a password answers "-NOAUTH ...", but it answers.
	return string(buf[:n]) == "+PONG\r\n" || string(buf[:n]) == "-NOAUTH"
}

// Stop kills the server (as a crash would) and waits until it has exited.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// Restart starts the stopped server again on the same port, empty.
func (s *Server) Restart() {
	s.tb.Helper()
	if err := s.launch(); err != nil {
		s.tb.Fatalf("restarting redis-server on port %d: %v", s.port, err)
	}
}

// Signal sends sig to the running server: SIGSTOP freezes it with its
// connections open, SIGCONT thaws it.
func (s *Server) Signal(sig syscall.Signal) {
	s.tb.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		s.tb.Fatal("signal: redis-server is not running")
	}
	if err := cmd.Process.Signal(sig); err != nil {
		s.tb.Fatal(err)
	}
}

// Client returns a plain client of the server, for looking at keys.
func (s *Server) Client() rueidis.Client {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.raw == nil {
		c, err := rueidis.NewClient(rueidis.ClientOption{
			InitAddress:  []string{s.Addr()},
			DisableCache: true,
		})
		if err != nil {
			s.tb.Fatal(err)
		}
		s.raw = c
	}
	return s.raw
}

// Do runs one command on the server and returns its answer.
func (s *Server) Do(ctx context.Context, args ...string) rueidis.RedisResult {
	c := s.Client()
	return c.Do(ctx, c.B().Arbitrary(args...).Build())
}

// PTTL returns the milliseconds key has left to live: -1 without an
// expiry, -2 when there is no such key.
func (s *Server) PTTL(key string) int64 {
	s.tb.Helper()
	n, err := s.Do(context.Background(), "PTTL", key).AsInt64()
	if err != nil {
		s.tb.Fatalf("PTTL %s: %v", key, err)
	}
	return n
}

// Exists reports whether key exists.
func (s *Server) Exists(key string) bool {
	s.tb.Helper()
	n, err := s.Do(context.Background(), "EXISTS", key).AsInt64()
	if err != nil {
		s.tb.Fatalf("EXISTS %s: %v", key, err)
	}
	return n == 1
}
