package storage

import (
	"bytes"
	"context"
	"hash/maphash"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// DefaultMaxEntries is the size bound of a Memory whose
// MemoryOptions.MaxEntries is zero.
const DefaultMaxEntries = 1 << 20

const (
	// memoryMaxShards is the most shards a Memory splits into.
	memoryMaxShards = 64
	// memoryMinShardEntries is the fewest entries a shard holds (unless the
	// whole bound is smaller), so small bounds keep an exact LRU order.
	memoryMinShardEntries = 256
	// memoryPrunePerWrite is how many of the least recently used entries of
	// its shard a write checks for expiry.
	memoryPrunePerWrite = 2
)

// MemoryOptions configures a Memory. The zero value is ready to use.
type MemoryOptions struct {
	// MaxEntries is the size bound: the most values the Memory holds at
	// once. When a shard is full, writing a new ID evicts that shard's least
	// recently used value. Zero or negative means DefaultMaxEntries.
	MaxEntries int

	// Now returns the current time and decides which values have expired.
	// Nil means time.Now.
	Now func() time.Time
}

// Memory is a Storage and BytesStorage that keeps values in process memory.
// Values are lost when the process exits, so it fits single-process
// deployments, tests and development.
//
// Unlike Ktor's SessionStorageMemory, a Memory never grows without bound: it
// holds at most MemoryOptions.MaxEntries values, and writing a new ID into a
// full Memory evicts a least recently used value (reads and writes both count
// as use). The values are spread over up to 64 shards, each with its own lock
// and LRU list of at least 256 entries, so the bound is exact, the LRU order
// is exact within a shard and approximate across shards, and a Memory with a
// bound under 512 entries is one exact LRU.
//
// Expiry needs no goroutine: a value past its expiry reads as ErrNotFound
// and is removed by that read, and every write also removes up to two
// expired values from the least recently used end of its shard. Expired
// values that are never read again are otherwise removed by LRU eviction.
//
// Save keeps the slice it is given, Load returns the stored slice without
// copying it, and Write copies what its function writes into a fresh buffer.
// Memory never blocks, so it ignores the contexts it is given. It is safe for
// concurrent use and starts no goroutines; it needs no closing.
type Memory struct {
	seed   maphash.Seed
	now    func() time.Time
	shards []memoryShard
}

type memoryShard struct {
	mu  sync.Mutex
	lru *simplelru.LRU[string, memoryEntry]
	_   [48]byte // pad to 64 bytes: neighbouring locks on separate cache lines
}

// memoryEntry is one stored value. expires is in Unix nanoseconds; 0 means
// never.
type memoryEntry struct {
	data    []byte
	expires int64
}

// live reports whether e has not expired at now (Unix nanoseconds). A value
// expires after its expiry instant, not at it.
func (e memoryEntry) live(now int64) bool {
	return e.expires == 0 || now <= e.expires
}

// expiryNanos converts an expiry to memoryEntry.expires: 0 for the zero time
// (never), and otherwise a non-zero Unix nanosecond count, clamped to the
// range of int64 (years 1677 to 2262).
func expiryNanos(t time.Time) int64 {
	const maxSec = math.MaxInt64 / int64(time.Second) // 9223372036
	switch sec := t.Unix(); {
	case t.IsZero():
		return 0
	case sec < -maxSec:
		return math.MinInt64
	case sec >= maxSec:
		return math.MaxInt64
	}
	if ns := t.UnixNano(); ns != 0 {
		return ns
	}
	return -1 // the epoch itself: long past, and not confused with never
}

// NewMemory returns an empty Memory configured by opts.
func NewMemory(opts MemoryOptions) *Memory {
	maxEntries := opts.MaxEntries
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	n := min(memoryMaxShards, max(1, maxEntries/memoryMinShardEntries))
	m := &Memory{
		seed:   maphash.MakeSeed(),
		now:    opts.Now,
		shards: make([]memoryShard, n),
	}
	if m.now == nil {
		m.now = time.Now
	}
	for i := range m.shards {
		// Spread the remainder so the capacities add up to maxEntries.
		size := maxEntries / n
		if i < maxEntries%n {
			size++
		}
		lru, err := simplelru.NewLRU[string, memoryEntry](size, nil)
		if err != nil {
			panic("storage: " + err.Error()) // unreachable: size >= 1
		}
		m.shards[i].lru = lru
	}
	return m
}

// shard returns the shard that holds id.
func (m *Memory) shard(id string) *memoryShard {
	if len(m.shards) == 1 {
		return &m.shards[0]
	}
	return &m.shards[maphash.String(m.seed, id)%uint64(len(m.shards))]
}

// nowNanos returns the current time in Unix nanoseconds.
func (m *Memory) nowNanos() int64 {
	return m.now().UnixNano()
}

// Load returns the value stored under id, or an error wrapping ErrNotFound
// when there is no live one. The returned slice is shared with the Memory
// and must not be modified.
func (m *Memory) Load(ctx context.Context, id string) ([]byte, error) {
	if !ValidID(id) {
		return nil, ErrInvalidID
	}
	now := m.nowNanos()
	s := m.shard(id)
	s.mu.Lock()
	e, ok := s.lru.Get(id)
	if ok && !e.live(now) {
		s.lru.Remove(id)
		ok = false
	}
	s.mu.Unlock()
	if !ok {
		return nil, ErrNotFound
	}
	return e.data, nil
}

// Save stores data under id until expires (the zero time: no expiry),
// replacing any previous value. The Memory keeps data itself, so the caller
// must not modify it afterwards.
func (m *Memory) Save(ctx context.Context, id string, data []byte, expires time.Time) error {
	if !ValidID(id) {
		return ErrInvalidID
	}
	m.store(id, data, expires)
	return nil
}

// Delete removes the value stored under id. Deleting an unknown id is not an
// error.
func (m *Memory) Delete(ctx context.Context, id string) error {
	if !ValidID(id) {
		return ErrInvalidID
	}
	s := m.shard(id)
	s.mu.Lock()
	s.lru.Remove(id)
	s.mu.Unlock()
	return nil
}

// Read calls fn with a reader over the value stored under id. It returns an
// error wrapping ErrNotFound, without calling fn, when there is no live
// value, and otherwise what fn returns. fn runs without any lock held.
func (m *Memory) Read(ctx context.Context, id string, fn func(r io.Reader) error) error {
	data, err := m.Load(ctx, id)
	if err != nil {
		return err
	}
	return fn(bytes.NewReader(data))
}

// Write stores what fn writes under id until expires (the zero time: no
// expiry), replacing any previous value. If fn returns an error, Write
// returns it and the previous value stays in place. fn runs without any
// lock held.
func (m *Memory) Write(ctx context.Context, id string, expires time.Time, fn func(w io.Writer) error) error {
	if !ValidID(id) {
		return ErrInvalidID
	}
	var buf bytes.Buffer
	if err := fn(&buf); err != nil {
		return err
	}
	data := buf.Bytes()
	if cap(data)-len(data) > len(data)/8 {
		// bytes.Buffer grows by doubling; do not keep the slack for the
		// value's whole life.
		data = bytes.Clone(data)
	}
	m.store(id, data, expires)
	return nil
}

// Invalidate removes the value stored under id. Invalidating an unknown id
// is not an error.
func (m *Memory) Invalidate(ctx context.Context, id string) error {
	return m.Delete(ctx, id)
}

// NonBlocking implements NonBlocking: a Memory never waits for I/O, so the
// engine calls it directly from the session actor.
func (m *Memory) NonBlocking() bool { return true }

// Len returns the number of values the Memory holds, counting expired
// values that have not been removed yet.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}

// store puts data under the valid id, first removing expired values from
// the least recently used end of the shard. A value that is already expired
// is not stored, only its predecessor removed.
func (m *Memory) store(id string, data []byte, expires time.Time) {
	e := memoryEntry{data: data, expires: expiryNanos(expires)}
	now := m.nowNanos()
	s := m.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	for range memoryPrunePerWrite {
		_, oldest, ok := s.lru.GetOldest()
		if !ok || oldest.live(now) {
			break
		}
		s.lru.RemoveOldest()
	}
	switch {
	case !e.live(now):
		s.lru.Remove(id)
	case s.lru.Contains(id):
		s.lru.Add(id, e)
	default:
		// The map key outlives the call: copy it, so that an id sliced from
		// a larger string (a cookie header) does not keep that alive.
		s.lru.Add(strings.Clone(id), e)
	}
}

// Interface checks.
var (
	_ Storage      = (*Memory)(nil)
	_ BytesStorage = (*Memory)(nil)
)
