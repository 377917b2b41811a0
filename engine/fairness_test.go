package engine_test

import (
	"bytes"
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

// goid returns the current goroutine's number, from its stack header.
func goid() int {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	n, _ := strconv.Atoi(string(b[:bytes.IndexByte(b, ' ')]))
	return n
}

// TestHotSessionCallersWorkOnlyForThemselves: under a hot session, the
// goroutine of a caller runs at most its own update function, never another
// caller's. (protoactor's synchronized dispatcher let the caller that found
// the mailbox idle drain every message others pushed meanwhile, for as long
// as the load lasted, ignoring its own deadline.)
func TestHotSessionCallersWorkOnlyForThemselves(t *testing.T) {
	eng := newEngine(t, engine.Options{})
	// A storage write that takes a while keeps the mailbox busy.
	k := register(t, eng, storage.FromBytes(slowStore{newMapStore()}), engine.KindOptions{})
	id, err := k.Create(t.Context(), []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	callers := map[int]bool{} // goroutines that call Update
	var foreign, total int    // update functions run on another caller's goroutine
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			me := goid()
			mu.Lock()
			callers[me] = true
			mu.Unlock()
			for range 50 {
				_, err := k.Update(context.Background(), id, func(old []byte) ([]byte, error) {
					runner := goid()
					mu.Lock()
					total++
					if runner != me && callers[runner] {
						foreign++
					}
					mu.Unlock()
					return incr(old)
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := count(t, k, id); got != 32*50 {
		t.Fatalf("count = %d", got)
	}
	if foreign != 0 {
		t.Fatalf("%d of %d update functions ran on another caller's goroutine", foreign, total)
	}
}

type slowStore struct{ *mapStore }

func (s slowStore) Save(ctx context.Context, id string, data []byte, exp time.Time) error {
	time.Sleep(200 * time.Microsecond)
	return s.mapStore.Save(ctx, id, data, exp)
}
