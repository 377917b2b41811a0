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
// update function again on that value (up to 32 attempts, then
// engine.ErrConflict). Versions are never reused, so a session deleted
// and created again never makes a version read before the deletion valid
// again.
//
// No stale reads. Every read goes to Redis: a Store keeps no cache, and
// with a Versioned storage the engine reads the session anew for every
// Get, Renew and Invalidate instead of trusting its actor's copy. Once a
// write is acknowledged to one instance, every read that starts afterwards,
// on any instance, sees it or a later write: each session is linearizable
// (the tests check recorded histories across three instances with
// porcupine). Coherence comes before caching: do not put storage.NewCache
// in front of a Store. The engine sees through it (storage.VersionedOf) and
// reads and writes past it, so it would only add work; and whoever reads
// the Cache directly gets values up to its TTL old.
//
// A Store has no NonBlocking method: its calls wait for the network, so
// the engine runs them on its storage actors.
//
// # Failures
//
// Connecting to Redis is bounded by Options.DialTimeout and every command
// by Options.Timeout (one second each by default); New itself fails fast
// when Redis does not answer. While Redis is down, calls fail at once when
// the connection is refused and after about Timeout when Redis hangs or
// the network drops packets; the engine returns their errors wrapped in
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
