package storage_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/storage/storagetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// mapStorage is about the smallest BytesStorage there is: a map behind a
// mutex. storage.FromBytes turns it into a full Storage.
type mapStorage struct {
	mu     sync.Mutex
	values map[string]mapValue
}

type mapValue struct {
	data    []byte
	expires time.Time
}

func (m *mapStorage) Load(_ context.Context, id string) ([]byte, error) {
	if !storage.ValidID(id) {
		return nil, storage.ErrInvalidID
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.values[id]
	if !ok || (!v.expires.IsZero() && time.Now().After(v.expires)) {
		delete(m.values, id)
		return nil, storage.ErrNotFound
	}
	return v.data, nil
}

func (m *mapStorage) Save(_ context.Context, id string, data []byte, expires time.Time) error {
	if !storage.ValidID(id) {
		return storage.ErrInvalidID
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.values[id] = mapValue{data, expires}
	return nil
}

func (m *mapStorage) Delete(_ context.Context, id string) error {
	if !storage.ValidID(id) {
		return storage.ErrInvalidID
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.values, id)
	return nil
}

func TestMemoryConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		return storage.NewMemory(storage.MemoryOptions{})
	})
}

func TestSmallMemoryConformance(t *testing.T) {
	// A bound under 512 makes one exact LRU shard; 64 entries hold every
	// value a subtest writes.
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		return storage.NewMemory(storage.MemoryOptions{MaxEntries: 64})
	})
}

func TestFromBytesConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		return storage.FromBytes(&mapStorage{values: make(map[string]mapValue)})
	})
}

// save stores data under id and fails t on error.
func save(t *testing.T, m *storage.Memory, id string, data []byte, expires time.Time) {
	t.Helper()
	if err := m.Save(t.Context(), id, data, expires); err != nil {
		t.Fatalf("Save(%q): %v", id, err)
	}
}

// wantLoad fails t unless id loads as want.
func wantLoad(t *testing.T, m *storage.Memory, id, want string) {
	t.Helper()
	data, err := m.Load(t.Context(), id)
	if err != nil || string(data) != want {
		t.Fatalf("Load(%q) = %q, %v; want %q", id, data, err, want)
	}
}

// wantMissing fails t unless id loads as ErrNotFound.
func wantMissing(t *testing.T, m *storage.Memory, id string) {
	t.Helper()
	if data, err := m.Load(t.Context(), id); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Load(%q) = %q, %v; want storage.ErrNotFound", id, data, err)
	}
}

// wantLen fails t unless m holds n entries.
func wantLen(t *testing.T, m *storage.Memory, n int) {
	t.Helper()
	if got := m.Len(); got != n {
		t.Fatalf("Len() = %d, want %d", got, n)
	}
}

func TestMemorySizeBound(t *testing.T) {
	for _, bound := range []int{1, 100, 3000} {
		t.Run(fmt.Sprint(bound), func(t *testing.T) {
			m := storage.NewMemory(storage.MemoryOptions{MaxEntries: bound})
			n := 4 * bound
			for i := range n {
				save(t, m, fmt.Sprintf("id-%d", i), []byte("v"), time.Time{})
				if got := m.Len(); got > bound {
					t.Fatalf("after %d writes Len() = %d, more than MaxEntries %d", i+1, got, bound)
				}
			}
			// The shard capacities add up to the bound, and 4×bound
			// random IDs fill every shard.
			wantLen(t, m, bound)
			wantLoad(t, m, fmt.Sprintf("id-%d", n-1), "v")
		})
	}
	t.Run("OneShardKeepsNewest", func(t *testing.T) {
		m := storage.NewMemory(storage.MemoryOptions{MaxEntries: 100})
		for i := range 1000 {
			save(t, m, fmt.Sprintf("id-%d", i), []byte("v"), time.Time{})
		}
		for i := range 1000 {
			if i < 900 {
				wantMissing(t, m, fmt.Sprintf("id-%d", i))
			} else {
				wantLoad(t, m, fmt.Sprintf("id-%d", i), "v")
			}
		}
	})
}

