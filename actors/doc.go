// Package actors is the actor side of the Steward engine, on protoactor-go.
// Applications do not import it; package engine does.
//
// # Dispatcher
//
// The dispatcher is a sharded registry of live session actors, not an
// actor: an operation hashes its (kind, ID) to a shard, takes that shard's
// lock for a map look-up (spawning the actor on first use) and sends the
// operation to the actor. No single actor or lock is crossed by every
// request, so throughput grows with cores.
//
// # Session actors
//
// One actor owns each live (kind, ID). It holds the session's value, runs
// every operation of that ID one at a time (an update function runs inside
// it, so read-modify-write is atomic), writes values through to the storage
// before answering, and enforces the idle timeout and absolute lifetime.
// Actors run on a fair mailbox: a sender that finds the actor idle runs its
// own message on its own goroutine (no goroutine start, no hand-off, as
// with protoactor's synchronized dispatcher) but only that message;
// messages that arrived meanwhile go to a fresh goroutine. So no caller
// works for another, and one goroutine at a time processes one actor.
//
// # Passivation
//
// A janitor goroutine picks actors idle for Config.PassivateAfter with no
// message on its way (a per-entry counter incremented only under the shard
// lock) and sends them a passivate message. The actor flushes its sliding
// expiry, then, under the shard lock, removes itself from the registry only
// if that message is still the only one on its way; otherwise it stays. A
// message sent after the removal finds no entry and spawns a fresh actor,
// which reads the storage: nothing is dropped, nothing answered stale.
//
// # Storage actors
//
// A fixed pool of storage actors does the storage I/O, chosen by the hash of
// the ID, so two calls for one ID are never reordered and the number of
// concurrent storage calls is bounded. They run on protoactor's default
// dispatcher, on their own goroutines: a caller's goroutine never runs
// another session's I/O. A storage that never blocks (storage.NonBlocking,
// as the memory storage) is called directly by the session actor.
package actors
