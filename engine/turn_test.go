package engine_test

// Tests of the session's turn: nothing one session's storage does can
// stall its caller past its deadline, another session, the janitor or
// Close; no operation from inside an update function waits for itself.
// Gates are released only after the assertions on the callers, so a caller
// that waited for its storage instead of its deadline hangs the test.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

// TestCallerLeavesAtDeadline: with the session's storage hung, the caller
// returns with its context's error. A hung read: the update was never
// applied. A hung write: the caller is told the write may have been
// applied, and it is once the storage answers.
func TestCallerLeavesAtDeadline(t *testing.T) {
	for _, op := range []string{"load", "save"} {
		t.Run(op, func(t *testing.T) {
			store := newGateStore()
			eng := newEngine(t, engine.Options{})
			k := register(t, eng, storage.FromBytes(store), engine.KindOptions{})
			id, err := k.Create(t.Context(), []byte("0"))
			if err != nil {
				t.Fatal(err)
			}
			if op == "load" {
				// A second engine on the same store has not read the
				// session yet: its update must load it first.
				eng2 := newEngine(t, engine.Options{})
				k = register(t, eng2, storage.FromBytes(store), engine.KindOptions{})
			}
			arrived, release := store.gate(op, id)
			defer release()
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			_, err = k.Update(ctx, id, incr)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Update with a hung %s: %v, want the deadline", op, err)
			}
			<-arrived
			maybe := errors.Is(err, engine.ErrMaybeApplied)
			if maybe != (op == "save") {
				t.Fatalf("Update with a hung %s: ErrMaybeApplied is %v: %v", op, maybe, err)
			}
			release()
			want := 0
			if op == "save" {
				want = 1 // the write completes in the actor
			}
			waitFor(t, "the actor to finish", func() bool { return count(t, k, id) == want })
		})
	}
}

// TestDeadlinesExactCount: 2,000 updates with random deadlines of 0-2 ms
// from 16 goroutines: the stored count is exactly the number of updates
// that returned nil, plus at most those told ErrMaybeApplied.
func TestDeadlinesExactCount(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    storage.Storage
	}{
		{"memory", storage.NewMemory(storage.MemoryOptions{})},
		{"blocking", storage.FromBytes(newMapStore())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := newEngine(t, engine.Options{})
			k := register(t, eng, tc.s, engine.KindOptions{})
			id, err := k.Create(t.Context(), []byte("0"))
			if err != nil {
				t.Fatal(err)
			}
			var ok, maybe, canceled atomic.Int64
			var wg sync.WaitGroup
			for g := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(uint64(g), 1))
					for range 125 {
						ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.IntN(2000))*time.Microsecond)
						_, err := k.Update(ctx, id, incr)
						cancel()
						switch {
						case err == nil:
							ok.Add(1)
						case errors.Is(err, engine.ErrMaybeApplied):
							maybe.Add(1)
						case errors.Is(err, context.DeadlineExceeded):
							canceled.Add(1)
						default:
							t.Errorf("Update: %v", err)
						}
					}
				}()
			}
			wg.Wait()
			got := count(t, k, id)
			t.Logf("%d ok, %d maybe applied, %d not applied; stored %d", ok.Load(), maybe.Load(), canceled.Load(), got)
			if int64(got) < ok.Load() || int64(got) > ok.Load()+maybe.Load() {
				t.Fatalf("stored %d, but %d updates returned nil and %d may have been applied", got, ok.Load(), maybe.Load())
			}
		})
	}
}

