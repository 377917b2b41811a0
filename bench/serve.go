package main

import (
	"bufio"
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
)

// serve is the hidden -serve mode: it runs one system's server on addr (a
// loopback address), prints "listening on http://ADDR" on stdout once it
// accepts connections, and stops when stdin closes (the parent went away or
// is done), on SIGINT or SIGTERM, or after timeout, whichever comes first.
func serve(name, addr, dir, cpuprofile string, timeout time.Duration, stdin io.Reader, stdout io.Writer) error {
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
	if dir == "" {
		dir, err = os.MkdirTemp("", "steward-bench-"+name+"-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	h, closeSys, err := sys.build(dir)
	if err != nil {
		return err
	}
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
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
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
	if cerr := closeSys(); cerr != nil && err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// serverProc is a server started by the parent in a process of its own.
type serverProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	base  string // http://127.0.0.1:PORT
	dir   string // the server's temporary directory, removed by stop
}

// startServer re-executes the running binary in -serve mode for system
// name and waits for the address it listens on.
func startServer(name, cpuprofile string, timeout time.Duration, stderr io.Writer) (*serverProc, error) {
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
	args := []string{"-serve", name, "-addr", "127.0.0.1:0", "-dir", dir, "-serve-timeout", timeout.String()}
	if cpuprofile != "" {
		args = append(args, "-cpuprofile", cpuprofile)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = stderr
	cmd.Env = childEnv()
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
	p := &serverProc{cmd: cmd, stdin: stdin, dir: dir}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
		_, _ = io.Copy(io.Discard, stdout) // never block the child on a full pipe
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
// has not within five seconds. It returns the process's state.
func (p *serverProc) stop() error {
	defer removeTree(p.dir)
	_ = p.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
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
