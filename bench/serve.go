package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/steward-sessions/steward/engine"
)

// serve is the hidden -serve mode: it runs one system's server on addr (a
// loopback address), prints "listening on http://ADDR" on stdout once it
// accepts connections, and stops when stdin closes (the parent went away or
// is done), on SIGINT or SIGTERM, or after timeout, whichever comes first.
// A Steward server then prints "stats " and its engine's counters as JSON
// on stdout.
func serve(name, addr, cpuprofile string, so serverOptions, timeout time.Duration, stdin io.Reader, stdout io.Writer) error {
	sys, ok := findSystem(name)
	if !ok {
		return fmt.Errorf("unknown system")
	}
	if sys.missing != "" {
		return fmt.Errorf("missing: %s", sys.missing)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %s: the bench serves on loopback addresses only", addr)
	}
	if so.dir == "" {
		so.dir, err = os.MkdirTemp("", "steward-bench-"+name+"-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(so.dir)
	}
	b, err := sys.build(so)
	if err != nil {
		return err
	}
	closeSys := b.close
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = closeSys()
		return err
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			_ = closeSys()
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = closeSys()
			return err
		}
		defer pprof.StopCPUProfile()
	}
	srv := &http.Server{Handler: b.handler, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())

	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		close(stdinClosed)
	}()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	timer := time.NewTimer(timeout)
	defer timer.Stop()

	select {
	case err = <-served:
	case <-stdinClosed:
	case <-signals:
	case <-timer.C:
		err = fmt.Errorf("stopped after the hard timeout of %v", timeout)
	}
	_ = srv.Close() // the load is over: drop the connections at once
	if b.stats != nil {
		// Before closing the engine, whose last stops are no passivations.
		if line, jerr := json.Marshal(b.stats()); jerr == nil {
			fmt.Fprintf(stdout, "%s%s\n", statsPrefix, line)
		}
	}
	if cerr := closeSys(); cerr != nil && err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// statsPrefix starts the line on which a stopping Steward server reports
// its engine's counters.
const statsPrefix = "stats "

// serverProc is a server started by the parent in a process of its own.
type serverProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	base  string // http://127.0.0.1:PORT
	dir   string // the server's temporary directory, removed by stop
	// outDone is closed once the server's stdout is read to its end;
	// stats is then the engine's counters it printed, nil if none.
	outDone chan struct{}
	stats   *engine.Stats
}

// serverStart is how the parent starts one server.
type serverStart struct {
	system     string
	cpuprofile string        // where the server writes its CPU profile; "": none
	passivate  time.Duration // a Steward server's PassivateAfter; 0: the engine's default
	timeout    time.Duration // the server stops by itself after this long
	redisURL   string        // the Redis of the Redis systems; "": none
}

// startServer re-executes the running binary in -serve mode as ss says
// and waits for the address it listens on.
func startServer(ss serverStart, stderr io.Writer) (*serverProc, error) {
	name := ss.system
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	// The parent owns the server's directory, so that it is removed even
	// if the server has to be killed.
	dir, err := os.MkdirTemp("", "steward-bench-"+name+"-")
	if err != nil {
		return nil, err
	}
	args := []string{"-serve", name, "-addr", "127.0.0.1:0", "-dir", dir, "-serve-timeout", ss.timeout.String()}
	if ss.cpuprofile != "" {
		args = append(args, "-cpuprofile", ss.cpuprofile)
	}
	if ss.passivate != 0 {
		args = append(args, "-passivate", ss.passivate.String())
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = stderr
	cmd.Env = childEnv()
	if ss.redisURL != "" {
		cmd.Env = append(cmd.Env, redisEnv+"="+ss.redisURL)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &serverProc{cmd: cmd, stdin: stdin, dir: dir, outDone: make(chan struct{})}
	line := make(chan string, 1)
	go func() {
		defer close(p.outDone)
		r := bufio.NewReader(stdout)
		s, _ := r.ReadString('\n')
		line <- s
		// Read to the end (never block the child on a full pipe), keeping
		// the counters a Steward server prints as it stops.
		for {
			s, err := r.ReadString('\n')
			if rest, ok := strings.CutPrefix(s, statsPrefix); ok {
				var st engine.Stats
				if json.Unmarshal([]byte(rest), &st) == nil {
					p.stats = &st
				}
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case s := <-line:
		base, ok := strings.CutPrefix(strings.TrimSpace(s), "listening on ")
		if !ok {
			_ = p.stop()
			return nil, fmt.Errorf("server %s did not start (printed %q)", name, s)
		}
		p.base = base
		return p, nil
	case <-time.After(30 * time.Second):
		_ = p.stop()
		return nil, fmt.Errorf("server %s did not print its address within 30 s", name)
	}
}

// stop closes the server's stdin, which makes it exit, and kills it if it
// has not within five seconds. It returns the process's state; p.stats is
// set once it returns.
func (p *serverProc) stop() error {
	defer removeTree(p.dir)
	_ = p.stdin.Close()
	done := make(chan error, 1)
	go func() {
		<-p.outDone // Wait closes the pipe: read it to its end first
		done <- p.cmd.Wait()
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
		return fmt.Errorf("server did not exit within 5 s of its stdin closing; killed")
	}
}

// cpu returns the CPU time the server used; valid after stop.
func (p *serverProc) cpu() time.Duration {
	if p.cmd.ProcessState == nil {
		return 0
	}
	return p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
}

// childEnv is the environment of the processes the bench starts: its own,
// with the race detector's one-second sleep at exit turned off (it would
// add a second to every run of a race-enabled build, as under go test
// -race).
func childEnv() []string {
	return append(os.Environ(), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
}
