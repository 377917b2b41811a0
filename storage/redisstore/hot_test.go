package redisstore_test

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/internal/redistest"
	"github.com/steward-sessions/steward/storage/redisstore"
)

// TestHotSessionThreeInstances: three engine instances at default
// settings share one Redis; 64 clients, each kept to one instance (as
// behind a load balancer), increment one session 500 times each. Not one
// request fails and not one increment is lost, with local reads off (the
// default) and on.
func TestHotSessionThreeInstances(t *testing.T) {
	for _, local := range []bool{false, true} {
		t.Run(fmt.Sprint("LocalReads=", local), func(t *testing.T) { hotSession(t, local) })
	}
}

func hotSession(t *testing.T, local bool) {
	increments := 500
	if testing.Short() {
		increments = 50
	}
	const clients = 64
	srv := redistest.Start(t)
	kinds := instances(t, srv, 3, engine.KindOptions{}, redisstore.Options{LocalReads: local})
	ctx := t.Context()
	id, err := kinds[0].Create(ctx, []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	var failed atomic.Int64
	var first sync.Once
	var wg sync.WaitGroup
	for c := range clients {
		k := kinds[c%len(kinds)]
		wg.Go(func() {
			for range increments {
				if _, err := k.Update(ctx, id, increment); err != nil {
					failed.Add(1)
					first.Do(func() { t.Errorf("Update: %v", err) })
				}
			}
		})
	}
	wg.Wait()
	want := clients*increments - int(failed.Load())
	for i, k := range kinds {
		if n := count(t, k, id); n != want {
			t.Errorf("instance %d counts %d, want %d", i, n, want)
		}
	}
	if failed.Load() != 0 {
		t.Fatalf("%d of %d increments failed", failed.Load(), clients*increments)
	}
}

// TestRedisStallHonest: Redis is stopped (SIGSTOP) for two seconds while
// clients of three instances increment one session. An increment that
// returned nil is kept; one that failed without engine.ErrMaybeApplied was
// not applied: the stored count lies between the acknowledged increments
// and those plus the ones flagged as possibly applied. Once the storage
// is known to be down, queued operations fail at once instead of each
// waiting for the client timeout.
func TestRedisStallHonest(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 300 * time.Millisecond
	kinds := instances(t, srv, 3, engine.KindOptions{}, redisstore.Options{Timeout: timeout})
	ctx := t.Context()
	id, err := kinds[0].Create(ctx, []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	var ok, maybe, failed, fast atomic.Int64
	var stalled atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 24 {
		k := kinds[c%len(kinds)]
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				_, err := k.Update(ctx, id, increment)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, engine.ErrMaybeApplied):
					if !errors.Is(err, engine.ErrStorage) {
						t.Errorf("possibly applied but not a storage error: %v", err)
					}
					maybe.Add(1)
				case errors.Is(err, engine.ErrStorage):
					failed.Add(1)
					if stalled.Load() && time.Since(start) < timeout/2 {
						fast.Add(1)
					}
				default:
					t.Errorf("Update: %v", err)
					return
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	srv.Signal(syscall.SIGSTOP)
	stalled.Store(true)
	time.Sleep(2 * time.Second)
	stalled.Store(false)
	srv.Signal(syscall.SIGCONT)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()

	var n int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		v, err := kinds[1].Load(ctx, id)
		if err == nil {
			n, _ = strconv.Atoi(string(v))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Load still fails 10 s after Redis thawed: %v", err)
		}
	}
	t.Logf("%d acknowledged, %d possibly applied, %d failed (%d of them at once during the stall); stored %d",
		ok.Load(), maybe.Load(), failed.Load(), fast.Load(), n)
	if int64(n) < ok.Load() {
		t.Errorf("stored %d < %d acknowledged: an acknowledged increment was lost", n, ok.Load())
	}
	if int64(n) > ok.Load()+maybe.Load() {
		t.Errorf("stored %d > %d acknowledged + %d possibly applied: an increment reported as failed was applied",
			n, ok.Load(), maybe.Load())
	}
	if failed.Load() == 0 {
		t.Error("no increment failed during a two-second stall")
	}
}
