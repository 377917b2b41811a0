package redisstore

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// localReadTTL is the longest a value stays in the local cache without
// being read again from Redis. Coherence does not depend on it (Redis's
// invalidations and the barrier do that); it only ages out entries that
// the size bound would otherwise keep. rueidis shortens it to the key's
// own TTL in Redis.
const localReadTTL = time.Hour

// localReads serves reads of a single Redis server from the client-side
// cache of rueidis, kept coherent by Redis (CLIENT TRACKING, RESP3), with
// a barrier that makes every cached answer as fresh as a round trip. See
// "Local reads" in the package comment for why it is correct.
type localReads struct {
	client  rueidis.Client // one connection, carrying commands and invalidations
	barrier barrier

	hits   atomic.Int64 // answers from memory, after a barrier
	misses atomic.Int64 // answers from Redis
}

func newLocalReads(client rueidis.Client, timeout time.Duration) *localReads {
	l := &localReads{client: client}
	l.barrier.timeout = timeout
	l.barrier.ping = func(ctx context.Context) error {
		return client.Do(ctx, client.B().Ping().Build()).Error()
	}
	return l
}

// get returns the answer to GET key, as fresh as if Redis had been asked
// after get was called. errBarrier wraps the error of a failed barrier.
//
// The first lookup answers from Redis on a miss: that GET was sent by this
// call, so it ran in Redis after the call began, and its answer is fresh.
// (A miss that joins a GET another call sent, which may have run before
// this one began, comes back marked as a cache hit, like every answer
// rueidis took from its cache.) A hit may be stale: an invalidation for it
// may still be on its way. It is only trusted after a barrier: a PING sent
// on the same connection after the call began. Redis puts an invalidation
// on that connection as it executes the write, before it answers any later
// command there, and rueidis applies invalidations in the order they
// arrive, before it hands out the answers that follow them. So once the
// PONG is back, every write acknowledged before this call began has
// emptied its entry, and the second lookup either hits a value that was
// current when Redis answered the PING, or misses and asks Redis.
func (l *localReads) get(ctx context.Context, key string) rueidis.RedisResult {
	res := l.client.DoCache(ctx, l.client.B().Get().Key(key).Cache(), localReadTTL)
	if !res.IsCacheHit() {
		l.misses.Add(1)
		return res
	}
	if err := l.barrier.wait(ctx); err != nil {
		return rueidis.NewErrorResult(&barrierError{err})
	}
	res = l.client.DoCache(ctx, l.client.B().Get().Key(key).Cache(), localReadTTL)
	if res.IsCacheHit() {
		l.hits.Add(1)
	} else {
		l.misses.Add(1)
	}
	return res
}

// barrierError is the error of a barrier that failed: the cached value
// could not be proven fresh, so the read fails.
type barrierError struct{ err error }

func (e *barrierError) Error() string { return "PING (read barrier): " + e.err.Error() }
func (e *barrierError) Unwrap() error { return e.err }

// A barrier sends round trips (PINGs) on the connection that carries the
// invalidations, one at a time, and lets every waiting read share one.
// A read that arrives while no round is in flight starts one; a read that
// arrives while one is in flight waits for the next, since the one in
// flight may have been sent before the read began.
type barrier struct {
	ping    func(ctx context.Context) error // one round trip
	timeout time.Duration                   // bounds each round trip

	mu     sync.Mutex
	flying bool   // a round is in flight; protected by mu
	next   *round // the round the next send serves, nil if no read waits; protected by mu

	rounds atomic.Int64 // round trips sent
}

// A round is one round trip and the reads that wait for it.
type round struct {
	done chan struct{} // closed when the round trip is over
	err  error         // its error; written before done is closed
}

// wait returns once a round trip sent after wait was called has come back,
// with its error, or with ctx's error when ctx ends first.
func (b *barrier) wait(ctx context.Context) error {
	b.mu.Lock()
	if b.next == nil {
		b.next = &round{done: make(chan struct{})}
	}
	r := b.next
	if !b.flying {
		b.flying = true
		b.next = nil
		go b.send(r)
	}
	b.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	default:
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// send runs round r, then the rounds that reads joined meanwhile, until
// no read waits. It runs on its own goroutine so that a waiting read can
// leave at its deadline.
func (b *barrier) send(r *round) {
	for r != nil {
		b.rounds.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		r.err = b.ping(ctx)
		cancel()
		close(r.done)
		b.mu.Lock()
		r, b.next = b.next, nil
		b.flying = r != nil
		b.mu.Unlock()
	}
}
