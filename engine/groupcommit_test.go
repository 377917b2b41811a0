package engine_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/internal/record"
	"github.com/steward-sessions/steward/storage"
)

// writeStore is a mapStore that counts its writes and, when armed, holds
// the next write at a gate and fails the one after it, recording what that
// failed write carried.
type writeStore struct {
	*mapStore
	saves atomic.Int64

	mu     sync.Mutex
	hold   chan struct{} // the next Save waits for it to close
	held   chan struct{} // closed when a Save is held
	fail   bool          // the Save after the held one fails
	failed []byte        // the record the failed Save carried
}

func newWriteStore() *writeStore { return &writeStore{mapStore: newMapStore()} }

func (s *writeStore) Save(ctx context.Context, id string, data []byte, exp time.Time) error {
	s.saves.Add(1)
	s.mu.Lock()
	hold, held, fail := s.hold, s.held, s.fail
	switch {
	case hold != nil:
		s.hold = nil
	case fail:
		s.fail, s.failed = false, append([]byte(nil), data...)
	}
	s.mu.Unlock()
	if hold != nil {
		close(held)
		<-hold
	} else if fail {
		return errDown
	}
	return s.mapStore.Save(ctx, id, data, exp)
}

// arm makes the next Save wait until release is called, and the one after
// it fail. It returns a channel closed once a Save is held.
func (s *writeStore) arm() (held <-chan struct{}, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold, s.held, s.fail = make(chan struct{}), make(chan struct{}), true
	hold := s.hold
	return s.held, func() { close(hold) }
}

// TestGroupCommitExact: 64 goroutines x 1,000 increments of one session
// on a storage that may block. Every increment is kept, each sees its
// predecessor's result (every answer is distinct), and the updates that
// waited together were written together: fewer writes than updates.
func TestGroupCommitExact(t *testing.T) {
	const goroutines = 64
	perG := 1000
	if testing.Short() {
		perG = 100
	}
	store := newWriteStore()
	eng := newEngine(t, engine.Options{})
	k := register(t, eng, storage.FromBytes(store), engine.KindOptions{})
	id, err := k.Create(t.Context(), []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	before := store.saves.Load()
	seen := make([]atomic.Bool, goroutines*perG+1)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perG {
				v, err := k.Update(context.Background(), id, incr)
				if err != nil {
					t.Errorf("Update: %v", err)
					return
				}
				n, _ := strconv.Atoi(string(v))
				if n < 1 || n >= len(seen) || seen[n].Swap(true) {
					t.Errorf("answer %d: out of range or given twice", n)
					return
				}
			}
		}()
	}
	wg.Wait()
	updates := int64(goroutines * perG)
	if got := count(t, k, id); got != int(updates) {
		t.Fatalf("count %d, want %d", got, updates)
	}
	writes := store.saves.Load() - before
	t.Logf("%d updates, %d writes (%.1f updates per write)", updates, writes, float64(updates)/float64(writes))
	if writes >= updates {
		t.Fatalf("%d writes for %d updates: updates that waited together were not written together", writes, updates)
	}
}

// TestGroupCommitFailedWriteAppliesNone: updates queue behind a held
// write; their batch's write fails. Every update of that batch fails and
// none of it is applied; the updates after it apply.
func TestGroupCommitFailedWriteAppliesNone(t *testing.T) {
	for round := 1; ; round++ {
		if failedBatch(t) >= 2 {
			return
		}
		if round == 5 {
			t.Fatal("no batch of 2 or more formed behind a held write in 5 rounds")
		}
	}
}

// failedBatch runs one round and returns how many updates the failed
// write carried.
func failedBatch(t *testing.T) int {
	t.Helper()
	const queued = 8
	store := newWriteStore()
	eng := newEngine(t, engine.Options{})
	k := register(t, eng, storage.FromBytes(store), engine.KindOptions{})
	id, err := k.Create(t.Context(), []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	held, release := store.arm()
	first := make(chan error, 1)
	go func() {
		_, err := k.Update(context.Background(), id, incr)
		first <- err
	}()
	<-held
	var ok, failed atomic.Int64
	var wg, started sync.WaitGroup
	for range queued {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			_, err := k.Update(context.Background(), id, incr)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, engine.ErrStorage) && errors.Is(err, errDown):
				failed.Add(1)
			default:
				t.Errorf("Update: %v", err)
			}
		}()
	}
	started.Wait()
	time.Sleep(20 * time.Millisecond) // let them reach the mailbox (not asserted)
	release()
	if err := <-first; err != nil {
		t.Fatalf("the held update: %v", err)
	}
	wg.Wait()
	store.mu.Lock()
	failedRec := store.failed
	store.mu.Unlock()
	if failedRec == nil {
		t.Fatal("no write failed")
	}
	rec, err := record.Decode(failedRec)
	if err != nil {
		t.Fatal(err)
	}
	carried, _ := strconv.Atoi(string(rec.Payload))
	carried-- // the held update's 1 came first
	if int64(carried) != failed.Load() {
		t.Fatalf("the failed write carried %d updates, %d updates failed", carried, failed.Load())
	}
	if got, want := count(t, k, id), 1+int(ok.Load()); got != want {
		t.Fatalf("count %d after %d ok and %d failed updates, want %d: a failed batch was applied", got, ok.Load(), failed.Load(), want)
	}
	t.Logf("failed batch of %d; %d applied after it", failed.Load(), ok.Load())
	return int(failed.Load())
}