// TestHungSessionIsolated: one session's write hangs. With a single
// storage actor, every other session's operations still complete, idle
// sessions still passivate, Close flushes all the others and says how many
// are left, and a second Close finishes once the storage answers.
func TestHungSessionIsolated(t *testing.T) {
	store := newGateStore()
	eng, err := engine.New(engine.Options{StorageActors: 1, PassivateAfter: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	k := register(t, eng, storage.FromBytes(store), engine.KindOptions{})
	hung, err := k.Create(t.Context(), []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	arrived, release := store.gate("save", hung)
	defer release()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		_, _ = k.Update(ctx, hung, incr)
	}()
	<-arrived

	const others = 50
	ids := make([]string, others)
	for i := range ids {
		if ids[i], err = k.Create(t.Context(), []byte("0")); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := k.Update(t.Context(), ids[i], incr); err != nil {
				t.Fatalf("another session's Update while one hangs: %v", err)
			}
		}
	}
	waitFor(t, "the other sessions to passivate", func() bool { return eng.Stats().LiveActors == 1 })
	for _, id := range ids {
		if n := count(t, k, id); n != 3 {
			t.Fatalf("session %s holds %d, want 3", id, n)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err = eng.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "1 sessions not flushed") {
		t.Fatalf("Close with one hung session: %v", err)
	}
	if live := eng.Stats().LiveActors; live != 1 {
		t.Fatalf("%d actors left after Close gave up, want only the hung one", live)
	}
	release()
	ctx2, cancel2 := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel2()
	if err := eng.Close(ctx2); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if v, _ := store.Load(t.Context(), engine.StorageKey(hung)); v == nil {
		t.Fatal("the hung write was lost")
	}
}

// TestHungCallsNeverHoldEveryStorageActor: more sessions hang than there
// are storage actors; other sessions still get their storage calls done,
// because stalled storage actors are replaced.
func TestHungCallsNeverHoldEveryStorageActor(t *testing.T) {
	store := newGateStore()
	eng := newEngine(t, engine.Options{StorageActors: 2})
	k := register(t, eng, storage.FromBytes(store), engine.KindOptions{})
	var releases []func()
	defer func() {
		for _, r := range releases {
			r()
		}
	}()
	for range 4 {
		id, err := k.Create(t.Context(), []byte("0"))
		if err != nil {
			t.Fatal(err)
		}
		arrived, release := store.gate("save", id)
		releases = append(releases, release)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			defer cancel()
			_, _ = k.Update(ctx, id, incr)
		}()
		<-arrived
	}
	for range 20 {
		id, err := k.Create(t.Context(), []byte("0"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Update(t.Context(), id, incr); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReentrantOperations: an operation on a session from inside its own
// update function returns ErrReentrant at once, through the typed API (a
// server-side and a client-side kind) and the byte-level one; operations
// of another session from inside it work.
func TestReentrantOperations(t *testing.T) {
	eng := newEngine(t, engine.Options{})
	raw := register(t, eng, storage.NewMemory(storage.MemoryOptions{}), engine.KindOptions{})
	id, err := raw.Create(t.Context(), []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := raw.Create(t.Context(), []byte("7"))
	if err != nil {
		t.Fatal(err)
	}
	var inner, otherErr error
	if _, err := raw.Update(t.Context(), id, func(old []byte) ([]byte, error) {
		_, inner = raw.Load(t.Context(), id)
		_, otherErr = raw.Load(t.Context(), other)
		return old, nil
	}); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(inner, engine.ErrReentrant) || otherErr != nil {
		t.Fatalf("raw: Load of its own session inside Update: %v; of another: %v", inner, otherErr)
	}

	type counter struct{ N int }
	srv, err := engine.Register[counter](eng, "typed", engine.KindOptions{Storage: storage.NewMemory(storage.MemoryOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	type flag struct{ On bool }
	cli, err := engine.Register[flag](eng, "client", engine.KindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := engine.WithBindings(t.Context(), srv.Raw().Bind(""), cli.Raw().BindClient("", b64Sealer{}))
	for name, ops := range map[string]func() []error{
		"server": func() (errs []error) {
			_, err := srv.Update(ctx, func(c *counter) error {
				_, _, e1 := srv.Get(ctx)
				e2 := srv.Set(ctx, counter{9})
				_, e3 := srv.Update(ctx, func(*counter) error { return nil })
				e4 := srv.Renew(ctx)
				e5 := srv.Clear(ctx)
				errs = append(errs, e1, e2, e3, e4, e5)
				c.N++
				return nil
			})
			return append(errs, err)
		},
		"client": func() (errs []error) {
			_, err := cli.Update(ctx, func(f *flag) error {
				_, _, e1 := cli.Get(ctx)
				e2 := cli.Set(ctx, flag{})
				e3 := cli.Clear(ctx)
				errs = append(errs, e1, e2, e3)
				f.On = true
				return nil
			})
			return append(errs, err)
		},
	} {
		errs := ops()
		outer := errs[len(errs)-1]
		if outer != nil {
			t.Fatalf("%s: the outer Update failed: %v", name, outer)
		}
		for i, err := range errs[:len(errs)-1] {
			if !errors.Is(err, engine.ErrReentrant) {
				t.Errorf("%s: inner operation %d returned %v, want ErrReentrant", name, i, err)
			}
		}
	}
	if c, ok, err := srv.Get(ctx); err != nil || !ok || c.N != 1 {
		t.Fatalf("after the reentrant calls: %+v %v %v", c, ok, err)
	}
}

// TestFloodOfUnknownIDs: reads of never-issued IDs keep no actor, and a
// flood of new sessions stays within MaxLiveActors (busy actors aside),
// least recently used first, every value still readable.
func TestFloodOfUnknownIDs(t *testing.T) {
	eng := newEngine(t, engine.Options{MaxLiveActors: 256, Shards: 1})
	k := register(t, eng, storage.NewMemory(storage.MemoryOptions{}), engine.KindOptions{})
	var wg sync.WaitGroup
	var peak atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5000 {
				if _, err := k.Load(t.Context(), fmt.Sprintf("junk-%d-%d", g, i)); !errors.Is(err, engine.ErrNoSession) {
					t.Errorf("Load of a junk ID: %v", err)
					return
				}
				if l := eng.Stats().LiveActors; l > peak.Load() {
					peak.Store(l)
				}
			}
		}()
	}
	wg.Wait()
	waitFor(t, "no actor left after 40,000 reads of unknown IDs", func() bool { return eng.Stats().LiveActors == 0 })
	// Each reader has one actor at a time; stopping one finishes on its
	// own goroutine, so a few more are still stopping at any moment.
	t.Logf("at most %d actors live at once during the flood", peak.Load())
	if peak.Load() > 100 {
		t.Fatalf("%d actors live at once during a flood of 40,000 unknown IDs from 8 readers", peak.Load())
	}

	ids := make([]string, 5000)
	for i := range ids {
		id, err := k.Create(t.Context(), []byte(strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
		if live := eng.Stats().LiveActors; live > 256+16 {
			t.Fatalf("%d live actors after %d new sessions, bound 256", live, i+1)
		}
	}
	waitFor(t, "evicted actors to stop", func() bool { return eng.Stats().LiveActors <= 256 })
	if ev := eng.Stats().Evicted; ev < 5000-256 {
		t.Fatalf("only %d evictions for 5,000 sessions over a bound of 256", ev)
	}
	for i, id := range ids {
		if n := count(t, k, id); n != i {
			t.Fatalf("session %d holds %d after eviction", i, n)
		}
	}
}

// TestWarmReadsInlineNeverBlock: reads of a warm session of a blocking
// storage run on their caller's goroutine, but never one that must write
// (the sliding expiry is due for a refresh): with that write hung, the
// caller still leaves at its deadline.
func TestWarmReadsInlineNeverBlock(t *testing.T) {
	clock := newFakeClock()
	store := newGateStore()
	eng := newEngine(t, engine.Options{Now: clock.Now})
	k := register(t, eng, storage.FromBytes(store), engine.KindOptions{IdleTimeout: 10 * time.Minute})
	id, err := k.Create(t.Context(), []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	caller := goid()
	var ranOn int
	if _, err := k.Update(t.Context(), id, func(old []byte) ([]byte, error) { ranOn = goid(); return old, nil }); err != nil {
		t.Fatal(err)
	}
	if ranOn == caller {
		t.Fatal("an update of a blocking storage ran on its caller's goroutine")
	}
	for range 3 {
		if n := count(t, k, id); n != 0 {
			t.Fatalf("count %d", n)
		}
	}
	arrived, release := store.gate("save", id)
	defer release()
	clock.Advance(2 * time.Minute) // past the touch interval (a tenth of the idle timeout)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := k.Load(ctx, id); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a read whose refresh hangs: %v, want the deadline", err)
	}
	<-arrived
}

// countingStore counts the loads that reach it.
type countingStore struct {
	*mapStore
	loads atomic.Int64
}

func (s *countingStore) Load(ctx context.Context, id string) ([]byte, error) {
	s.loads.Add(1)
	return s.mapStore.Load(ctx, id)
}

// TestCacheKeepsPassivatedSessions: with a cache in front of the storage,
// sessions whose last operation was a write, and whose actors passivated
// 59 s later, come back 59 s after that (118 s after the write, past the
// 60 s TTL) without a read of the storage behind the cache.
func TestCacheKeepsPassivatedSessions(t *testing.T) {
	// Idleness is judged on the real clock: on a slow machine an actor may
	// passivate before the fake clock moves, which the scenario excludes;
	// such a round is run again.
	for round := 1; !cacheKeepsRound(t); round++ {
		if round == 10 {
			t.Fatal("actors kept passivating before the clock moved in 10 rounds")
		}
	}
}

// cacheKeepsRound runs TestCacheKeepsPassivatedSessions once; it reports
// false if an actor passivated too early for the round to count.
func cacheKeepsRound(t *testing.T) bool {
	clock := newFakeClock()
	inner := &countingStore{mapStore: newMapStore()}
	cache := storage.NewCache(storage.FromBytes(inner), storage.CacheOptions{Now: clock.Now})
	eng := newEngine(t, engine.Options{Now: clock.Now, PassivateAfter: 50 * time.Millisecond})
	k := register(t, eng, cache, engine.KindOptions{})
	ids := make([]string, 20)
	for i := range ids {
		var err error
		if ids[i], err = k.Create(t.Context(), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(59 * time.Second)
	if eng.Stats().Passivated != 0 {
		return false
	}
	waitFor(t, "every actor to passivate", func() bool { return eng.Stats().LiveActors == 0 })
	clock.Advance(59 * time.Second)
	before := inner.loads.Load()
	for i, id := range ids {
		if n := count(t, k, id); n != i {
			t.Fatalf("session %d reads %d", i, n)
		}
	}
	if loads := inner.loads.Load() - before; loads != 0 {
		t.Fatalf("%d of %d returning sessions read the storage behind the cache", loads, len(ids))
	}
	return true
}

// hider wraps a storage through the streaming contract only, hiding its
// compare-and-set capability, as a compressing wrapper written naively
// would.
type hider struct{ inner storage.Storage }

func (h hider) Read(ctx context.Context, id string, fn func(io.Reader) error) error {
	return h.inner.Read(ctx, id, fn)
}

func (h hider) Write(ctx context.Context, id string, exp time.Time, fn func(io.Writer) error) error {
	return h.inner.Write(ctx, id, exp, fn)
}

func (h hider) Invalidate(ctx context.Context, id string) error { return h.inner.Invalidate(ctx, id) }

// TestRegisterRefusesHiddenVersioned: a wrapper that hides a shared
// storage's compare-and-set is refused at registration, never silently
// turned into last-write-wins.
func TestRegisterRefusesHiddenVersioned(t *testing.T) {
	eng := newEngine(t, engine.Options{})
	_, err := engine.RegisterRaw(eng, "hidden", engine.KindOptions{Storage: hider{storage.FromBytes(newVersionedStore())}})
	if !errors.Is(err, engine.ErrConfig) || !errors.Is(err, storage.ErrHiddenVersioned) {
		t.Fatalf("registering a wrapper that hides compare-and-set: %v", err)
	}
	if _, err := engine.RegisterRaw(eng, "direct", engine.KindOptions{Storage: storage.FromBytes(newVersionedStore())}); err != nil {
		t.Fatalf("registering the shared storage itself: %v", err)
	}
}
