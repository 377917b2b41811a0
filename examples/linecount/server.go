package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/steward-sessions/steward/engine"
)

// MaxLineLen is the longest command line the server reads, not counting
// its "\n" or "\r\n". A longer line is answered with "ERR line too long" and
// ends the connection.
const MaxLineLen = 1024

const (
	defaultIdleTimeout  = 5 * time.Minute
	defaultWriteTimeout = 10 * time.Second
	// lingerTimeout bounds how long a closing connection drains what the
	// client still sends, so that the last reply is not lost to a reset.
	lingerTimeout = time.Second
	// lingerMax bounds how much a closing connection drains.
	lingerMax = 64 << 10
	// maxAcceptDelay caps the back-off after a failed Accept.
	maxAcceptDelay = time.Second
)

// errLineTooLong is returned by readLine for a line over MaxLineLen bytes.
var errLineTooLong = errors.New("linecount: line too long")

// Server serves the line protocol (see the package documentation) on
// top of one session kind. Fill in Kind and call Serve; the zero value of
// every other field means the default given on it. A Server may serve
// several listeners at once.
type Server struct {
	// Kind holds the counters. Required.
	Kind *engine.RawKind

	// Logger receives connection and error logs. Nil: nothing is logged.
	Logger *slog.Logger

	// IdleTimeout closes a connection that sends no complete line for this
	// long. Zero: five minutes. Negative: never.
	IdleTimeout time.Duration

	// WriteTimeout closes a connection that does not take a reply within
	// this long (a client that sends but never reads). Zero: ten seconds.
	// Negative: never.
	WriteTimeout time.Duration
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// deadline returns the deadline d from now: the default def for zero, none
// (the zero time) for a negative d.
func deadline(d, def time.Duration) time.Time {
	switch {
	case d == 0:
		d = def
	case d < 0:
		return time.Time{}
	}
	return time.Now().Add(d)
}

// Serve accepts connections on ln and serves each in its own goroutine
// until ctx is cancelled or Accept fails for good. Then it closes ln and
// every open connection, waits for their goroutines to finish, and returns:
// nil after ctx was cancelled, otherwise the error of Accept. Operations
// that the engine has already started on behalf of a closed connection
// still complete (see engine.RawKind).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.Kind == nil {
		panic("linecount: Server.Kind is nil")
	}
	log := s.logger()

	// Cancelling ctx unblocks Accept by closing the listener.
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
		case <-stop:
		}
		ln.Close()
	}()

	var (
		conns connSet
		wg    sync.WaitGroup
	)
	defer func() {
		close(stop)
		<-stopped
		conns.closeAll()
		wg.Wait()
	}()

	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !temporary(err) {
				return err
			}
			delay = min(max(2*delay, 5*time.Millisecond), maxAcceptDelay)
			log.Warn("accept failed; retrying", "error", err, "delay", delay)
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}
		delay = 0
		conns.add(c)
		wg.Go(func() {
			defer conns.remove(c)
			s.serveConn(ctx, c)
		})
	}
}

// temporary reports whether an Accept error is worth retrying: the process
// or the system ran out of descriptors or buffers.
func temporary(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// connSet is the set of open connections of one Serve call.
type connSet struct {
	mu sync.Mutex // protects m
	m  map[net.Conn]struct{}
}

func (cs *connSet) add(c net.Conn) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.m == nil {
		cs.m = make(map[net.Conn]struct{})
	}
	cs.m[c] = struct{}{}
}

func (cs *connSet) remove(c net.Conn) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.m, c)
}

// closeAll closes every connection in the set, which makes their pending
// reads and writes fail. The connections stay in the set until their
// goroutines remove them.
func (cs *connSet) closeAll() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for c := range cs.m {
		c.Close()
	}
}

// serveConn runs the protocol on c until the client quits, breaks a rule,
// goes idle or disconnects, or ctx is cancelled (Serve then closes c).
func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	log := s.logger().With("remote", c.RemoteAddr().String())
	log.Debug("connection opened")
	linger := false
	defer func() {
		if linger {
			lingerClose(c)
		} else {
			c.Close()
		}
		log.Debug("connection closed")
	}()

	// One byte more than MaxLineLen+"\r\n" would not fit: a line that
	// fills the buffer without its '\n' is too long.
	r := bufio.NewReaderSize(c, MaxLineLen+2)
	w := bufio.NewWriterSize(c, 512)
	for {
		c.SetReadDeadline(deadline(s.IdleTimeout, defaultIdleTimeout))
		line, rerr := readLine(r)
		var (
			reply string
			quit  bool
		)
		switch {
		case rerr == nil || (errors.Is(rerr, io.EOF) && len(line) > 0):
			// A last line without its '\n' is still a command.
			reply, quit = s.exec(ctx, string(line))
			if rerr != nil {
				quit = true
			}
		case errors.Is(rerr, errLineTooLong):
			reply, quit = replyTooLong, true
		default:
			var ne net.Error
			switch {
			case errors.Is(rerr, io.EOF), ctx.Err() != nil:
			case errors.As(rerr, &ne) && ne.Timeout():
				log.Debug("idle connection closed")
			default:
				log.Debug("read failed", "error", rerr)
			}
			return
		}
		c.SetWriteDeadline(deadline(s.WriteTimeout, defaultWriteTimeout))
		w.WriteString(reply)
		w.WriteString("\r\n")
		// Replies to pipelined commands go out together: flush unless
		// the next command is already read in whole.
		if quit || !lineBuffered(r) {
			if err := w.Flush(); err != nil {
				log.Debug("write failed", "error", err)
				return
			}
		}
		if quit {
			// The client may have sent more; draining it keeps the
			// kernel from answering with a reset that could destroy
			// the reply before the client reads it.
			linger = true
			return
		}
	}
}

// readLine reads one line and returns it without its "\n" or "\r\n". The
// slice is valid until the next read from r. It returns errLineTooLong for
// a line over MaxLineLen bytes, and io.EOF with a last line that has no
// '\n'.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, errLineTooLong
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) > MaxLineLen {
		return nil, errLineTooLong
	}
	return line, err
}

// lineBuffered reports whether r holds a whole line that it can return
// without reading from its source.
func lineBuffered(r *bufio.Reader) bool {
	buf, _ := r.Peek(r.Buffered())
	return bytes.IndexByte(buf, '\n') >= 0
}

// lingerClose closes c after shutting its write side and draining what
// the client still sends, for lingerTimeout at most. Closing a TCP socket
// with unread input sends a reset, and a reset may reach the client before
// it read the last reply.
func lingerClose(c net.Conn) {
	defer c.Close()
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.CopyN(io.Discard, c, lingerMax)
}
