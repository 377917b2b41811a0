package main

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/steward-sessions/steward/engine"
)

// Replies that carry no value.
const (
	replyOK          = "OK"
	replyBye         = "OK bye"
	replyNoSession   = "ERR no session"
	replyUnknown     = "ERR unknown command"
	replyTooLong     = "ERR line too long"
	replyOverflow    = "ERR overflow"
	replyUnavailable = "ERR unavailable"
	replyRenewed     = "ERR renewed"
)

var (
	// errOverflow is returned by incr for a counter at math.MaxInt64.
	errOverflow = errors.New("linecount: counter overflow")
	// errBadValue is returned for a stored value that is not a counter.
	errBadValue = errors.New("linecount: stored value is not a decimal counter")
)

// exec runs one command line (without its line ending) and returns the
// reply line (without its line ending) and whether the connection should
// close after it. It never panics, whatever line holds.
func (s *Server) exec(ctx context.Context, line string) (reply string, quit bool) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return replyUnknown, false
	}
	verb, args := strings.ToUpper(f[0]), f[1:]
	want := 1 // arguments
	switch verb {
	case "NEW", "QUIT":
		want = 0
	case "GET", "INCR", "RENEW", "DEL":
	default:
		return replyUnknown, false
	}
	if len(args) != want {
		return replyUnknown, false
	}

	var (
		val []byte
		err error
	)
	k := s.Kind
	switch verb {
	case "QUIT":
		return replyBye, true
	case "NEW":
		var id string
		if id, err = k.Create(ctx, []byte("0")); err == nil {
			return "OK " + id, false
		}
	case "GET":
		if val, err = k.Load(ctx, args[0]); err == nil {
			var n int64
			if n, err = parseCounter(val); err == nil {
				return "OK " + strconv.FormatInt(n, 10), false
			}
		}
	case "INCR":
		if val, err = k.Update(ctx, args[0], incr); err == nil {
			return "OK " + string(val), false
		}
	case "RENEW":
		var id string
		if id, err = k.Renew(ctx, args[0]); err == nil {
			return "OK " + id, false
		}
	case "DEL":
		if err = k.Invalidate(ctx, args[0]); err == nil {
			return replyOK, false
		}
	}
	return s.errReply(verb, err), false
}

// errReply maps an error of the engine to its reply, logging the ones the
// client cannot fix.
func (s *Server) errReply(verb string, err error) string {
	switch {
	case errors.Is(err, engine.ErrNoSession):
		return replyNoSession
	case errors.Is(err, engine.ErrRenewed):
		return replyRenewed
	case errors.Is(err, errOverflow):
		return replyOverflow
	case errors.Is(err, engine.ErrClosed), errors.Is(err, context.Canceled):
		// Shutting down: not worth a warning.
		s.logger().Debug("command refused while shutting down", "cmd", verb, "error", err)
	default:
		// engine.ErrStorage, engine.ErrPanic, errBadValue, a deadline.
		s.logger().Warn("command failed", "cmd", verb, "error", err)
	}
	return replyUnavailable
}

// parseCounter decodes a stored counter.
func parseCounter(b []byte) (int64, error) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, errBadValue
	}
	return n, nil
}

// incr is the update function of INCR; it runs inside the session's actor.
// It must not keep or modify old.
func incr(old []byte) ([]byte, error) {
	n, err := parseCounter(old)
	if err != nil {
		return nil, err
	}
	if n == math.MaxInt64 {
		return nil, errOverflow
	}
	return strconv.AppendInt(nil, n+1, 10), nil
}
