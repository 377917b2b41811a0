package storage

import (
	"bytes"
	"context"
	"hash/maphash"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Defaults of CacheOptions.
const (
	DefaultCacheTTL        = 60 * time.Second
	DefaultCacheMaxEntries = 100_000
)

const cacheShards = 16

// CacheOptions configure a Cache. The zero value means the defaults.
type CacheOptions struct {
	// TTL is how long a value read or written stays in the cache. Zero:
	// DefaultCacheTTL (60 s, as Ktor's CacheStorage).
	TTL time.Duration
	// MaxEntries bounds the cache; the least recently used value goes
	// first. Zero: DefaultCacheMaxEntries.
	MaxEntries int
	// Now is the clock for the TTL and the values' expiry. Nil: time.Now.
	Now func() time.Time
}

// CacheStats are a Cache's counters.
type CacheStats struct {
	Hits, Misses uint64
	Len          int
}

// Cache is a Storage and BytesStorage that keeps recently used values of
// another storage in memory, the counterpart of Ktor's CacheStorage: reads
// fill it, writes go through to the inner storage and then update it,
// deletes remove from both. A failed read, "not found" included, is not
// cached. Values leave the cache after the TTL, at their own expiry, or when
// the size bound evicts them. Read, Write and Invalidate come from the
// embedded Streams.
//
// The cache is coherent for everything written through it: a read never
// returns a value older than the last write or invalidation made through
// the same Cache. Writes made to the inner storage by someone else (another
// process) are seen after the TTL at the latest.
//
// A Cache is a Keeper: when a session's actor passivates, the engine hands
// the value back with Keep, which gives the cached copy another TTL, so a
// session that comes back within the TTL of its passivation is read from
// memory even if its last write was longer ago.
//
// Close closes the inner storage if it has a Close method.
type Cache struct {
	Streams // Read, Write and Invalidate over Load, Save and Delete

	inner     BytesStorage
	versioned Versioned // VersionedOf(inner)
	closer    io.Closer
	ttl       int64
	now       func() time.Time
	seed      maphash.Seed
	shards    [cacheShards]cacheShard

	hits, misses atomic.Uint64
}

type cacheShard struct {
	mu  sync.Mutex
	lru *simplelru.LRU[string, cacheEntry] // protected by mu
	// writes counts the writes and invalidations of the shard, so that a
	// read that raced with one does not cache what it read.
	writes uint64 // protected by mu
}

type cacheEntry struct {
	data     []byte
	cachedAt int64 // Unix ns
	expires  int64 // Unix ns, 0 for never
}

// NewCache returns a Cache in front of inner.
func NewCache(inner Storage, opts CacheOptions) *Cache {
	if opts.TTL <= 0 {
		opts.TTL = DefaultCacheTTL
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultCacheMaxEntries
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Cache{inner: AsBytes(inner), ttl: int64(opts.TTL), now: opts.Now, seed: maphash.MakeSeed()}
	c.closer, _ = inner.(io.Closer)
	c.versioned = VersionedOf(c.inner)
	c.Streams = NewStreams(c)
	per := max(1, opts.MaxEntries/cacheShards)
	for i := range c.shards {
		c.shards[i].lru, _ = simplelru.NewLRU[string, cacheEntry](per, nil)
	}
	return c
}

// NewCachedDirectory opens the directory storage at dir with a Cache in
// front of it, the counterpart of Ktor's directorySessionStorage(dir,
// cached = true): sessions survive restarts, and reads of recently used
// sessions never touch the disk. Closing the Cache closes the Directory.
func NewCachedDirectory(dir string, opts DirectoryOptions) (*Cache, error) {
	d, err := NewDirectory(dir, opts)
	if err != nil {
		return nil, err
	}
	return NewCache(d, CacheOptions{Now: opts.Now}), nil
}

func (c *Cache) shard(id string) *cacheShard {
	return &c.shards[maphash.String(c.seed, id)%cacheShards]
}

// Load implements BytesStorage.
func (c *Cache) Load(ctx context.Context, id string) ([]byte, error) {
	if !ValidID(id) {
		return nil, ErrInvalidID
	}
	now := c.now().UnixNano()
	s := c.shard(id)
	s.mu.Lock()
	if e, ok := s.lru.Get(id); ok {
		if now-e.cachedAt < c.ttl && (e.expires == 0 || now <= e.expires) {
			s.mu.Unlock()
			c.hits.Add(1)
			return e.data, nil
		}
		s.lru.Remove(id)
	}
	epoch := s.writes
	s.mu.Unlock()
	c.misses.Add(1)

	data, err := c.inner.Load(ctx, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.writes == epoch {
		// The inner storage does not say when the value expires; the TTL
		// bounds how long it is served.
		s.lru.Add(strings.Clone(id), cacheEntry{data: data, cachedAt: now})
	}
	s.mu.Unlock()
	return data, nil
}

// Save implements BytesStorage: the inner storage first, then the cache.
func (c *Cache) Save(ctx context.Context, id string, data []byte, expires time.Time) error {
	if !ValidID(id) {
		return ErrInvalidID
	}
	err := c.inner.Save(ctx, id, data, expires)
	s := c.shard(id)
	s.mu.Lock()
	s.writes++
	if err != nil {
		s.lru.Remove(id) // the inner state is unknown now
	} else {
		s.lru.Add(strings.Clone(id), cacheEntry{data: data, cachedAt: c.now().UnixNano(), expires: expiryNanos(expires)})
	}
	s.mu.Unlock()
	return err
}

// Delete implements BytesStorage: it removes from the cache whatever the
// inner storage answers.
func (c *Cache) Delete(ctx context.Context, id string) error {
	if !ValidID(id) {
		return ErrInvalidID
	}
	err := c.inner.Delete(ctx, id)
	c.drop(id)
	return err
}

// Stats returns the cache's hit and miss counts and its size.
func (c *Cache) Stats() CacheStats {
	st := CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load()}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		st.Len += s.lru.Len()
		s.mu.Unlock()
	}
	return st
}

// NonBlocking implements NonBlocking: a Cache blocks when what it wraps
// does, on a miss or a write.
func (c *Cache) NonBlocking() bool { return nonBlocking(c.inner) }

// Versioned reports the compare-and-set capability of the inner storage
// (see VersionedOf). In front of a storage that several engine instances
// share, the engine reads and writes through it, past the cache: coherence
// across instances comes before caching.
func (c *Cache) Versioned() Versioned { return c.versioned }

// Keeper reports c's Keeper capability (see KeeperOf): c itself, or nil in
// front of a Versioned storage, which other engine instances write behind
// the cache's back.
func (c *Cache) Keeper() Keeper {
	if c.versioned != nil {
		return nil
	}
	return c
}

// Keep implements Keeper: if the cache still holds exactly data under id,
// it serves it for another TTL from now, until expires, and counts it as
// just used; a cached copy past its TTL (and not read since) is kept as
// well as a fresh one. If the cache holds other bytes under id, a later
// write or read through the cache put them there, and Keep leaves them; if
// it holds nothing for id (never cached, evicted, invalidated), Keep cannot
// tell whether a write or invalidation came in between, and keeps nothing
// either. A value whose expires is past is dropped from the cache instead.
// Keep does nothing in front of a Versioned storage, or for an invalid ID.
func (c *Cache) Keep(id string, data []byte, expires time.Time) {
	if c.versioned != nil || !ValidID(id) {
		return
	}
	now := c.now().UnixNano()
	exp := expiryNanos(expires)
	s := c.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.lru.Peek(id)
	if !ok || !bytes.Equal(e.data, data) {
		return
	}
	if exp != 0 && now > exp {
		s.lru.Remove(id)
		return
	}
	s.lru.Add(id, cacheEntry{data: e.data, cachedAt: now, expires: exp})
}

// Close closes the inner storage if it has a Close method.
func (c *Cache) Close() error {
	if c.closer != nil {
		return c.closer.Close()
	}
	return nil
}

// Lister reports the Lister capability of the inner storage (see
// ListerOf): the cache lists what the storage behind it holds.
func (c *Cache) Lister() Lister { return ListerOf(c.inner) }

// ExpiryReporter reports the ExpiryReporter capability of the inner
// storage (see ExpiryReporterOf), nil without one. Through it, a value the
// inner storage reports expired leaves the cache too, and DeleteFound
// removes the cached value as Delete does.
func (c *Cache) ExpiryReporter() ExpiryReporter {
	inner := ExpiryReporterOf(c.inner)
	if inner == nil {
		return nil
	}
	return cacheExpiry{c: c, inner: inner}
}

// cacheExpiry is a Cache's view of its inner storage's ExpiryReporter.
type cacheExpiry struct {
	c     *Cache
	inner ExpiryReporter
}

// OnExpired registers fn with the inner storage, dropping each value it
// reports from the cache before fn is told.
func (x cacheExpiry) OnExpired(fn func(id string, value []byte)) (unregister func()) {
	return x.inner.OnExpired(func(id string, value []byte) {
		x.c.drop(id)
		fn(id, value)
	})
}

// DeleteFound is Cache.Delete, reporting what the inner storage's
// DeleteFound reports.
func (x cacheExpiry) DeleteFound(ctx context.Context, id string) (bool, error) {
	if !ValidID(id) {
		return false, ErrInvalidID
	}
	found, err := x.inner.DeleteFound(ctx, id)
	x.c.drop(id)
	return found, err
}

// drop removes id from the cache, as a write of id does.
func (c *Cache) drop(id string) {
	s := c.shard(id)
	s.mu.Lock()
	s.writes++
	s.lru.Remove(id)
	s.mu.Unlock()
}
