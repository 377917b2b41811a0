// Package engine is the public face of Steward: an Engine that owns the
// actor system, the registration of session kinds, and the operations on
// sessions.
//
// # Kinds
//
// A session kind is a name, a Go type, a codec and a storage, as in Ktor's
// Sessions plugin. Register[T] returns a *Kind[T]; names and types are
// unique per engine.
//
// # Operations
//
// Kind[T] acts on the current request's session, found through the Binding
// that a transport (package transport) put in the request's context: Get,
// Set, GetOrSet, Clear, Renew, and Update, whose function runs inside the
// session's actor so that read-modify-write is atomic per session even when
// many requests of one session run at once. Invalidate ends any session by
// ID.
//
// RawKind is the same kind seen as bytes and keyed by session ID (Create,
// Load, Store, Update, Invalidate, Renew): the API for custom transports.
//
// # Expiry
//
// Every session has an idle timeout (sliding) and an absolute lifetime,
// enforced by the engine on every operation and passed to the storage as
// the value's expiry. An unknown, expired or malformed ID from a client is
// never adopted: the request has no session, and a new ID is generated when
// a value is first stored.
//
// # Shutdown
//
// Close drains: every acknowledged write is in its storage when it returns,
// later operations fail with ErrClosed, and no goroutine is left.
package engine