func TestMemoryLRU(t *testing.T) {
	ctx := t.Context()
	m := storage.NewMemory(storage.MemoryOptions{MaxEntries: 3})
	for _, id := range []string{"a", "b", "c"} {
		save(t, m, id, []byte(id), time.Time{})
	}
	// Use order, oldest first: a b c. A Load makes a the newest: b c a.
	wantLoad(t, m, "a", "a")
	save(t, m, "d", []byte("d"), time.Time{}) // evicts b: c a d
	wantMissing(t, m, "b")
	wantLen(t, m, 3)

	// A stream Read counts as use: a d c.
	if err := m.Read(ctx, "c", func(io.Reader) error { return nil }); err != nil {
		t.Fatal(err)
	}
	save(t, m, "e", []byte("e"), time.Time{}) // evicts a: d c e
	wantMissing(t, m, "a")

	// An overwrite counts as use: c e d.
	save(t, m, "d", []byte("d2"), time.Time{})
	err := m.Write(ctx, "f", time.Time{}, func(w io.Writer) error { // evicts c: e d f
		_, err := io.WriteString(w, "f")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	wantMissing(t, m, "c")
	wantLoad(t, m, "d", "d2")
	wantLoad(t, m, "e", "e")
	wantLoad(t, m, "f", "f")
	wantLen(t, m, 3)

	// Invalidate frees a slot without evicting anything.
	if err := m.Invalidate(ctx, "e"); err != nil {
		t.Fatal(err)
	}
	save(t, m, "g", []byte("g"), time.Time{})
	wantLoad(t, m, "d", "d2")
	wantLoad(t, m, "f", "f")
	wantLen(t, m, 3)
}

// fakeClock is a settable clock for MemoryOptions.Now.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) Advance(d time.Duration) { c.now = c.now.Add(d) }

func TestMemoryExpiry(t *testing.T) {
	ctx := t.Context()
	clock := &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)}
	m := storage.NewMemory(storage.MemoryOptions{MaxEntries: 100, Now: clock.Now})

	expires := clock.now.Add(time.Minute)
	save(t, m, "short", []byte("short"), expires)
	save(t, m, "forever", []byte("forever"), time.Time{})

	clock.Advance(30 * time.Second)
	wantLoad(t, m, "short", "short")
	clock.now = expires // live up to and including the expiry instant
	wantLoad(t, m, "short", "short")
	clock.Advance(time.Nanosecond)
	wantLen(t, m, 2)
	err := m.Read(ctx, "short", func(io.Reader) error {
		t.Error("Read called fn for an expired value")
		return nil
	})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Read of an expired value = %v, want storage.ErrNotFound", err)
	}
	wantLen(t, m, 1) // the read removed it
	wantMissing(t, m, "short")

	clock.Advance(1000 * time.Hour)
	wantLoad(t, m, "forever", "forever")

	// A value written already expired is not stored, and removes the
	// previous one.
	save(t, m, "forever", []byte("stale"), clock.now.Add(-time.Second))
	wantLen(t, m, 0)
	wantMissing(t, m, "forever")
}

func TestMemoryExpiredRemovedByWrites(t *testing.T) {
	clock := &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)}
	m := storage.NewMemory(storage.MemoryOptions{MaxEntries: 100, Now: clock.Now})
	expires := clock.now.Add(time.Minute)
	for _, id := range []string{"e1", "e2", "e3"} {
		save(t, m, id, []byte(id), expires)
	}
	save(t, m, "live", []byte("live"), time.Time{})
	// Use order, oldest first: e1 e2 e3 live.

	clock.Advance(2 * time.Minute)
	wantLen(t, m, 4) // nothing removes expired values on its own

	save(t, m, "x", nil, time.Time{}) // removes e1 and e2: e3 live x
	wantLen(t, m, 3)
	save(t, m, "y", nil, time.Time{}) // removes e3, stops at live: live x y
	wantLen(t, m, 3)
	save(t, m, "z", nil, time.Time{}) // nothing to remove
	wantLen(t, m, 4)
	for _, id := range []string{"e1", "e2", "e3"} {
		wantMissing(t, m, id)
	}
	wantLoad(t, m, "live", "live")
}

