package engine_test

import (
	"context"
	"errors"
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

type counter struct {
	N int `json:"n"`
}

// TestHotSessionNoLostUpdates: 64 goroutines × 1,000 updates of one session
// through the byte-level API and through the typed request-level API.
func TestHotSessionNoLostUpdates(t *testing.T) {
	const workers, each = 64, 1000
	t.Run("raw", func(t *testing.T) {
		eng := newEngine(t, engine.Options{})
		k := register(t, eng, storage.FromBytes(newMapStore()), engine.KindOptions{})
		id, err := k.Create(t.Context(), []byte("0"))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range each {
					if _, err := k.Update(t.Context(), id, incr); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if got := count(t, k, id); got != workers*each {
			t.Fatalf("count = %d, want %d", got, workers*each)
		}
	})
	t.Run("typed", func(t *testing.T) {
		eng := newEngine(t, engine.Options{})
		k, err := engine.Register[counter](eng, "SESSION_ID", engine.KindOptions{Storage: storage.FromBytes(newMapStore())})
		if err != nil {
			t.Fatal(err)
		}
		first := k.Raw().Bind("")
		if _, err := k.Update(engine.WithBindings(t.Context(), first), func(c *counter) error { return nil }); err != nil {
			t.Fatal(err)
		}
		id := first.Outcome().ID
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range each {
					ctx := engine.WithBindings(t.Context(), k.Raw().Bind(id))
					if _, err := k.Update(ctx, func(c *counter) error { c.N++; return nil }); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		got, ok, err := k.Get(engine.WithBindings(t.Context(), k.Raw().Bind(id)))
		if err != nil || !ok || got.N != workers*each {
			t.Fatalf("Get = %+v, %v, %v; want N=%d", got, ok, err, workers*each)
		}
	})
}

// TestPassivationUnderLoad: with a passivation timeout of a millisecond,
// actors stop and restart all through the run; no update is lost.
func TestPassivationUnderLoad(t *testing.T) {
	const workers, each, sessions = 64, 1000, 8
	eng := newEngine(t, engine.Options{PassivateAfter: time.Millisecond})
	k := register(t, eng, storage.FromBytes(newMapStore()), engine.KindOptions{})
	ids := make([]string, sessions)
	for i := range ids {
		var err error
		if ids[i], err = k.Create(t.Context(), []byte("0")); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range each {
				if _, err := k.Update(t.Context(), ids[w%sessions], incr); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 {
					time.Sleep(time.Duration(r.IntN(3000)) * time.Microsecond)
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for _, id := range ids {
		total += count(t, k, id)
	}
	if total != workers*each {
		t.Fatalf("total = %d, want %d", total, workers*each)
	}
	st := eng.Stats()
	if st.Passivated == 0 || st.Spawned <= sessions {
		t.Fatalf("stats %+v: actors never passivated during the run", st)
	}
	waitFor(t, "idle actors to passivate", func() bool { return eng.Stats().LiveActors == 0 })
	t.Logf("stats: %+v", eng.Stats())
}

// TestCloseDrains: Close in the middle of a storm of updates; every
// acknowledged update is in the storage afterwards and later calls fail
// with ErrClosed.
func TestCloseDrains(t *testing.T) {
	const workers = 32
	store := newMapStore()
	eng, err := engine.New(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := register(t, eng, storage.FromBytes(store), engine.KindOptions{})
	ids := make([]string, workers)
	for i := range ids {
		if ids[i], err = k.Create(t.Context(), []byte("0")); err != nil {
			t.Fatal(err)
		}
	}
	shared, _ := k.Create(t.Context(), []byte("0"))
	acked := make([]int, workers)
	var sharedAcked atomic.Int64
	var started sync.WaitGroup
	var wg sync.WaitGroup
	for w := range workers {
		started.Add(1)
		wg.Go(func() {
			for i := 0; ; i++ {
				if i == 50 {
					started.Done()
				}
				if _, err := k.Update(context.Background(), ids[w], incr); err != nil {
					if !errors.Is(err, engine.ErrClosed) {
						t.Errorf("Update: %v", err)
					}
					if i < 50 {
						started.Done()
					}
					return
				}
				acked[w]++
				if _, err := k.Update(context.Background(), shared, incr); err == nil {
					sharedAcked.Add(1)
				}
			}
		})
	}
	started.Wait()
	if err := eng.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := eng.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := k.Load(context.Background(), ids[0]); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Load after Close: %v, want ErrClosed", err)
	}

	// Read what reached the storage through a new engine.
	eng2 := newEngine(t, engine.Options{})
	k2, err := engine.RegisterRaw(eng2, "SESSION_ID", engine.KindOptions{Storage: storage.FromBytes(store)})
	if err != nil {
		t.Fatal(err)
	}
	for w, id := range ids {
		if got := count(t, k2, id); got != acked[w] {
			t.Errorf("session %d: stored %d, acknowledged %d", w, got, acked[w])
		}
	}
	if got := count(t, k2, shared); int64(got) != sharedAcked.Load() {
		t.Errorf("shared session: stored %d, acknowledged %d", got, sharedAcked.Load())
	}
}

// TestRenewUnderConcurrentRequests: 16 writers increment while the
// session is renewed 10 times; a writer whose increment is refused with
// ErrRenewed (its ID was renewed before the call began) picks up the
// current ID and retries. Every increment counts exactly once; old IDs
// answer ErrRenewed during the grace period and have no session after it.
func TestRenewUnderConcurrentRequests(t *testing.T) {
	clock := newFakeClock()
	eng := newEngine(t, engine.Options{Now: clock.Now})
	k := register(t, eng, storage.FromBytes(newMapStore()), engine.KindOptions{})
	first, err := k.Create(t.Context(), []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	var current atomic.Pointer[string]
	current.Store(&first)
	const workers, each, renewals = 16, 300, 10
	var refused atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				for {
					_, err := k.Update(t.Context(), *current.Load(), incr)
					if errors.Is(err, engine.ErrRenewed) {
						refused.Add(1)
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					break
				}
			}
		})
	}
	ids := []string{first}
	for range renewals {
		id, err := k.Renew(t.Context(), ids[len(ids)-1])
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		current.Store(&id)
	}
	wg.Wait()
	t.Logf("%d increments refused and retried", refused.Load())
	latest := ids[len(ids)-1]
	if got := count(t, k, latest); got != workers*each {
		t.Fatalf("count = %d, want %d", got, workers*each)
	}
	for _, id := range ids[:len(ids)-1] {
		if _, err := k.Load(t.Context(), id); !errors.Is(err, engine.ErrRenewed) {
			t.Fatalf("old ID within the grace period: %v, want ErrRenewed", err)
		}
	}
	clock.Advance(31 * time.Second)
	for _, id := range ids[:len(ids)-1] {
		if _, err := k.Load(t.Context(), id); !errors.Is(err, engine.ErrNoSession) {
			t.Fatalf("old ID after the grace period: %v, want ErrNoSession", err)
		}
	}
	if got := count(t, k, latest); got != workers*each {
		t.Fatalf("latest after the grace period = %d", got)
	}
}

// TestRenewTyped: Renew through a binding sends the new ID; a later
// request with the old ID gets ErrRenewed and learns nothing.
func TestRenewTyped(t *testing.T) {
	eng := newEngine(t, engine.Options{})
	k, err := engine.Register[counter](eng, "S", engine.KindOptions{Storage: storage.FromBytes(newMapStore())})
	if err != nil {
		t.Fatal(err)
	}
	b := k.Raw().Bind("")
	ctx := engine.WithBindings(t.Context(), b)
	if err := k.Set(ctx, counter{N: 7}); err != nil {
		t.Fatal(err)
	}
	old := b.Outcome().ID
	b2 := k.Raw().Bind(old)
	ctx2 := engine.WithBindings(t.Context(), b2)
	if err := k.Renew(ctx2); err != nil {
		t.Fatal(err)
	}
	out := b2.Outcome()
	if !out.Changed || out.ID == old || out.ID == "" {
		t.Fatalf("outcome after Renew: %+v", out)
	}
	b3 := k.Raw().Bind(old)
	v, ok, err := k.Get(engine.WithBindings(t.Context(), b3))
	if !errors.Is(err, engine.ErrRenewed) || ok {
		t.Fatalf("Get with the old ID, after the renewal: %+v %v %v; want ErrRenewed", v, ok, err)
	}
	if o := b3.Outcome(); o.Changed || o.Cleared || o.ID == out.ID {
		t.Fatalf("a request with the old ID must learn nothing and clear nothing: %+v", o)
	}
	if err := k.Renew(engine.WithBindings(t.Context(), k.Raw().Bind(""))); !errors.Is(err, engine.ErrNoSession) {
		t.Fatalf("Renew without a session: %v", err)
	}
}

func TestInvalidateByID(t *testing.T) {
	eng := newEngine(t, engine.Options{})
	store := newMapStore()
	k, err := engine.Register[counter](eng, "S", engine.KindOptions{Storage: storage.FromBytes(store)})
	if err != nil {
		t.Fatal(err)
	}
	b := k.Raw().Bind("")
	if err := k.Set(engine.WithBindings(t.Context(), b), counter{N: 1}); err != nil {
		t.Fatal(err)
	}
	id := b.Outcome().ID
	// Another device logs this one out, through an ID it holds.
	if err := k.Invalidate(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := k.Get(engine.WithBindings(t.Context(), k.Raw().Bind(id))); ok || err != nil {
		t.Fatalf("Get after Invalidate: ok=%v err=%v", ok, err)
	}
	if store.len() != 0 {
		t.Fatalf("storage still holds %d records", store.len())
	}
	// Invalidating through an old, renewed ID ends the renewed session too.
	b = k.Raw().Bind("")
	_ = k.Set(engine.WithBindings(t.Context(), b), counter{N: 2})
	old := b.Outcome().ID
	renewed, err := k.Raw().Renew(t.Context(), old)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Invalidate(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Raw().Load(t.Context(), renewed); !errors.Is(err, engine.ErrNoSession) {
		t.Fatalf("renewed session after invalidating the old ID: %v", err)
	}
	for _, id := range []string{"", "../x", strings.Repeat("a", 10000), "nope"} {
		if err := k.Invalidate(t.Context(), id); err != nil {
			t.Fatalf("Invalidate(%.20q): %v", id, err)
		}
	}
}

func TestIdleAndAbsoluteExpiry(t *testing.T) {
	for _, passivate := range []bool{false, true} {
		t.Run("passivate="+strconv.FormatBool(passivate), func(t *testing.T) {
			clock := newFakeClock()
			opts := engine.Options{Now: clock.Now}
			if passivate {
				opts.PassivateAfter = time.Millisecond
			}
			eng := newEngine(t, opts)
			k := register(t, eng, storage.FromBytes(newMapStore()), engine.KindOptions{IdleTimeout: 10 * time.Minute, Lifetime: time.Hour})
			// settle lets the actors passivate, so the next operation reads
			// the storage: expiry must survive that.
			settle := func() {
				if passivate {
					waitFor(t, "passivation", func() bool { return eng.Stats().LiveActors == 0 })
				}
			}
			id, err := k.Create(t.Context(), []byte("1"))
			if err != nil {
				t.Fatal(err)
			}
			// Sliding: each use restarts the idle timeout.
			for range 5 {
				clock.Advance(9 * time.Minute)
				settle()
				if _, err := k.Load(t.Context(), id); err != nil {
					t.Fatalf("used within the idle timeout: %v", err)
				}
			}
			clock.Advance(10*time.Minute + time.Second)
			settle()
			if _, err := k.Load(t.Context(), id); !errors.Is(err, engine.ErrNoSession) {
				t.Fatalf("after the idle timeout: %v, want ErrNoSession", err)
			}
			if _, err := k.Update(t.Context(), id, incr); !errors.Is(err, engine.ErrNoSession) {
				t.Fatalf("update after the idle timeout: %v, want ErrNoSession", err)
			}

			// Absolute: busy all along, still ends after its lifetime.
			id, _ = k.Create(t.Context(), []byte("1"))
			for range 11 {
				clock.Advance(5 * time.Minute)
				settle()
				if _, err := k.Update(t.Context(), id, incr); err != nil {
					t.Fatalf("within the lifetime: %v", err)
				}
			}
			clock.Advance(5*time.Minute + time.Second)
			settle()
			if _, err := k.Load(t.Context(), id); !errors.Is(err, engine.ErrNoSession) {
				t.Fatalf("after the lifetime: %v, want ErrNoSession", err)
			}
		})
	}
}

func TestRegister(t *testing.T) {
	eng := newEngine(t, engine.Options{})
	s := storage.FromBytes(newMapStore())
	if _, err := engine.Register[counter](eng, "A", engine.KindOptions{Storage: s}); err != nil {
		t.Fatal(err)
	}
	type other struct{}
	if _, err := engine.Register[other](eng, "A", engine.KindOptions{Storage: s}); !errors.Is(err, engine.ErrKindExists) {
		t.Fatalf("same name: %v", err)
	}
	if _, err := engine.Register[counter](eng, "B", engine.KindOptions{Storage: s}); !errors.Is(err, engine.ErrKindExists) {
		t.Fatalf("same type: %v", err)
	}
	if _, err := engine.RegisterRaw(eng, "A", engine.KindOptions{Storage: s}); !errors.Is(err, engine.ErrKindExists) {
		t.Fatalf("raw, same name: %v", err)
	}
	client, err := engine.Register[other](eng, "C", engine.KindOptions{}) // no storage: client-side
	if err != nil || !client.Raw().ClientSide() {
		t.Fatalf("client-side kind: %v", err)
	}
	if err := client.Invalidate(t.Context(), "x"); !errors.Is(err, engine.ErrServerSideOnly) {
		t.Fatalf("Invalidate on a client-side kind: %v", err)
	}
	if _, err := engine.Register[other](eng, "", engine.KindOptions{Storage: s}); !errors.Is(err, engine.ErrConfig) {
		t.Fatalf("no name: %v", err)
	}
	if _, err := engine.Register[other](eng, "a\x00b", engine.KindOptions{Storage: s}); !errors.Is(err, engine.ErrConfig) {
		t.Fatalf("NUL in the name: %v", err)
	}
	if _, err := engine.New(engine.Options{Shards: -1}); !errors.Is(err, engine.ErrConfig) {
		t.Fatalf("negative shards: %v", err)
	}
	bad, err := engine.RegisterRaw(eng, "D", engine.KindOptions{Storage: s, NewID: func() (string, error) { return "../../etc", nil }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Create(t.Context(), nil); !errors.Is(err, engine.ErrConfig) {
		t.Fatalf("generator outside the alphabet: %v", err)
	}
}

// TestNoAdoption: an ID the server did not issue never becomes a session.
func TestNoAdoption(t *testing.T) {
	eng := newEngine(t, engine.Options{})
	store := newMapStore()
	k, err := engine.Register[counter](eng, "S", engine.KindOptions{Storage: storage.FromBytes(store)})
	if err != nil {
		t.Fatal(err)
	}
	hostile := []string{
		"6f1c2e0a-1b2c-4d3e-8f90-a1b2c3d4e5f6", // well-formed, never issued
		"../../etc/passwd", "a/b", "a\x00b", "..", strings.Repeat("x", 10<<10), "é", " ", "a b",
	}
	for _, in := range hostile {
		b := k.Raw().Bind(in)
		ctx := engine.WithBindings(t.Context(), b)
		if _, ok, err := k.Get(ctx); ok || err != nil {
			t.Fatalf("Get(%.20q) = %v, %v", in, ok, err)
		}
		if id := k.ID(ctx); id != "" {
			t.Fatalf("ID after a Get of the unknown %.20q = %.20q", in, id)
		}
		if _, err := k.Update(ctx, func(c *counter) error { c.N++; return nil }); err != nil {
			t.Fatal(err)
		}
		out := b.Outcome()
		if out.ID == in || !out.Changed || !storage.ValidID(out.ID) {
			t.Fatalf("incoming %.20q: outcome %+v", in, out)
		}
		if err := k.Raw().Store(t.Context(), in, []byte(`{"n":1}`)); !errors.Is(err, engine.ErrNoSession) {
			t.Fatalf("Store(%.20q): %v, want ErrNoSession", in, err)
		}
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	for id := range store.m {
		for _, in := range hostile {
			if id == in {
				t.Fatalf("storage holds the client's ID %q", in)
			}
		}
	}
}

func TestStorageFailure(t *testing.T) {
	eng := newEngine(t, engine.Options{})
	store := newMapStore()
	k := register(t, eng, storage.FromBytes(store), engine.KindOptions{})
	id, err := k.Create(t.Context(), []byte("5"))
	if err != nil {
		t.Fatal(err)
	}
	store.down.Store(true)
	if _, err := k.Update(t.Context(), id, incr); !errors.Is(err, engine.ErrStorage) || !errors.Is(err, errDown) {
		t.Fatalf("Update with the storage down: %v", err)
	}
	if _, err := k.Create(t.Context(), nil); !errors.Is(err, engine.ErrStorage) {
		t.Fatalf("Create with the storage down: %v", err)
	}
	store.down.Store(false)
	if got := count(t, k, id); got != 5 {
		t.Fatalf("a failed write changed the value: %d", got)
	}
	if _, err := k.Update(t.Context(), id, incr); err != nil {
		t.Fatal(err)
	}
	if got := count(t, k, id); got != 6 {
		t.Fatalf("count = %d", got)
	}
}

func TestUpdateFunctionErrors(t *testing.T) {
	eng := newEngine(t, engine.Options{})
	k := register(t, eng, storage.FromBytes(newMapStore()), engine.KindOptions{})
	id, _ := k.Create(t.Context(), []byte("1"))
	boom := errors.New("boom")
	if _, err := k.Update(t.Context(), id, func([]byte) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("error from fn: %v", err)
	}
	if _, err := k.Update(t.Context(), id, func([]byte) ([]byte, error) { panic("kaboom") }); !errors.Is(err, engine.ErrPanic) {
		t.Fatalf("panic in fn: %v", err)
	}
	if got := count(t, k, id); got != 1 {
		t.Fatalf("value changed by failed updates: %d", got)
	}
	if _, err := k.Update(t.Context(), id, incr); err != nil {
		t.Fatalf("actor unusable after a panic: %v", err)
	}
}

func TestCancelledContext(t *testing.T) {
	eng := newEngine(t, engine.Options{})
	k := register(t, eng, storage.FromBytes(newMapStore()), engine.KindOptions{})
	id, _ := k.Create(t.Context(), []byte("1"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := k.Update(ctx, id, incr); !errors.Is(err, context.Canceled) {
		t.Fatalf("Update with a cancelled context: %v", err)
	}
	if got := count(t, k, id); got != 1 {
		t.Fatalf("a cancelled update was applied: %d", got)
	}
}

func TestTypedOperations(t *testing.T) {
	eng := newEngine(t, engine.Options{})
	k, err := engine.Register[counter](eng, "S", engine.KindOptions{Storage: storage.FromBytes(newMapStore())})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := k.Get(t.Context()); !errors.Is(err, engine.ErrNoBinding) {
		t.Fatalf("Get without a binding: %v", err)
	}
	b := k.Raw().Bind("")
	ctx := engine.WithBindings(t.Context(), b)
	if _, ok, _ := k.Get(ctx); ok {
		t.Fatal("a new request has a session")
	}
	if o := b.Outcome(); o.Changed || o.Cleared || o.ID != "" {
		t.Fatalf("Get changed the outcome: %+v", o)
	}
	if eng.Stats().Spawned != 0 {
		t.Fatalf("a request with no ID spawned %d actors", eng.Stats().Spawned)
	}
	b = k.Raw().Bind("") // Outcome sealed the first: a new request
	ctx = engine.WithBindings(t.Context(), b)
	calls := 0
	v, err := k.GetOrSet(ctx, func() counter { calls++; return counter{N: 3} })
	if err != nil || v.N != 3 {
		t.Fatalf("GetOrSet = %+v, %v", v, err)
	}
	v, err = k.GetOrSet(ctx, func() counter { calls++; return counter{N: 9} })
	if err != nil || v.N != 3 || calls != 1 {
		t.Fatalf("second GetOrSet = %+v, %v, calls %d", v, err, calls)
	}
	id := k.ID(ctx)
	if id == "" {
		t.Fatal("no ID after GetOrSet")
	}
	v, err = k.Update(ctx, func(c *counter) error { c.N *= 2; return nil })
	if err != nil || v.N != 6 {
		t.Fatalf("Update = %+v, %v", v, err)
	}
	if err := k.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if o := b.Outcome(); !o.Cleared || o.Changed || o.ID != "" {
		t.Fatalf("outcome after Clear: %+v", o)
	}
	if _, err := k.Raw().Load(t.Context(), id); !errors.Is(err, engine.ErrNoSession) {
		t.Fatalf("cleared session still loads: %v", err)
	}
}

// TestUndecodableValue: a stored value that no longer decodes into the
// kind's type reads as no session.
func TestUndecodableValue(t *testing.T) {
	eng := newEngine(t, engine.Options{})
	k, err := engine.Register[counter](eng, "S", engine.KindOptions{Storage: storage.FromBytes(newMapStore())})
	if err != nil {
		t.Fatal(err)
	}
	id, err := k.Raw().Create(t.Context(), []byte("not json"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := engine.WithBindings(t.Context(), k.Raw().Bind(id))
	if _, ok, err := k.Get(ctx); ok || err != nil {
		t.Fatalf("Get = %v, %v", ok, err)
	}
	v, err := k.Update(ctx, func(c *counter) error { c.N++; return nil })
	if err != nil || v.N != 1 {
		t.Fatalf("Update over an undecodable value = %+v, %v", v, err)
	}
}

// TestIDInsideUpdate: an update function may ask for the request's ID.
func TestIDInsideUpdate(t *testing.T) {
	eng := newEngine(t, engine.Options{})
	k, err := engine.Register[counter](eng, "S", engine.KindOptions{Storage: storage.FromBytes(newMapStore())})
	if err != nil {
		t.Fatal(err)
	}
	ctx := engine.WithBindings(t.Context(), k.Raw().Bind(""))
	_ = k.Set(ctx, counter{})
	want := k.ID(ctx)
	var seen string
	if _, err := k.Update(ctx, func(c *counter) error { seen = k.ID(ctx); return nil }); err != nil {
		t.Fatal(err)
	}
	if seen != want || want == "" {
		t.Fatalf("ID inside Update = %q, want %q", seen, want)
	}
}

// TestDecodedValueKept: for a flat type the actor keeps the decoded value
// between operations; a write through the byte-level API, a failed update
// and a caller that modifies what it got never make it stale.
func TestDecodedValueKept(t *testing.T) {
	eng := newEngine(t, engine.Options{})
	type cart struct{ Items []string }
	counters, err := engine.Register[counter](eng, "C", engine.KindOptions{Storage: storage.FromBytes(newMapStore())})
	if err != nil {
		t.Fatal(err)
	}
	carts, err := engine.Register[cart](eng, "K", engine.KindOptions{Storage: storage.FromBytes(newMapStore())})
	if err != nil {
		t.Fatal(err)
	}
	ctx := engine.WithBindings(t.Context(), counters.Raw().Bind(""), carts.Raw().Bind(""))
	inc := func(c *counter) error { c.N++; return nil }
	if _, err := counters.Update(ctx, inc); err != nil {
		t.Fatal(err)
	}
	id := counters.ID(ctx)
	if err := counters.Raw().Store(t.Context(), id, []byte(`{"n":100}`)); err != nil {
		t.Fatal(err)
	}
	if v, _ := counters.Update(ctx, inc); v.N != 101 {
		t.Fatalf("after a byte-level write: %d, want 101", v.N)
	}
	boom := errors.New("boom")
	if _, err := counters.Update(ctx, func(c *counter) error { c.N = 7; return boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if v, _, _ := counters.Get(ctx); v.N != 101 {
		t.Fatalf("a failed update changed the value: %d", v.N)
	}
	if v, _ := counters.GetOrSet(ctx, func() counter { return counter{N: -1} }); v.N != 101 {
		t.Fatalf("GetOrSet = %d", v.N)
	}

	got, err := carts.Update(ctx, func(c *cart) error { c.Items = append(c.Items, "a"); return nil })
	if err != nil {
		t.Fatal(err)
	}
	got.Items[0] = "changed by the caller"
	v, _, _ := carts.Get(ctx)
	if len(v.Items) != 1 || v.Items[0] != "a" {
		t.Fatalf("the caller's change reached the session: %+v", v)
	}
}
