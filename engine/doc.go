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
// # Deadlines and update functions
//
// Every operation returns when its context ends, whatever the storage is
// doing: with ctx's error if the operation was not applied (it never will
// be), or with ErrMaybeApplied if its write was already with the storage.
// An update function runs inside the session's actor while the session's
// other operations wait: it may call ID and write the response, but an
// operation on its own session from inside it returns ErrReentrant.
//
// # Renewal
//
// Renew (on login) moves a session to a new ID. Requests that were in
// flight with the old ID complete against the session for RenewGrace but
// never learn the new ID; requests that begin later with the old ID get
// ErrRenewed (answer 409 and let the client retry), so a planted ID is
// worth nothing once its victim logs in.
//
// # At rest
//
// Storages, logs and the actor registry see a digest of each session ID
// (StorageKey), never the ID: a directory listing or a key dump yields no
// usable session.
//
// # Memory
//
// Live session actors are bounded (Options.MaxLiveActors): the least
// recently used idle ones passivate first, and an operation on an ID that
// has no session keeps no actor.
//
// # Metrics
//
// With Options.MeterProvider the engine records its metrics through the
// OpenTelemetry metric API: operations by kind, op and outcome, their
// durations, storage call durations, errors and conflicts, live actors,
// passivations, evictions, and the hits and misses of a storage.Cache (the
// list, with units, is on Options.MeterProvider). It never starts an
// exporter and never reads the global provider; without a MeterProvider
// nothing is recorded and nothing is paid.
//
// # Shutdown
//
// Close drains: every acknowledged write is in its storage when it returns,
// later operations fail with ErrClosed, and no goroutine is left.
package engine
