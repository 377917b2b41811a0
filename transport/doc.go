// Package transport carries server-side session IDs over HTTP: net/http
// middleware that reads each request's session IDs from cookies or headers,
// hands them to the engine, and sends new, renewed or cleared IDs back, the
// counterpart of Ktor's Sessions plugin and its SessionTransport.
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
// Responses that carry a session ID are marked "Vary: Cookie" (or the
// header's name) and `Cache-Control: no-cache="Set-Cookie"` (or the
// header's name), so that a shared cache never serves one client's ID to
// another.
//
// # Untrusted input
//
// Whatever a client sends is untrusted. The cookie and header transports
// take the first value that is a well-formed session ID (see
// [storage.ValidID]) and ignore the rest, whatever its size; the engine never
// adopts an ID it did not issue, so a request with an unknown ID has no
// session and gets a fresh, server-generated ID when it first stores one.
//
// # Custom transports
//
// A Transport has three methods, Receive, Send and Clear; see its
// documentation for the rules. Bind it to a kind with Custom. Transports
// that are not HTTP at all (a WebSocket protocol, gRPC metadata) use the
// engine's [engine.RawKind] API directly instead.
package transport
