package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

// versionedStore is a storage.Versioned shared by several engines in one
// process, standing in for Redis in the engine's own tests (the Redis
// storage runs the same checks against a real server).
type versionedStore struct {
	*mapStore
	mu       sync.Mutex
	versions map[string]uint64
	next     atomic.Uint64
	// conflictAlways makes every conditional write fail.
	conflictAlways atomic.Bool
}

func newVersionedStore() *versionedStore {
	return &versionedStore{mapStore: newMapStore(), versions: map[string]uint64{}}
}

func (s *versionedStore) LoadVersioned(ctx context.Context, id string) ([]byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := s.mapStore.Load(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	return data, s.versions[id], nil
}

func (s *versionedStore) SaveIf(ctx context.Context, id string, data []byte, exp time.Time, version uint64) (uint64, []byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.versions[id]
	if cur != version || s.conflictAlways.Load() {
		d, _ := s.mapStore.Load(ctx, id)
		return 0, d, cur, fmt.Errorf("%w: %s", storage.ErrConflict, id)
	}
	nv := s.next.Add(1)
	_ = s.mapStore.Save(ctx, id, data, exp)
	s.versions[id] = nv
	return nv, nil, 0, nil
}

func (s *versionedStore) Save(ctx context.Context, id string, data []byte, exp time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.versions[id] = s.next.Add(1)
	return s.mapStore.Save(ctx, id, data, exp)
}

func (s *versionedStore) Delete(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.versions, id)
	return s.mapStore.Delete(ctx, id)
}

// TestInstancesShareOneSession: three engines on one versioned storage,
// 64 clients × 200 increments of one session spread across them: exact.
func TestInstancesShareOneSession(t *testing.T) {
	store := newVersionedStore()
	kinds := make([]*engine.RawKind, 3)
	for i := range kinds {
		kinds[i] = register(t, newEngine(t, engine.Options{}), storage.FromBytes(store), engine.KindOptions{})
	}
	id, err := kinds[0].Create(t.Context(), []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	const clients, each = 64, 200
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				if _, err := kinds[(c+i)%3].Update(t.Context(), id, incr); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i, k := range kinds {
		if got := count(t, k, id); got != clients*each {
			t.Fatalf("instance %d reads %d, want %d", i, got, clients*each)
		}
	}
}

// TestInstancesSeeEachOthersWrites: a read on one instance returns the
// last write acknowledged by another, and invalidation and renewal reach
// across instances.
func TestInstancesSeeEachOthersWrites(t *testing.T) {
	store := newVersionedStore()
	a := register(t, newEngine(t, engine.Options{}), storage.FromBytes(store), engine.KindOptions{})
	b := register(t, newEngine(t, engine.Options{}), storage.FromBytes(store), engine.KindOptions{})
	id, _ := a.Create(t.Context(), []byte("1"))
	for i := 2; i < 20; i++ {
		w, r := a, b
		if i%2 == 0 {
			w, r = b, a
		}
		if err := w.Store(t.Context(), id, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
		if got := count(t, r, id); got != i {
			t.Fatalf("the other instance reads %d after %d was acknowledged", got, i)
		}
	}
	renewed, err := a.Renew(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Load(t.Context(), id); !errors.Is(err, engine.ErrRenewed) { // on the other instance too
		t.Fatalf("old ID on the other instance: %v, want ErrRenewed", err)
	}
	if got := count(t, b, renewed); got != 19 {
		t.Fatalf("new ID on the other instance: %d", got)
	}
	if err := b.Invalidate(t.Context(), renewed); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Load(t.Context(), renewed); !errors.Is(err, engine.ErrNoSession) {
		t.Fatalf("invalidated on one instance, still read on the other: %v", err)
	}
}

func TestConflictGivesUp(t *testing.T) {
	store := newVersionedStore()
	k := register(t, newEngine(t, engine.Options{}), storage.FromBytes(store), engine.KindOptions{})
	id, _ := k.Create(t.Context(), []byte("1"))
	store.conflictAlways.Store(true)
	calls := 0
	_, err := k.Update(t.Context(), id, func(old []byte) ([]byte, error) { calls++; return incr(old) })
	if !errors.Is(err, engine.ErrConflict) || calls != 128 {
		t.Fatalf("Update under endless conflicts: %v after %d calls", err, calls)
	}
	store.conflictAlways.Store(false)
	if _, err := k.Update(t.Context(), id, incr); err != nil {
		t.Fatal(err)
	}
	if got := count(t, k, id); got != 2 {
		t.Fatalf("count = %d", got)
	}
}

// TestInstancesGetOrSetFresh: an update that writes nothing (GetOrSet of
// an existing session) answers with the value another instance wrote last.
func TestInstancesGetOrSetFresh(t *testing.T) {
	store := newVersionedStore()
	kinds := make([]*engine.Kind[counter], 2)
	for i := range kinds {
		k, err := engine.Register[counter](newEngine(t, engine.Options{}), "S", engine.KindOptions{Storage: storage.FromBytes(store)})
		if err != nil {
			t.Fatal(err)
		}
		kinds[i] = k
	}
	b := kinds[0].Raw().Bind("")
	ctx0 := engine.WithBindings(t.Context(), b)
	if err := kinds[0].Set(ctx0, counter{N: 1}); err != nil {
		t.Fatal(err)
	}
	id := kinds[0].ID(ctx0)
	ctx1 := engine.WithBindings(t.Context(), kinds[1].Raw().Bind(id))
	if _, err := kinds[1].Update(ctx1, func(c *counter) error { c.N = 2; return nil }); err != nil {
		t.Fatal(err)
	}
	v, err := kinds[0].GetOrSet(engine.WithBindings(t.Context(), kinds[0].Raw().Bind(id)), func() counter { return counter{N: -1} })
	if err != nil || v.N != 2 {
		t.Fatalf("GetOrSet on the first instance = %+v, %v; want the other instance's 2", v, err)
	}
}
