package engine_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

// slowReads is a versionedStore whose reads take a while and are counted.
type slowReads struct {
	*versionedStore
	loads atomic.Int64
}

func (s *slowReads) LoadVersioned(ctx context.Context, id string) ([]byte, uint64, error) {
	s.loads.Add(1)
	time.Sleep(200 * time.Microsecond)
	return s.versionedStore.LoadVersioned(ctx, id)
}

// TestReadsShareOneStorageRead: on a storage that other instances write,
// where every read of a session goes to the storage, reads waiting behind
// one another in the session's actor share one storage read; and none of
// them returns a value older than a write another instance acknowledged
// before the read began. 32 readers on one instance, a writer on another.
func TestReadsShareOneStorageRead(t *testing.T) {
	store := &slowReads{versionedStore: newVersionedStore()}
	a := register(t, newEngine(t, engine.Options{}), storage.FromBytes(store), engine.KindOptions{})
	b := register(t, newEngine(t, engine.Options{}), storage.FromBytes(store), engine.KindOptions{})
	ctx := context.Background()
	id, err := b.Create(ctx, []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	var acked atomic.Int64 // the last value b's writer had acknowledged
	stop := make(chan struct{})
	var writer sync.WaitGroup
	writer.Go(func() {
		for i := int64(1); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := b.Store(ctx, id, []byte(strconv.FormatInt(i, 10))); err != nil {
				t.Error(err)
				return
			}
			acked.Store(i)
		}
	})
	const readers, each = 32, 100
	store.loads.Store(0)
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() {
			for range each {
				before := acked.Load()
				v, err := a.Load(ctx, id)
				if err != nil {
					t.Error(err)
					return
				}
				n, _ := strconv.ParseInt(string(v), 10, 64)
				if n < before {
					t.Errorf("read %d after %d was acknowledged", n, before)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	writer.Wait()
	loads := store.loads.Load() // a's reads (b's writes read nothing)
	t.Logf("%d reads, %d storage reads", readers*each, loads)
	if loads >= readers*each {
		t.Errorf("%d storage reads for %d reads: none was shared", loads, readers*each)
	}
}
