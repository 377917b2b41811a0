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
