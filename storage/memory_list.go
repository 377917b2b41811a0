package storage

import (
	"hash/maphash"
	"strings"
)

// memoryList is the LRU of one Memory shard, laid out to cost little per
// value. The entries live in fixed-size pages of slots, linked in use order
// by slot number instead of by pointer; an open-addressing hash table of
// 8-byte buckets maps an ID to its slot. A stored value costs one 56-byte
// slot, a bucket or two and one copy of its ID. Pages never move, so
// growing the list copies no entry, and the slots freed by removals are
// reused before new ones are taken. Pages and table are kept once
// allocated: a shard holds on to the room of the most values it ever held
// at once.
//
// Slot 0 is root, the head of the circular use-order list: root.next is the
// most recently used entry, root.prev the least recently used one. Slot
// i > 0 is element i-1 of the pages, which are allocated as the list grows.
// Free slots are chained through next, starting at free; 0 ends the chain.
//
// The table uses linear probing with backward-shift deletion, so it has no
// tombstones. A bucket holds the upper 32 bits of the ID's hash (the lower
// bits choose the shard), from which it finds its home bucket and which
// spares reading slots whose hash differs; slot 0 marks an empty bucket.
//
// A memoryList is not safe for concurrent use; its shard's mutex guards it.
type memoryList struct {
	seed     maphash.Seed   // the Memory's, for hashing the IDs of evicted slots
	table    []memoryBucket // len is a power of two, at least memoryMinTable
	root     memorySlot
	pages    [][]memorySlot // each memoryPageLen slots, or capacity if less
	free     uint32         // first free slot, 0 if none
	used     uint32         // slots ever taken from the pages
	len      int            // entries in the list
	capacity int            // the most entries the list holds
}

// memorySlot is one entry of a memoryList.
type memorySlot struct {
	id         string // "" in a free slot
	data       []byte
	expires    int64  // Unix nanoseconds; 0: never (see expiryNanos)
	prev, next uint32 // neighbours in use order, or next free slot
}

// memoryBucket is one bucket of a memoryList's table.
type memoryBucket struct {
	hash uint32 // upper half of the ID's hash
	slot uint32 // 0: empty
}

const (
	memoryPageBits = 8
	memoryPageLen  = 1 << memoryPageBits // slots per page: 256 × 56 bytes
	memoryMinTable = 8
	// memoryMaxListLen is the most entries one memoryList holds: its
	// table, at most 4/3 × 2 as long, must be indexable by a uint32 hash.
	memoryMaxListLen = 1<<31 - 1
)

// live reports whether e has not expired at now (Unix nanoseconds). A value
// expires after its expiry instant, not at it.
func (e *memorySlot) live(now int64) bool {
	return e.expires == 0 || now <= e.expires
}

// init makes l an empty list of at most capacity entries (1 <= capacity <=
// memoryMaxListLen), for IDs hashed with seed.
func (l *memoryList) init(capacity int, seed maphash.Seed) {
	*l = memoryList{seed: seed, table: make([]memoryBucket, memoryMinTable), capacity: capacity}
}

// slot returns slot i.
func (l *memoryList) slot(i uint32) *memorySlot {
	if i == 0 {
		return &l.root
	}
	i--
	return &l.pages[i>>memoryPageBits][i&(memoryPageLen-1)]
}

// find returns the bucket index and slot number of id, whose hash is h, or
// the index of the empty bucket that ends its probe sequence and 0.
func (l *memoryList) find(id string, h uint64) (bucket int, slot uint32) {
	tag := uint32(h >> 32)
	mask := len(l.table) - 1
	for j := int(tag) & mask; ; j = (j + 1) & mask {
		b := l.table[j]
		if b.slot == 0 || b.hash == tag && l.slot(b.slot).id == id {
			return j, b.slot
		}
	}
}

// lookup returns the slot number of id, whose hash is h, or 0.
func (l *memoryList) lookup(id string, h uint64) uint32 {
	_, i := l.find(id, h)
	return i
}

// oldest returns the slot number of the least recently used entry, or 0
// when the list is empty.
func (l *memoryList) oldest() uint32 {
	return l.root.prev
}

// unlink takes slot i out of the use order.
func (l *memoryList) unlink(i uint32) {
	e := l.slot(i)
	l.slot(e.prev).next = e.next
	l.slot(e.next).prev = e.prev
}

// pushFront makes slot i the most recently used.
func (l *memoryList) pushFront(i uint32) {
	e := l.slot(i)
	e.prev, e.next = 0, l.root.next
	l.slot(l.root.next).prev = i
	l.root.next = i
}

// touch marks slot i as just used.
func (l *memoryList) touch(i uint32) {
	if l.root.next != i {
		l.unlink(i)
		l.pushFront(i)
	}
}

// remove deletes the entry in slot i and frees the slot.
func (l *memoryList) remove(i uint32) {
	e := l.slot(i)
	j, _ := l.find(e.id, maphash.String(l.seed, e.id))
	l.deleteBucket(j)
	l.unlink(i)
	*e = memorySlot{next: l.free} // drop the references for the collector
	l.free = i
	l.len--
}

// deleteBucket empties bucket j and moves later buckets of its cluster
// back, so that every entry stays reachable from its home bucket.
func (l *memoryList) deleteBucket(j int) {
	mask := len(l.table) - 1
	for k := j; ; {
		l.table[j] = memoryBucket{}
		for {
			k = (k + 1) & mask
			b := l.table[k]
			if b.slot == 0 {
				return
			}
			// b may fill the hole at j unless its home lies cyclically
			// in (j, k], after the hole.
			home := int(b.hash) & mask
			if (k-home)&mask >= (k-j)&mask {
				l.table[j] = b
				j = k
				break
			}
		}
	}
}

// put stores data under id, whose hash is h, as the most recently used
// entry, replacing the entry of id or, when the list is full, the least
// recently used one.
func (l *memoryList) put(id string, h uint64, data []byte, expires int64) {
	j, i := l.find(id, h)
	if i != 0 {
		e := l.slot(i)
		e.data, e.expires = data, expires
		l.touch(i)
		return
	}
	if l.len >= l.capacity {
		l.remove(l.oldest())
		j, _ = l.find(id, h) // the removal may have moved the buckets
	} else if (l.len+1)*4 > len(l.table)*3 {
		l.grow()
		j, _ = l.find(id, h)
	}
	i = l.alloc()
	// The ID outlives the call: copy it, so that an id sliced from a
	// larger string (a cookie header) does not keep that alive.
	*l.slot(i) = memorySlot{id: strings.Clone(id), data: data, expires: expires}
	l.table[j] = memoryBucket{hash: uint32(h >> 32), slot: i}
	l.pushFront(i)
	l.len++
}

// grow doubles the table, keeping the load at most three quarters.
func (l *memoryList) grow() {
	old := l.table
	l.table = make([]memoryBucket, 2*len(old))
	mask := len(l.table) - 1
	for _, b := range old {
		if b.slot == 0 {
			continue
		}
		j := int(b.hash) & mask
		for l.table[j].slot != 0 {
			j = (j + 1) & mask
		}
		l.table[j] = b
	}
}

// alloc returns a free slot, taking a new one (and a new page) when none
// was freed. The list must not be full.
func (l *memoryList) alloc() uint32 {
	if i := l.free; i != 0 {
		l.free = l.slot(i).next
		return i
	}
	if int(l.used>>memoryPageBits) == len(l.pages) {
		// A list of fewer than memoryPageLen entries never needs more
		// slots than its capacity.
		l.pages = append(l.pages, make([]memorySlot, min(memoryPageLen, l.capacity)))
	}
	l.used++
	return l.used
}
