// Package transport carries sessions over HTTP: net/http middleware that
// reads each request's session IDs (server-side sessions) or values
// (client-side sessions) from cookies or headers, hands them to the engine,
// and sends new, renewed or cleared ones back, the counterpart of Ktor's
// Sessions plugin, its SessionTransport and its transformers.
//
// # Bindings
//
// A [Binding] ties one session kind (an [engine.Kind] or [engine.RawKind])
// to one [Transport]:
//
//   - [Cookie]: the ID travels in a cookie, configured by [CookieConfig], whose
//     zero value is a host-only, HttpOnly, SameSite=Lax session cookie named
//     after the kind, on path "/". This is what browsers want.
//   - [Header]: the ID travels in a request header and comes back in the
//     response header of the same name, for API clients.
//   - [Custom]: any Transport you write.
//
// [Middleware] takes the bindings of an application and returns the
// middleware, or the configuration errors (a __Host- cookie without
// Secure, a kind bound twice, ...), each wrapping [engine.ErrConfig], at
// start-up rather than on the first request:
//
//	logins, err := engine.Register[Login](eng, "SESSION_ID", engine.KindOptions{Storage: st})
//	...
//	sessions, err := transport.Middleware(
//		transport.Cookie(logins, transport.CookieConfig{Secure: true}),
//	)
//	...
//	http.ListenAndServe(addr, sessions(mux))
//
// Handlers then use the kind's methods with the request's context:
// logins.Get(r.Context()), logins.Update(r.Context(), fn), and so on.
//
// # What is sent, and when
//
// Sessions are lazy: a request that never touches its session costs no
// actor, no storage read and no response header. The middleware decides
// what to send just before the response headers are written, from the
// engine's [engine.Outcome] of each binding: a new or renewed ID is sent, a
// cleared session is removed from the client (an expired cookie, an empty
// header), and an unchanged ID is not sent again, except by a Transport
// that carries an expiry (a cookie with a MaxAge, see [Refresher]), which
// resends it when the session's expiry moved. A handler that changes its
// session after writing the body is too late for the client; the engine
// logs it.
//
// # Caches
//
// A response whose handler looked at a session (any operation but Clear,
// found a session or not: [engine.Outcome.Read]) depends on what the
// request carried, so the middleware adds "Vary: Cookie" to it for a
// cookie binding, "Vary: <name>" for a header binding, whether or not an
// ID is sent: a cache keys it by that request header and never hands it to
// a client that sent another. A response that never touched its session
// gets no Vary from the middleware. A response that carries an ID (a
// Set-Cookie, or the session header) also gets `Cache-Control:
// no-cache="Set-Cookie"` (or the header's name), which tells caches not to
// reuse that header without revalidating. The middleware sets no other
// Cache-Control: a page that shows a user's own data should say
// "Cache-Control: private" (or no-store) itself. For a [Custom] transport
// the middleware knows no request header: its Send and Clear, or the
// handler, set what Vary needs.
//
// # Untrusted input
//
// Whatever a client sends is untrusted. The cookie and header transports
// take the first value that is a well-formed session ID (see
// [storage.ValidID]) and ignore the rest, whatever its size; the engine never
// adopts an ID it did not issue, so a request with an unknown ID has no
// session and gets a fresh, server-generated ID when it first stores one.
//
// # Transformers and client-side sessions
//
// Cookie, Header and Custom take [Transformer]s, applied in order to what
// travels and undone in reverse order on the way back: [Encrypt] (AES-GCM,
// the session name as associated data), [Sign] (HMAC-SHA256) and [Digest]
// (integrity only). Each takes several keys so that keys can rotate: the
// first writes, all read.
//
// A kind registered without a Storage is client-side: its whole value
// travels, encoded by its codec, framed by the engine with its creation and
// last-write times, transformed, and base64url-encoded. Such a binding
// needs Encrypt or Sign (a configuration error otherwise). A value that
// fails verification, has expired, or does not decode is no session, and
// the client's copy is cleared; a write whose value would not fit in a
// 4096-byte cookie fails with [ErrTooLarge] and sends nothing. Two requests
// of one client-side session each work on their own copy: use a server-side
// kind where concurrent updates must all count.
//
// With transformers, a server-side kind's ID travels sealed too (signed,
// typically), so that a forged or guessed ID is refused before any lookup.
//
// # Hijacking and other interfaces
//
// The ResponseWriter the handler gets passes on http.Flusher,
// http.Hijacker, http.Pusher and io.ReaderFrom of the writer underneath,
// and has Unwrap for [http.ResponseController]. Flush and Hijack apply the
// sessions' outcomes first, as a first Write does. Hijack and Push return
// an error wrapping [http.ErrNotSupported] when no writer underneath can
// do it (Hijack on HTTP/2, for one); a Hijack that is not supported
// applies nothing.
//
// A WebSocket upgrade hijacks the connection, and from then on only the
// bytes written on it reach the client: the Set-Cookie of a session the
// handler created or renewed before upgrading is in w.Header() when Hijack
// returns, and goes out with the 101 response if that response is built
// from w.Header(). coder/websocket's Accept does (it calls WriteHeader(101)
// and net/http writes the header as it hands the connection over); with
// gorilla/websocket, pass w.Header() as Upgrade's responseHeader. Changes
// to a session after the upgrade cannot reach the client through the
// response; a long-lived connection that needs the session's current
// state reads it by ID with [engine.RawKind.Load]. examples/websocket (its
// own module) is a complete server.
//
// Interfaces of other servers' writers that this writer does not pass on,
// such as quic-go's http3.HTTPStreamer (which takes an HTTP/3 stream
// over), are reached through Unwrap, as http.ResponseController does:
// call WriteHeader and Flush on the middleware's writer first, so that the
// session's headers go with the response, then unwrap until the writer
// implements the interface.
//
// # Routers
//
// The middleware is func(http.Handler) http.Handler, so it goes as it is
// around a ServeMux (its handlers keep r.PathValue, whether the
// middleware wraps the whole mux or single routes), into chi's Use, and
// into echo through echo.WrapMiddleware. gin's writer sends the headers on
// calls that net/http's middleware never sees (c.AbortWithStatus,
// WriteString, ...): use the adapter in the module
// github.com/steward-sessions/steward/transport/ginsteward. In every case
// the handlers pass the request's context to the kind's methods.
// examples/routers (its own module) serves one counter through each.
//
// # Custom transports
//
// A Transport has three methods, Receive, Send and Clear; see its
// documentation for the rules. Bind it to a kind with Custom. Transports
// that are not HTTP at all (a WebSocket protocol, gRPC metadata) use the
// engine's [engine.RawKind] API directly instead.
package transport
