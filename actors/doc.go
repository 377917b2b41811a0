// Package actors is the actor side of the Steward engine, on protoactor-go.
// Applications do not import it; package engine does, and owns every public
// name: actors reports outcomes as Status codes and takes its settings
// resolved (Config), so no type, default or error is defined twice.
//
// # Dispatcher
//
// The dispatcher is a sharded registry of live session actors, not an
// actor: an operation hashes its (kind, digest) to a shard, takes that
// shard's lock for a map look-up (spawning the actor on first use) and
// sends the operation to the actor. No single actor or lock is crossed by
// every request, so throughput grows with cores. Sessions are known by the
// digest of their ID (record.Digest), never the ID.
//
// # Session actors
//
// One actor owns each live (kind, ID). It holds the session's value, runs
// every operation of that ID one at a time (an update function runs inside
// it, so read-modify-write is atomic), writes values through to the storage
// before answering, and enforces the idle timeout and absolute lifetime.
//
// Actors run on a fair mailbox. A sender that finds the actor idle runs its
// own operation on its own goroutine (no goroutine start, no hand-off) when
// that operation cannot block: any operation of a storage that never blocks
// (storage.NonBlocking, as Memory), or a read the actor has declared free
// of storage calls (entry.inlineUntil). Everything else, and every message
// that arrived meanwhile, runs on a goroutine of the mailbox's own, so no
// caller works for another and a caller is never stuck in a storage call.
//
// # Deadlines
//
// Do returns when its context ends. An Op that has not reached its first
// write is abandoned (a CAS on its state) and the actor drops it; one whose
// write is with the storage completes in the actor, and its caller waits
// commitGrace before answering MaybeApplied. A result that is ready always
// wins over the context.
//
// # Reentrancy
//
// While an actor runs an update function it flags its entry; an operation
// routed to a flagged entry looks at its own stack (InUpdate) and is
// refused with Reentrant if it comes from inside an update function,
// instead of waiting for itself.
//
// # Passivation and the live bound
//
// Each shard keeps its entries in least-recently-used order. A janitor
// goroutine walks them from the oldest and sends a passivate message to
// those idle for Config.PassivateAfter with no message on their way (a
// per-entry counter incremented only under the shard lock); past the
// shard's share of Config.MaxLive, a spawn does the same to the oldest idle
// ones. The janitor and the evicting caller only send: the flush runs on
// the actor's goroutine. The actor flushes its sliding expiry, hands its
// value to a storage.Keeper (a cache) and then, under the shard lock,
// removes itself from the registry only if that message is still the only
// one on its way; otherwise it stays. A message sent after the removal
// finds no entry and spawns a fresh actor, which reads the storage:
// nothing is dropped, nothing answered stale. An actor that holds no
// session after an operation (an unknown ID) leaves at once.
//
// # Storage actors
//
// A pool of storage actors does the storage I/O on protoactor's default
// dispatcher, on goroutines of their own. Any idle one takes the next call
// (a session actor makes one call at a time, so the calls of one ID are
// never reordered); the pool's size bounds the calls that run at once, and
// a storage actor whose call has run for stallAfter is replaced, so hung
// calls delay only their own sessions. A storage that never blocks is
// called directly by the session actor.
//
// # Close
//
// Close refuses new operations, sends every actor a final passivation that
// queues behind the operations already on their way, and waits; a session
// whose storage hangs holds up only itself, and Close reports how many are
// left when its context ends.
package actors
