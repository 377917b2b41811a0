// Command grpc serves Steward's counter as a gRPC service (grpc-go): the
// session ID travels in call metadata, carried by a unary and a stream
// server interceptor built on the engine's byte-level API, and every
// increment runs inside the session's actor, so concurrent calls of one
// session never lose an update.
//
//	go run ./examples/grpc [-addr 127.0.0.1:7071] [-v]
//	go run ./examples/grpc -call get|increment|renew|logout|stream [-session VALUE] [-n 3] [-addr ...]
//
// Without -call it serves: it prints "listening on ADDR" once it accepts
// connections, logs only warnings and errors to stderr unless -v is given,
// and on SIGINT or SIGTERM stops gracefully (grpc.Server.GracefulStop, cut
// short after ten seconds; then the engine drains). With -call it is a
// client: it makes one call on -addr with -session as its session ID and
// prints the count ("count N") and, when the server sent one, the new
// session value ("session-id VALUE", empty when the session was cleared).
//
// # The service
//
// steward.examples.counter.v1.Counter, described in counter.proto. Its
// messages are protobuf's well-known types, so no code is generated:
//
//	Get(Empty) Int64Value               the count; Unauthenticated without a session
//	Increment(Empty) Int64Value         atomic +1; creates the session if the call has none
//	Renew(Empty) Int64Value             same count under a new session ID; Unauthenticated without a session
//	Logout(Empty) Empty                 ends the session (also fine without one)
//	IncrementStream(stream Empty) (stream Int64Value)
//	                                    +1 per client message, each answered with the
//	                                    new count; creates the session on the first
//	                                    message if the call has none
//
// # The session in metadata
//
// The client sends its session in the request metadata key "session-id".
// The server answers in the response header metadata, under the same key,
// only when something changed: a new ID (a session created, or renewed),
// or an empty value when the client must forget its ID (logged out, or the
// ID it sent has no session). What travels is the ID signed with
// HMAC-SHA256 (transport.Sign, base64url), so a forged or altered value is
// refused before any lookup and the call has no session.
//
// Errors are gRPC status codes: Unauthenticated "no session",
// Aborted "session renewed" (retry with the new ID), Unavailable
// "storage unavailable" or "shutting down", Unknown "may have been
// applied" (read the count before retrying), OutOfRange "counter
// overflow", DeadlineExceeded and Canceled from the call's context, and
// Internal "internal error" for anything else; the details go to the
// server's log only.
package main
