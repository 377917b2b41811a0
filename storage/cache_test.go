package storage_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-sessions/steward/internal/fakeclock"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/storage/storagetest"
)

func TestCacheConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		return storage.NewCache(storage.NewMemory(storage.MemoryOptions{}), storage.CacheOptions{})
	})
}

// countingStore counts the loads that reach it and can be made to fail.
type countingStore struct {
	*storage.Memory
	loads atomic.Int64
	fail  atomic.Bool
}

var errBroken = errors.New("inner storage broken")

func (s *countingStore) Load(ctx context.Context, id string) ([]byte, error) {
	s.loads.Add(1)
	if s.fail.Load() {
		return nil, errBroken
	}
	return s.Memory.Load(ctx, id)
}

func (s *countingStore) Save(ctx context.Context, id string, data []byte, exp time.Time) error {
	if s.fail.Load() {
		return errBroken
	}
	return s.Memory.Save(ctx, id, data, exp)
}

type clock = fakeclock.Clock

func newCached(opts storage.CacheOptions) (*storage.Cache, *countingStore, *clock) {
	clk := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	inner := &countingStore{Memory: storage.NewMemory(storage.MemoryOptions{Now: clk.Now})}
	opts.Now = clk.Now
	return storage.NewCache(inner, opts), inner, clk
}

func TestCacheReadsFillAndTTL(t *testing.T) {
	ctx := t.Context()
	c, inner, clk := newCached(storage.CacheOptions{})
	_ = inner.Memory.Save(ctx, "a", []byte("1"), time.Time{}) // behind the cache's back
	for range 3 {
		if v, err := c.Load(ctx, "a"); err != nil || string(v) != "1" {
			t.Fatalf("Load = %q, %v", v, err)
		}
	}
	if n := inner.loads.Load(); n != 1 {
		t.Fatalf("inner loads = %d, want 1 (reads fill the cache)", n)
	}
	if st := c.Stats(); st.Hits != 2 || st.Misses != 1 || st.Len != 1 {
		t.Fatalf("stats = %+v", st)
	}
	// A change made behind the cache's back is seen after the TTL.
	_ = inner.Memory.Save(ctx, "a", []byte("2"), time.Time{})
	clk.Advance(59 * time.Second)
	if v, _ := c.Load(ctx, "a"); string(v) != "1" {
		t.Fatalf("within the TTL: %q", v)
	}
	clk.Advance(2 * time.Second)
	if v, _ := c.Load(ctx, "a"); string(v) != "2" {
		t.Fatalf("after the TTL: %q", v)
	}
	if n := inner.loads.Load(); n != 2 {
		t.Fatalf("inner loads = %d, want 2", n)
	}
}

