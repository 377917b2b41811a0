package ginsteward

import (
	"bufio"
	"io"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"
)

// Middleware returns gin middleware that runs the rest of gin's chain
// inside sessions, the middleware made by transport.Middleware (or any
// net/http middleware that must see the response's headers before they go
// out, provided its writer has the Unwrap method http.ResponseController
// looks for). Install it before the handlers that use sessions, with
// Engine.Use or RouterGroup.Use; the handlers after it get the request
// that sessions made (c.Request) and a c.Writer that goes through sessions
// whenever gin sends the headers, so the session's Set-Cookie is always
// in them.
//
// c.Writer keeps gin's behaviour: c.Status only records the status, so a
// handler may change its session after c.Status and before its first
// write. Middleware panics if sessions is nil.
func Middleware(sessions func(http.Handler) http.Handler) gin.HandlerFunc {
	if sessions == nil {
		panic("ginsteward: Middleware of a nil middleware")
	}
	h := sessions(http.HandlerFunc(serve))
	return func(c *gin.Context) {
		gw, req := c.Writer, c.Request
		h.ServeHTTP(&under{ResponseWriter: gw, c: c}, req)
		c.Writer, c.Request = gw, req
	}
}

// serve is the handler that the session middleware wraps: it hands gin's
// chain the request and a writer over w, the middleware's writer.
func serve(w http.ResponseWriter, r *http.Request) {
	u := find(w)
	if u == nil {
		panic("ginsteward: the middleware's ResponseWriter does not unwrap to gin's")
	}
	c := u.c
	c.Request = r
	c.Writer = &writer{ResponseWriter: u.ResponseWriter, session: w}
	c.Next()
}

// find returns the under at the end of w's Unwrap chain, or nil.
func find(w http.ResponseWriter) *under {
	for {
		if u, ok := w.(*under); ok {
			return u
		}
		uw, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = uw.Unwrap()
	}
}

// under is gin's writer as the session middleware sees it, carrying the
// gin.Context to serve.
type under struct {
	gin.ResponseWriter
	c *gin.Context
}

// Unwrap returns gin's writer, for http.ResponseController.
func (u *under) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// writer is c.Writer for the handlers after Middleware: gin's writer
// (which answers Header, Status, Size, Written and the rest), except that
// every method that sends the headers goes through the session middleware's
// writer first.
type writer struct {
	gin.ResponseWriter                     // gin's own writer, under session
	session            http.ResponseWriter // the session middleware's writer
}

// WriteHeaderNow sends the recorded status and the headers, the session's
// included, unless they were sent already.
func (w *writer) WriteHeaderNow() {
	if !w.Written() {
		// The session writer adds its headers and passes the status to
		// gin's writer, which records it (it is the same); gin then sends.
		w.session.WriteHeader(w.Status())
		w.ResponseWriter.WriteHeaderNow()
	}
}

// Write implements http.ResponseWriter.
func (w *writer) Write(p []byte) (int, error) { return w.session.Write(p) }

// WriteString implements io.StringWriter.
func (w *writer) WriteString(s string) (int, error) { return io.WriteString(w.session, s) }

// Flush implements http.Flusher.
func (w *writer) Flush() { _ = http.NewResponseController(w.session).Flush() }

// Hijack implements http.Hijacker: the session's headers are added first,
// for a WebSocket upgrade's 101 response.
func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.session).Hijack()
}

// Unwrap returns the session middleware's writer, for
// http.ResponseController.
func (w *writer) Unwrap() http.ResponseWriter { return w.session }
