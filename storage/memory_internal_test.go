package storage

import (
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"
)

func TestMemoryShardPadding(t *testing.T) {
	if n := unsafe.Sizeof(memoryShard{}); n%64 != 0 {
		t.Fatalf("unsafe.Sizeof(memoryShard{}) = %d, not a multiple of 64", n)
	}
	if n := unsafe.Sizeof(memorySlot{}); n != 56 {
		t.Errorf("unsafe.Sizeof(memorySlot{}) = %d, want 56 as the comments say", n)
	}
}

// checkList fails t unless l holds exactly the IDs of want, most recently
// used first, each reachable through the table, and the table holds no
// other bucket.
func checkList(t *testing.T, l *memoryList, want []string) {
	t.Helper()
	var got []string
	prev := uint32(0)
	for i := l.root.next; i != 0; i = l.slot(i).next {
		if l.slot(i).prev != prev {
			t.Fatalf("slot %d: prev = %d, want %d", i, l.slot(i).prev, prev)
		}
		prev = i
		got = append(got, l.slot(i).id)
		if len(got) > len(want) {
			break
		}
	}
	if l.root.prev != prev {
		t.Fatalf("root.prev = %d, want %d", l.root.prev, prev)
	}
	if !slices.Equal(got, want) || l.len != len(want) {
		t.Fatalf("list (len %d) = %q, want %q", l.len, got, want)
	}
	buckets := 0
	for _, b := range l.table {
		if b.slot != 0 {
			buckets++
		}
	}
	if buckets != len(want) {
		t.Fatalf("%d buckets in use for %d entries", buckets, len(want))
	}
	if len(l.table)*3 < l.len*4 {
		t.Fatalf("table of %d buckets for %d entries", len(l.table), l.len)
	}
	for _, id := range want {
		i := l.lookup(id, maphash.String(l.seed, id))
		if i == 0 || l.slot(i).id != id {
			t.Fatalf("lookup(%q) = slot %d", id, i)
		}
	}
}

// TestMemoryListModel runs random operations on lists of several sizes and
// compares them with a plain LRU model after each.
func TestMemoryListModel(t *testing.T) {
	for _, capacity := range []int{1, 2, 7, 100, 300, 1000} {
		t.Run(fmt.Sprint(capacity), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(capacity)))
			var l memoryList
			l.init(capacity, maphash.MakeSeed())
			var model []string // most recently used first
			ids := make([]string, 3*capacity+5)
			for i := range ids {
				ids[i] = fmt.Sprintf("id-%d", i)
			}
			for op := range 20 * len(ids) {
				id := ids[rng.IntN(len(ids))]
				h := maphash.String(l.seed, id)
				at := slices.Index(model, id)
				switch rng.IntN(3) {
				case 0: // put
					l.put(id, h, []byte(id), 0)
					if at >= 0 {
						model = slices.Delete(model, at, at+1)
					} else if len(model) == capacity {
						model = model[:len(model)-1]
					}
					model = slices.Insert(model, 0, id)
				case 1: // lookup and touch
					i := l.lookup(id, h)
					if (i != 0) != (at >= 0) {
						t.Fatalf("op %d: lookup(%q) = %d, model has it at %d", op, id, i, at)
					}
					if i != 0 {
						if string(l.slot(i).data) != id {
							t.Fatalf("op %d: %q holds %q", op, id, l.slot(i).data)
						}
						l.touch(i)
						model = slices.Insert(slices.Delete(model, at, at+1), 0, id)
					}
				case 2: // remove
					if i := l.lookup(id, h); i != 0 {
						l.remove(i)
						model = slices.Delete(model, at, at+1)
					}
				}
				if capacity <= 100 || op%101 == 0 {
					checkList(t, &l, model)
				}
			}
			checkList(t, &l, model)
			if l.used > uint32(capacity) {
				t.Errorf("%d slots taken for a capacity of %d", l.used, capacity)
			}
		})
	}
}

// TestMemoryListSameHash stores IDs whose hashes agree in the 32 bits the
// table keeps, so that only the ID comparison tells them apart.
func TestMemoryListSameHash(t *testing.T) {
	var l memoryList
	l.init(100, maphash.MakeSeed())
	seen := make(map[uint32]string)
	var a, b string
	for i := 0; a == ""; i++ {
		id := fmt.Sprint(i)
		tag := uint32(maphash.String(l.seed, id) >> 32)
		if other, ok := seen[tag]; ok {
			a, b = other, id
		}
		seen[tag] = id
	}
	ha, hb := maphash.String(l.seed, a), maphash.String(l.seed, b)
	l.put(a, ha, []byte("a"), 0)
	if i := l.lookup(b, hb); i != 0 {
		t.Fatalf("lookup(%q) found %q's slot", b, a)
	}
	l.put(b, hb, []byte("b"), 0)
	checkList(t, &l, []string{b, a})
	l.remove(l.lookup(a, ha))
	checkList(t, &l, []string{b})
	if i := l.lookup(b, hb); string(l.slot(i).data) != "b" {
		t.Fatalf("%q holds %q", b, l.slot(i).data)
	}
}