func TestCacheWriteThroughAndInvalidate(t *testing.T) {
	ctx := t.Context()
	c, inner, clk := newCached(storage.CacheOptions{TTL: time.Hour})
	if err := c.Save(ctx, "a", []byte("v1"), clk.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if v, err := inner.Memory.Load(ctx, "a"); err != nil || string(v) != "v1" {
		t.Fatalf("inner after Save: %q, %v (write-through)", v, err)
	}
	if v, _ := c.Load(ctx, "a"); string(v) != "v1" || inner.loads.Load() != 0 {
		t.Fatalf("a written value must be served from the cache: %q, inner loads %d", v, inner.loads.Load())
	}
	// The value's own expiry bounds the cache too.
	clk.Advance(2 * time.Minute)
	if _, err := c.Load(ctx, "a"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("expired value: %v", err)
	}
	_ = c.Save(ctx, "b", []byte("x"), time.Time{})
	if err := c.Invalidate(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := inner.Memory.Load(ctx, "b"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("inner after Invalidate: %v", err)
	}
	if _, err := c.Load(ctx, "b"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("cache after Invalidate: %v", err)
	}
}

func TestCacheFailuresNotCached(t *testing.T) {
	ctx := t.Context()
	c, inner, _ := newCached(storage.CacheOptions{})
	if _, err := c.Load(ctx, "a"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal(err)
	}
	_ = inner.Memory.Save(ctx, "a", []byte("1"), time.Time{})
	if v, err := c.Load(ctx, "a"); err != nil || string(v) != "1" {
		t.Fatalf("a not-found must not be cached: %q, %v", v, err)
	}
	_ = inner.Memory.Save(ctx, "b", []byte("1"), time.Time{})
	inner.fail.Store(true)
	if _, err := c.Load(ctx, "b"); !errors.Is(err, errBroken) {
		t.Fatalf("failing inner: %v", err)
	}
	// A failed write leaves no cached value behind, not even the old one.
	if err := c.Save(ctx, "a", []byte("2"), time.Time{}); !errors.Is(err, errBroken) {
		t.Fatalf("failed Save: %v", err)
	}
	inner.fail.Store(false)
	if v, err := c.Load(ctx, "b"); err != nil || string(v) != "1" {
		t.Fatalf("an error must not be cached: %q, %v", v, err)
	}
	loads := inner.loads.Load()
	if v, _ := c.Load(ctx, "a"); string(v) != "1" || inner.loads.Load() != loads+1 {
		t.Fatalf("after a failed write the value must come from the inner storage: %q", v)
	}
}

func TestCacheSizeBound(t *testing.T) {
	ctx := t.Context()
	c, _, _ := newCached(storage.CacheOptions{MaxEntries: 160})
	for i := range 10_000 {
		_ = c.Save(ctx, "id"+strconv.Itoa(i), []byte("v"), time.Time{})
	}
	if n := c.Stats().Len; n > 160 {
		t.Fatalf("cache holds %d values, bound 160", n)
	}
	if v, err := c.Load(ctx, "id0"); err != nil || string(v) != "v" {
		t.Fatalf("evicted values are read from the inner storage: %q, %v", v, err)
	}
}

// TestCacheNeverStale: writers and readers of one ID race; a read never
// returns a value older than the last write completed before it started.
func TestCacheNeverStale(t *testing.T) {
	ctx := t.Context()
	// One value per shard: the readers' churn below keeps evicting "x", so
	// reads miss and race with the writes.
	c := storage.NewCache(storage.NewMemory(storage.MemoryOptions{}), storage.CacheOptions{MaxEntries: 16})
	var done atomic.Int64 // highest value whose Save returned
	var wg sync.WaitGroup
	var mu sync.Mutex // one writer at a time, in increasing order
	for range 4 {
		wg.Go(func() {
			for range 500 {
				mu.Lock()
				n := done.Load() + 1
				if err := c.Save(ctx, "x", []byte(strconv.FormatInt(n, 10)), time.Time{}); err != nil {
					t.Error(err)
				}
				done.Store(n)
				mu.Unlock()
			}
		})
	}
	for r := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				floor := done.Load()
				v, err := c.Load(ctx, "x")
				if errors.Is(err, storage.ErrNotFound) && floor == 0 {
					continue
				}
				n, _ := strconv.ParseInt(string(v), 10, 64)
				if err != nil || n < floor {
					t.Errorf("read %q (%v) after write %d completed", v, err, floor)
					return
				}
				_ = c.Save(ctx, "churn"+strconv.Itoa(r*2000+i), nil, time.Time{})
			}
		})
	}
	wg.Wait()
}

