package storage

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"time"
	"unsafe"
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
// Besides the value and a copy of its ID, a stored value costs about 80
// bytes: a 56-byte slot in its shard's LRU list and one or two 8-byte
// buckets of the shard's hash table. The list and the table keep the room
// of the most values the shard held at once.
//
// Save keeps the slice it is given, Load returns the stored slice without
// copying it, and Write (from the embedded Streams) copies what its
// function writes into a fresh buffer. Memory never blocks, so it ignores
// the contexts it is given. It is safe for concurrent use and starts no
// goroutines; it needs no closing.
type Memory struct {
	Streams // Read, Write and Invalidate over Load, Save and Delete

	seed   maphash.Seed
	now    func() time.Time
	shards []memoryShard
	expiry expiryHooks // see OnExpired
}

type memoryShard struct {
	mu   sync.Mutex
	list memoryList // protected by mu
	// Pad to a multiple of 64 bytes, so that neighbouring shards' locks
	// and list heads sit on separate cache lines.
	_ [(64 - (unsafe.Sizeof(sync.Mutex{})+unsafe.Sizeof(memoryList{}))%64) % 64]byte
}

// expiryNanos converts an expiry to memorySlot.expires: 0 for the zero time
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
	m.Streams = NewStreams(m)
	for i := range m.shards {
		// Spread the remainder so the capacities add up to maxEntries.
		size := maxEntries / n
		if i < maxEntries%n {
			size++
		}
		m.shards[i].list.init(min(size, memoryMaxListLen), m.seed)
	}
	return m
}

// shard returns the hash of id and the shard that holds it. The shard comes
// from the lower 32 bits of the hash, the place in the shard's table from
// the upper ones.
func (m *Memory) shard(id string) (uint64, *memoryShard) {
	h := maphash.String(m.seed, id)
	return h, &m.shards[uint32(h)%uint32(len(m.shards))]
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
	h, s := m.shard(id)
	s.mu.Lock()
	var data, expired []byte
	i := s.list.lookup(id, h)
	if i != 0 {
		if e := s.list.slot(i); e.live(now) {
			data = e.data
			s.list.touch(i)
		} else {
			expired = e.data
			s.list.remove(i)
			i = 0
		}
	}
	s.mu.Unlock()
	if i == 0 {
		if expired != nil {
			m.expiry.report(id, expired)
		}
		return nil, ErrNotFound
	}
	return data, nil
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
	m.remove(id)
	return nil
}

// DeleteFound implements ExpiryReporter: it is Delete, reporting whether
// a value (live or expired) was removed.
func (m *Memory) DeleteFound(ctx context.Context, id string) (bool, error) {
	if !ValidID(id) {
		return false, ErrInvalidID
	}
	return m.remove(id), nil
}

// remove removes the value of the valid id, reporting whether there was one.
func (m *Memory) remove(id string) bool {
	h, s := m.shard(id)
	s.mu.Lock()
	i := s.list.lookup(id, h)
	if i != 0 {
		s.list.remove(i)
	}
	s.mu.Unlock()
	return i != 0
}

// OnExpired implements ExpiryReporter. A Memory removes an expired value
// when a Load finds it, when a write in its shard prunes it (two a write,
// from the least recently used end), or when it is the least recently used
// value of a full shard; it reports each. An expired value that none of
// these reach is reported when one does, or never.
func (m *Memory) OnExpired(fn func(id string, value []byte)) (unregister func()) {
	return m.expiry.add(fn)
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
		n += s.list.len
		s.mu.Unlock()
	}
	return n
}

// store puts data under the valid id, first removing expired values from
// the least recently used end of the shard. A value that is already expired
// is not stored, only its predecessor removed.
func (m *Memory) store(id string, data []byte, expires time.Time) {
	exp := expiryNanos(expires)
	now := m.nowNanos()
	h, s := m.shard(id)
	report := m.expiry.active()
	var pruned [memoryPrunePerWrite + 1]memorySlot // the expired values removed, to report
	n := 0
	s.mu.Lock()
	l := &s.list
	for range memoryPrunePerWrite {
		i := l.oldest()
		if i == 0 || l.slot(i).live(now) {
			break
		}
		if report {
			pruned[n] = memorySlot{id: l.slot(i).id, data: l.slot(i).data}
			n++
		}
		l.remove(i)
	}
	switch {
	case exp != 0 && now > exp:
		if i := l.lookup(id, h); i != 0 {
			l.remove(i)
		}
	default:
		if report && l.len >= l.capacity {
			// put evicts the least recently used value, which may have
			// expired.
			if i := l.oldest(); i != 0 && !l.slot(i).live(now) && l.lookup(id, h) == 0 {
				pruned[n] = memorySlot{id: l.slot(i).id, data: l.slot(i).data}
				n++
			}
		}
		l.put(id, h, data, exp)
	}
	s.mu.Unlock()
	for _, e := range pruned[:n] {
		m.expiry.report(e.id, e.data)
	}
}

// Interface checks.
var (
	_ Storage        = (*Memory)(nil)
	_ BytesStorage   = (*Memory)(nil)
	_ ExpiryReporter = (*Memory)(nil)
)

// memoryKeysChunk is how many IDs Keys copies out of a shard at a time.
const memoryKeysChunk = 256

// Keys implements Lister: it walks each shard a chunk of slots at a time,
// copying out the IDs of live values under the shard's lock and calling
// fn outside it.
func (m *Memory) Keys(ctx context.Context, fn func(id string) bool) error {
	ids := make([]string, 0, memoryKeysChunk)
	for i := range m.shards {
		sh := &m.shards[i]
		for next := uint32(1); ; {
			if err := ctx.Err(); err != nil {
				return err
			}
			ids = ids[:0]
			now := m.nowNanos()
			sh.mu.Lock()
			used := sh.list.used
			for ; next <= used && len(ids) < memoryKeysChunk; next++ {
				if e := sh.list.slot(next); e.id != "" && e.live(now) {
					ids = append(ids, e.id)
				}
			}
			sh.mu.Unlock()
			for _, id := range ids {
				if !fn(id) {
					return nil
				}
			}
			if next > used {
				break
			}
		}
	}
	return nil
}
