// Package redisstore is a session storage in Redis that several engine
// instances share: application servers behind a load balancer, each with
// its own engine and its own session actors, serving the same sessions.
//
//	store, err := redisstore.New(ctx, "redis://:password@redis.internal:6379/0",
//		redisstore.Options{Prefix: "shop:"})
//	if err != nil {
//		return err // Redis is unreachable, or the URL is wrong
//	}
//	carts, err := engine.Register[Cart](eng, "cart", engine.KindOptions{Storage: store})
//
// A Store implements storage.Storage, storage.BytesStorage and
// storage.Versioned. The engine uses the last: that is what makes the
// guarantees below hold across machines.
//
// # Keys and values
//
// Each session is one Redis key, Prefix+ID, holding a string: an 8-byte
// version followed by the session's record. Every command and script
// touches that one key, so a Store works on Redis Cluster as on a single
// server, with sessions spread over the slots by ID. Expiry is Redis's own
// TTL, set on every write from the expiry the engine gives (its idle
// timeout and absolute lifetime): Redis removes a session nobody uses, and
// no sweeper runs anywhere. The TTL is sent as a duration (SET ... PX), so
// it follows the application server's clock however far Redis's clock
// is from it; a write whose expiry is already past deletes the key.
//
// # Guarantees
//
// No lost updates across instances. Every write stores a new random 64-bit
// version. The engine's update writes with SaveIf, one Lua script that
// stores the new value only if the version is still the one the update
// started from; when another instance wrote in between, the script answers
// with the current value and version instead, and the engine runs the
// update function again on that value (up to 128 attempts, then
// engine.ErrConflict). Versions are never reused, so a session deleted
// and created again never makes a version read before the deletion valid
// again.
//
// No stale reads. With a Versioned storage the engine reads the session
// anew for every Get, Renew and Invalidate instead of trusting its
// actor's copy (Gets that wait on one session share one read, made after
// all of them were queued), and every read of a Store is as fresh as
// Redis's answer after the read began: by default it goes to Redis, and with local reads
// (below) it proves its copy current with a round trip first. Once a
// write is acknowledged to one instance, every read that starts
// afterwards, on any instance, sees it or a later write: each session is
// linearizable (the tests check recorded histories of gets and increments
// across three instances with porcupine, with local reads and without).
// Coherence comes before caching: do not put storage.NewCache in front of
// a Store. The engine sees through it (storage.VersionedOf) and reads and
// writes past it, so it would only add work; and whoever reads the Cache
// directly gets values up to its TTL old. Options.LocalReads is the
// coherent cache.
//
// # Local reads
//
// With Options.LocalReads, a Store on a single Redis server (not a
// Cluster, not Sentinel) keeps the values it has read in the client-side
// cache of rueidis, up to Options.LocalReadBytes (64 MiB by default,
// least recently used out first), on a connection of their own with
// server-assisted tracking (RESP3 CLIENT TRACKING, OPTIN: only these
// reads are tracked). Redis tells that connection when another instance,
// or this one, changes or deletes a key it has read, and the entry is
// dropped; an entry also ages out at the key's TTL.
//
// An invalidation travels while the writer already has its answer, so a
// cached value alone could be stale. A read answered from memory
// therefore waits for a barrier: a PING sent on the tracking connection
// after the read began. Redis puts the invalidation on that connection
// when it executes the write, before it answers any later command there,
// and rueidis applies invalidations in the order they arrive, before the
// answers behind them; so once the PONG is back, every write acknowledged
// before the read began has dropped its entry, and the cache is looked up
// again: a hit is then current as of the PING. Reads that start while no
// PING is in flight share the next one, a read that starts while one is
// in flight waits for the one after. A read that misses is answered by
// its own GET, sent after it began, and needs no barrier. When the
// connection breaks, rueidis throws its cache away and the barrier fails
// with it: the read fails with storage.ErrUnavailable rather than answer
// from memory; after a restart the new connection starts empty.
//
// What it saves: a read of a session that nobody wrote since this
// instance last read it costs a share of one PING instead of a GET and the
// value's transfer (on a 2-core machine, 64 goroutines rereading their
// sessions ran two to three times as fast). What it costs: a miss is a
// small transaction (CLIENT CACHING, MULTI, PTTL, GET, EXEC) instead of a GET,
// Redis remembers which keys each instance has read (tracking-table-max-
// keys bounds that), and every read waits for at least one round trip as
// before. Under heavy contention for one session between instances it
// costs more compare-and-set conflicts, which is why it is off by default:
// turn it on for sessions read far more often than written.
//
// A Store has no NonBlocking method: its calls wait for the network, so
// the engine runs them on its storage actors.
//
// # Failures
//
// Connecting to Redis is bounded by Options.DialTimeout and every command
// by Options.Timeout (one second each by default); New itself fails fast
// when Redis does not answer. While Redis is down, calls fail at once when
// the connection is refused and after one to two Timeouts when Redis
// hangs or the network drops packets (a connection that pipelines many
// callers' commands, as the local reads' one always does, finds out by a
// PING of its own after half a Timeout without answers); the engine returns their errors wrapped in
// engine.ErrStorage (an HTTP handler answers 503), and no goroutines pile
// up. Operations on one session wait in line in its actor, so under a hung
// Redis the later ones fail a few timeouts later. When Redis is back, the
// next command connects again (and reloads the script Redis may have
// forgotten): traffic recovers without restarting the application.
//
// A failed command is not sent again: a write whose answer was lost may
// have been applied, and resending a compare-and-set could apply an update
// twice. The caller gets the error, not an acknowledgement. Durability is
// Redis's: a Redis without persistence that restarts has lost every
// session, and the engine then answers "no session" for their IDs.
//
// # Redis Cluster
//
// A URL naming one node of a cluster gets a cluster client, found out at
// New. The Prefix must not contain a hash tag ("{...}"), which would put
// every session in one slot.
//
// # Module
//
// This package is a module of its own,
// github.com/steward-sessions/steward/storage/redisstore, so that its Redis
// client (rueidis) enters only the go.mod of programs that use Redis:
//
//	go get github.com/steward-sessions/steward/storage/redisstore
package redisstore
