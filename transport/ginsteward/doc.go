// Package ginsteward runs Steward's net/http session middleware in a gin
// router:
//
//	sessions, err := transport.Middleware(transport.Cookie(carts, transport.CookieConfig{}))
//	...
//	r := gin.New()
//	r.Use(ginsteward.Middleware(sessions))
//
// It is a module of its own,
// github.com/steward-sessions/steward/transport/ginsteward, so that gin
// enters only the go.mod of programs that use gin.
//
// # Why an adapter
//
// gin's writer holds the status back: c.Status, and the status given to
// c.JSON and the others, are only recorded, and the headers go out on the
// first Write, WriteString, Flush or Hijack, or on WriteHeaderNow (which
// c.AbortWithStatus and a response without a body call). The session
// middleware adds the session's headers (Set-Cookie, Vary, ...) just
// before the headers go out, so it must see each of those calls, and must
// not take c.Status for one. A wrapper that only overrides Write and
// WriteHeader loses the Set-Cookie of responses sent by WriteString,
// Flush (c.Stream) or Hijack (a WebSocket upgrade), and of sessions
// changed after c.Status. An httptest.ResponseRecorder hides the loss: the
// header map its Header method returns is the one the middleware writes
// to after the fact, while a real server has already sent the headers.
// This package's tests run a real server.
//
// # Handlers
//
// The session's binding is in the request's context, as with net/http:
// pass c.Request.Context() to the kind's methods. Passing c itself works
// only with gin's Engine.ContextWithFallback set, which makes c.Value look
// in the request's context; otherwise the methods return
// engine.ErrNoBinding.
package ginsteward