func TestMemoryExpiryExtremes(t *testing.T) {
	m := storage.NewMemory(storage.MemoryOptions{})
	tests := []struct {
		name    string
		expires time.Time
		live    bool
	}{
		{"Zero", time.Time{}, true},
		{"Epoch", time.Unix(0, 0), false},
		{"BeforeEpoch", time.Unix(-1, 0), false},
		{"Year1", time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), false},
		{"Year1000", time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"Year3000", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"Year292277026596", time.Unix(1<<63-1, 0), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			save(t, m, tt.name, []byte("v"), tt.expires)
			if tt.live {
				wantLoad(t, m, tt.name, "v")
			} else {
				wantMissing(t, m, tt.name)
			}
		})
	}
}

func TestMemoryOwnership(t *testing.T) {
	ctx := t.Context()
	m := storage.NewMemory(storage.MemoryOptions{})

	// Save keeps the slice it is given, and Load shares it.
	data := []byte("saved")
	save(t, m, "saved", data, time.Time{})
	got1, err := m.Load(ctx, "saved")
	if err != nil {
		t.Fatal(err)
	}
	got2, err := m.Load(ctx, "saved")
	if err != nil {
		t.Fatal(err)
	}
	if &got1[0] != &data[0] || &got2[0] != &data[0] {
		t.Error("Load did not return the slice given to Save")
	}

	// Write copies what fn writes, so the writer's buffer may be reused.
	buf := []byte("streamed")
	err = m.Write(ctx, "streamed", time.Time{}, func(w io.Writer) error {
		_, err := w.Write(buf)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXXXXX")
	wantLoad(t, m, "streamed", "streamed")

	// A Memory is its own byte view and stream view.
	if storage.AsBytes(m) != storage.BytesStorage(m) {
		t.Error("AsBytes(m) is not m")
	}
	if storage.FromBytes(m) != storage.Storage(m) {
		t.Error("FromBytes(m) is not m")
	}
}

func TestMemoryInvalidIDTouchesNothing(t *testing.T) {
	ctx := t.Context()
	m := storage.NewMemory(storage.MemoryOptions{MaxEntries: 1})
	save(t, m, "kept", []byte("kept"), time.Time{})
	for _, id := range []string{"", "../kept", "kept\x00", "kept/"} {
		if err := m.Save(ctx, id, []byte("x"), time.Time{}); !errors.Is(err, storage.ErrInvalidID) {
			t.Errorf("Save(%q) = %v, want storage.ErrInvalidID", id, err)
		}
		if err := m.Delete(ctx, id); !errors.Is(err, storage.ErrInvalidID) {
			t.Errorf("Delete(%q) = %v, want storage.ErrInvalidID", id, err)
		}
	}
	// The full one-entry Memory evicted nothing.
	wantLoad(t, m, "kept", "kept")
	wantLen(t, m, 1)
}

func TestMemoryDefaults(t *testing.T) {
	for _, opts := range []storage.MemoryOptions{{}, {MaxEntries: -1}} {
		m := storage.NewMemory(opts)
		save(t, m, "id", []byte("v"), time.Now().Add(time.Hour))
		wantLoad(t, m, "id", "v")
		wantLen(t, m, 1)
	}
}

func ExampleNewMemory() {
	ctx := context.Background()
	m := storage.NewMemory(storage.MemoryOptions{MaxEntries: 10_000})

	// The engine streams values in and out.
	err := m.Write(ctx, "session-1", time.Now().Add(time.Hour), func(w io.Writer) error {
		_, err := fmt.Fprint(w, "cart=3")
		return err
	})
	fmt.Println("write:", err)
	err = m.Read(ctx, "session-1", func(r io.Reader) error {
		_, err := io.Copy(os.Stdout, r)
		fmt.Println()
		return err
	})
	fmt.Println("read:", err)

	// Invalidated, expired and unknown values read as ErrNotFound.
	_ = m.Invalidate(ctx, "session-1")
	_, err = m.Load(ctx, "session-1")
	fmt.Println("not found:", errors.Is(err, storage.ErrNotFound))

	// IDs outside the engine's alphabet are refused.
	_, err = m.Load(ctx, "../etc/passwd")
	fmt.Println("invalid:", errors.Is(err, storage.ErrInvalidID))
	// Output:
	// write: <nil>
	// cart=3
	// read: <nil>
	// not found: true
	// invalid: true
}