func TestCacheKeep(t *testing.T) {
	ctx := t.Context()
	t.Run("AfterWrite", func(t *testing.T) {
		c, inner, clk := newCached(storage.CacheOptions{})
		k := storage.KeeperOf(c)
		if k == nil {
			t.Fatal("KeeperOf(Cache) = nil")
		}
		exp := clk.Now().Add(time.Hour)
		v := []byte("v1")
		if err := c.Save(ctx, "a", v, exp); err != nil {
			t.Fatal(err)
		}
		clk.Advance(59 * time.Second)
		k.Keep("a", v, exp)
		clk.Advance(59 * time.Second) // 118 s after the write, 59 s after Keep
		if got, err := c.Load(ctx, "a"); err != nil || string(got) != "v1" {
			t.Fatalf("Load = %q, %v", got, err)
		}
		if n := inner.loads.Load(); n != 0 {
			t.Fatalf("inner loads = %d, want 0: Keep restarts the TTL", n)
		}
		clk.Advance(2 * time.Second) // the kept value's TTL is over too
		if got, err := c.Load(ctx, "a"); err != nil || string(got) != "v1" || inner.loads.Load() != 1 {
			t.Fatalf("Load after the TTL = %q, %v; inner loads %d, want 1", got, err, inner.loads.Load())
		}
	})
	t.Run("AfterRead", func(t *testing.T) {
		c, inner, clk := newCached(storage.CacheOptions{})
		_ = inner.Memory.Save(ctx, "a", []byte("r"), time.Time{})
		v, err := c.Load(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(61 * time.Second) // past the TTL, not read since
		c.Keep("a", []byte("r"), clk.Now().Add(time.Hour))
		clk.Advance(59 * time.Second)
		if got, err := c.Load(ctx, "a"); err != nil || string(got) != string(v) || inner.loads.Load() != 1 {
			t.Fatalf("Load = %q, %v; inner loads %d, want 1", got, err, inner.loads.Load())
		}
	})
	t.Run("NotExpired", func(t *testing.T) {
		c, inner, clk := newCached(storage.CacheOptions{})
		v := []byte("v1")
		_ = c.Save(ctx, "a", v, time.Time{})
		clk.Advance(10 * time.Second)
		c.Keep("a", v, clk.Now().Add(-time.Second)) // the record's expiry is past
		if _, err := c.Load(ctx, "a"); inner.loads.Load() != 1 {
			t.Fatalf("Load after keeping an expired value: %v, inner loads %d, want 1 (a miss)", err, inner.loads.Load())
		}
	})
	t.Run("NeverOlderThanTheLastWrite", func(t *testing.T) {
		c, inner, _ := newCached(storage.CacheOptions{MaxEntries: 16})
		wantFromInner := func(want string) {
			t.Helper()
			loads := inner.loads.Load()
			got, err := c.Load(ctx, "a")
			if want == "" {
				if !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("Load = %q, %v; want ErrNotFound", got, err)
				}
			} else if err != nil || string(got) != want {
				t.Fatalf("Load = %q, %v; want %q", got, err, want)
			}
			if inner.loads.Load() != loads+1 {
				t.Fatal("Load was served by the cache, want a miss")
			}
		}
		old := []byte("old")
		// Overwritten: the cache holds the newer value.
		_ = c.Save(ctx, "a", old, time.Time{})
		_ = c.Save(ctx, "a", []byte("new"), time.Time{})
		c.Keep("a", old, time.Time{})
		if got, _ := c.Load(ctx, "a"); string(got) != "new" {
			t.Fatalf("Load after Keep of an overwritten value = %q", got)
		}
		// Invalidated: nothing is cached, and Keep does not bring it back.
		_ = c.Delete(ctx, "a")
		c.Keep("a", []byte("new"), time.Time{})
		wantFromInner("")
		// Overwritten and then evicted: Keep cannot tell, so keeps nothing.
		_ = c.Save(ctx, "a", old, time.Time{})
		_ = c.Save(ctx, "a", []byte("newer"), time.Time{})
		for i := range 1000 { // one value per shard: "a" is evicted (but for 1 in 10^28)
			_ = c.Save(ctx, "churn"+strconv.Itoa(i), nil, time.Time{})
		}
		c.Keep("a", old, time.Time{})
		wantFromInner("newer")
		// A failed write: the inner state is unknown.
		_ = c.Save(ctx, "a", old, time.Time{})
		inner.fail.Store(true)
		_ = c.Save(ctx, "a", []byte("lost?"), time.Time{})
		inner.fail.Store(false)
		c.Keep("a", old, time.Time{})
		wantFromInner("old")
	})
	t.Run("InvalidID", func(t *testing.T) {
		c, _, _ := newCached(storage.CacheOptions{})
		c.Keep("../a", []byte("x"), time.Time{})
		if n := c.Stats().Len; n != 0 {
			t.Fatalf("Len = %d after Keep of an invalid ID", n)
		}
	})
}

// gatedStore holds each Save in the inner storage until the test lets it
// go, so that a test can run a Keep while a Save is under way.
type gatedStore struct {
	*countingStore
	entered, release chan struct{}
}

func (s gatedStore) Save(ctx context.Context, id string, data []byte, exp time.Time) error {
	s.entered <- struct{}{}
	<-s.release
	return s.countingStore.Save(ctx, id, data, exp)
}

// TestCacheKeepRacingSave runs a Keep of the old value in each phase of a
// Save of a new one: the new value is what the cache serves afterwards.
func TestCacheKeepRacingSave(t *testing.T) {
	ctx := t.Context()
	for _, phase := range []string{"BeforeSave", "DuringInnerSave", "AfterSave"} {
		t.Run(phase, func(t *testing.T) {
			clk := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			counting := &countingStore{Memory: storage.NewMemory(storage.MemoryOptions{Now: clk.Now})}
			gated := gatedStore{counting, make(chan struct{}), make(chan struct{})}
			c := storage.NewCache(gated, storage.CacheOptions{Now: clk.Now})
			old := []byte("old")
			go func() { <-gated.entered; gated.release <- struct{}{} }()
			_ = c.Save(ctx, "a", old, time.Time{})
			clk.Advance(59 * time.Second)

			if phase == "BeforeSave" {
				c.Keep("a", old, time.Time{})
			}
			done := make(chan error)
			go func() { done <- c.Save(ctx, "a", []byte("new"), time.Time{}) }()
			<-gated.entered
			if phase == "DuringInnerSave" {
				c.Keep("a", old, time.Time{})
			}
			gated.release <- struct{}{}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if phase == "AfterSave" {
				c.Keep("a", old, time.Time{})
			}
			clk.Advance(30 * time.Second)
			if got, err := c.Load(ctx, "a"); err != nil || string(got) != "new" {
				t.Fatalf("Load = %q, %v; want \"new\"", got, err)
			}
		})
	}
}

// TestCacheKeepNeverStale: writers, readers and keepers of one ID race; a
// Keep of a value read or written earlier never makes a read return a value
// older than the last write completed before the read started.
func TestCacheKeepNeverStale(t *testing.T) {
	ctx := t.Context()
	c := storage.NewCache(storage.NewMemory(storage.MemoryOptions{}), storage.CacheOptions{MaxEntries: 16})
	var done atomic.Int64 // highest value whose Save returned
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := int64(1); n <= 2000; n++ {
			if err := c.Save(ctx, "x", []byte(strconv.FormatInt(n, 10)), time.Time{}); err != nil {
				t.Error(err)
			}
			done.Store(n)
		}
	})
	for r := range 4 {
		wg.Go(func() {
			var held []byte // a value this goroutine read, kept later
			for i := range 2000 {
				if held != nil && i%3 == 0 {
					c.Keep("x", held, time.Time{})
				}
				floor := done.Load()
				v, err := c.Load(ctx, "x")
				if errors.Is(err, storage.ErrNotFound) && floor == 0 {
					continue
				}
				n, _ := strconv.ParseInt(string(v), 10, 64)
				if err != nil || n < floor {
					t.Errorf("read %q (%v) after write %d completed", v, err, floor)
					return
				}
				if i%5 == 0 {
					held = v
				}
				_ = c.Save(ctx, "churn"+strconv.Itoa(r*2000+i), nil, time.Time{})
			}
		})
	}
	wg.Wait()
}

func TestCacheKeeperOf(t *testing.T) {
	c := storage.NewCache(storage.NewMemory(storage.MemoryOptions{}), storage.CacheOptions{})
	if k := storage.KeeperOf(c); k != storage.Keeper(c) {
		t.Errorf("KeeperOf(Cache) = %v, want the Cache", k)
	}
	// In front of a storage that other instances write, a cache keeps
	// nothing: the engine reads past it anyway.
	vc := storage.NewCache(newVersionedMap(), storage.CacheOptions{})
	if k := storage.KeeperOf(vc); k != nil {
		t.Errorf("KeeperOf(Cache over a Versioned storage) = %v, want nil", k)
	}
	if storage.VersionedOf(vc) == nil {
		t.Error("VersionedOf(Cache over a Versioned storage) = nil")
	}
	ctx := t.Context()
	_ = vc.Save(ctx, "a", []byte("v"), time.Time{})
	vc.Keep("a", []byte("v"), time.Time{}) // does nothing, and does not fail
	for _, s := range []any{storage.NewMemory(storage.MemoryOptions{}), storage.FromBytes(&mapStorage{})} {
		if k := storage.KeeperOf(s); k != nil {
			t.Errorf("KeeperOf(%T) = %v, want nil", s, k)
		}
	}
	// The adapters report what they wrap.
	kb := &keepingBytes{}
	if k := storage.KeeperOf(storage.FromBytes(kb)); k != storage.Keeper(kb) {
		t.Errorf("KeeperOf(FromBytes(keeper)) = %v, want the keeper", k)
	}
	ks := keepingStream{Storage: storage.NewMemory(storage.MemoryOptions{})}
	if k := storage.KeeperOf(storage.AsBytes(ks)); k != storage.Keeper(ks) {
		t.Errorf("KeeperOf(AsBytes(keeper)) = %v, want the keeper", k)
	}
}

// keepingBytes is a BytesStorage, not a Storage, with a Keep method.
type keepingBytes struct{ mapStorage }

func (*keepingBytes) Keep(string, []byte, time.Time) {}

// keepingStream is a Storage, not a BytesStorage, with a Keep method.
type keepingStream struct{ storage.Storage }

func (keepingStream) Keep(string, []byte, time.Time) {}
