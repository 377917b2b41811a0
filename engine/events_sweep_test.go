package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

// sweptStorages are the storages that remove expired sessions on their
// own, each with a function that makes them remove what expired: the
// directory's sweeper, or, for Memory, reads and writes that find them.
func sweptStorages(t *testing.T) map[string]func(now func() time.Time) (storage.Storage, func(k *engine.RawKind, ids []string)) {
	dir := func(cached bool) func(now func() time.Time) (storage.Storage, func(*engine.RawKind, []string)) {
		return func(now func() time.Time) (storage.Storage, func(*engine.RawKind, []string)) {
			d, err := storage.NewDirectory(t.TempDir(), storage.DirectoryOptions{Now: now, SweepInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			sweep := func(*engine.RawKind, []string) {
				if _, err := d.Sweep(context.Background()); err != nil {
					t.Error(err)
				}
			}
			if cached {
				return storage.NewCache(d, storage.CacheOptions{Now: now}), sweep
			}
			return d, sweep
		}
	}
	return map[string]func(now func() time.Time) (storage.Storage, func(*engine.RawKind, []string)){
		"directory":        dir(false),
		"cached-directory": dir(true),
		"memory": func(now func() time.Time) (storage.Storage, func(*engine.RawKind, []string)) {
			m := storage.NewMemory(storage.MemoryOptions{Now: now})
			return m, func(k *engine.RawKind, ids []string) {
				// Writes prune expired values (two a write), reads remove
				// the ones they find expired.
				for range 2 * len(ids) {
					if _, err := k.Create(context.Background(), []byte("x")); err != nil {
						t.Error(err)
					}
				}
				for _, id := range ids {
					_, _ = k.Load(context.Background(), id)
				}
			}
		},
	}
}

// TestExpiredEventsWithoutActors: sessions that expire while no actor
// holds them, and that the storage removes on its own, are reported
// expired exactly once, with their owner and the reason, even while
// requests with their IDs race with the removal.
func TestExpiredEventsWithoutActors(t *testing.T) {
	for name, mk := range sweptStorages(t) {
		t.Run(name, func(t *testing.T) {
			clock := newFakeClock()
			rec := newRecorder()
			eng, err := engine.New(engine.Options{Now: clock.Now, PassivateAfter: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			s, remove := mk(clock.Now)
			k := register(t, eng, s, engine.KindOptions{OnEvent: rec.on, IdleTimeout: 10 * time.Minute, Lifetime: 30 * time.Minute})
			ctx := context.Background()
			const n = 200
			ids := make([]string, n)
			for i := range ids {
				id, err := k.Create(ctx, []byte("0"))
				if err != nil {
					t.Fatal(err)
				}
				if i%2 == 0 {
					if err := k.BindOwner(ctx, id, "user"); err != nil {
						t.Fatal(err)
					}
				}
				ids[i] = id
			}
			// Half reach their lifetime (used every 9 minutes), half their
			// idle timeout.
			for range 3 {
				clock.Advance(9 * time.Minute)
				for _, id := range ids[n/2:] {
					if _, err := k.Load(ctx, id); err != nil {
						t.Fatal(err)
					}
				}
			}
			waitFor(t, "the actors to passivate", func() bool { return eng.Stats().LiveActors == 0 })
			clock.Advance(9 * time.Minute) // 36 minutes: all expired

			// Requests race with the removal: their actors find the
			// sessions expired, or removed.
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					for i := g; i < n; i += 4 {
						_, _ = k.Load(ctx, ids[i])
					}
				})
			}
			remove(k, ids)
			wg.Wait()
			remove(k, ids) // what the race left

			closeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := eng.Close(closeCtx); err != nil {
				t.Fatal(err)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			got := map[string]engine.Event{}
			for _, ev := range rec.all {
				if ev.Kind != engine.SessionExpired {
					continue
				}
				if _, dup := got[ev.Handle]; dup {
					t.Fatalf("expired delivered twice for one session")
				}
				got[ev.Handle] = ev
			}
			for i, id := range ids {
				ev, ok := got[engine.StorageKey(id)]
				if !ok {
					t.Fatalf("session %d: no expired event (%d of %d reported)", i, len(got), n)
				}
				wantReason, wantOwner := "idle", ""
				if i >= n/2 {
					wantReason = "lifetime"
				}
				if i%2 == 0 {
					wantOwner = "user"
				}
				if ev.Reason != wantReason || ev.Owner != wantOwner {
					t.Errorf("session %d: expired %q, owner %q; want %q, %q", i, ev.Reason, ev.Owner, wantReason, wantOwner)
				}
			}
		})
	}
}

// TestSweptWhileAliveInTheActor: a session whose actor slid its expiry
// further than it wrote (it writes it through once it moved by the touch
// interval) is never removed by the sweeper while the actor holds it
// alive: the storage is given the touch interval as a margin. Once it is
// expired for the actor too, it is removed and reported once.
func TestSweptWhileAliveInTheActor(t *testing.T) {
	clock := newFakeClock()
	rec := newRecorder()
	d, err := storage.NewDirectory(t.TempDir(), storage.DirectoryOptions{Now: clock.Now, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Options{Now: clock.Now, PassivateAfter: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	k := register(t, eng, d, engine.KindOptions{OnEvent: rec.on, IdleTimeout: 10 * time.Second}) // touch: 1s
	ctx := context.Background()
	id, err := k.Create(ctx, []byte("7"))
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(500 * time.Millisecond)
	if _, err := k.Load(ctx, id); err != nil { // slides to 10.5s, not written
		t.Fatal(err)
	}
	clock.Advance(9700 * time.Millisecond) // 10.2s: the recorded expiry (10s) passed
	if removed, err := d.Sweep(ctx); err != nil || removed != 0 {
		t.Fatalf("Sweep = %d, %v; want nothing removed", removed, err)
	}
	if got := count(t, k, id); got != 7 { // slides to 20.2s
		t.Fatalf("after the sweep: %d, want 7", got)
	}
	clock.Advance(30 * time.Second)
	if removed, err := d.Sweep(ctx); err != nil || removed == 0 {
		t.Fatalf("Sweep = %d, %v; want the expired session removed", removed, err)
	}
	if _, err := k.Load(ctx, id); !errors.Is(err, engine.ErrNoSession) {
		t.Fatalf("Load after expiry: %v, want ErrNoSession", err)
	}
	if err := eng.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rec.count(engine.SessionExpired, engine.StorageKey(id)); n != 1 {
		t.Fatalf("%d expired events, want 1", n)
	}
}

// TestExpiredEventsRaceSweeps hammers the actor's own expiry against the
// sweeper's: 64 sessions, 8 goroutines reading them while 2 sweep, over
// many rounds of expiry, with the actors holding the sessions when they
// expire (passivation after an hour) and not (after a millisecond): every
// session is reported expired exactly once.
func TestExpiredEventsRaceSweeps(t *testing.T) {
	for _, passivate := range []time.Duration{time.Hour, time.Millisecond} {
		t.Run(fmt.Sprint("passivate=", passivate), func(t *testing.T) { raceSweeps(t, passivate) })
	}
}

func raceSweeps(t *testing.T, passivate time.Duration) {
	clock := newFakeClock()
	rec := newRecorder()
	d, err := storage.NewDirectory(t.TempDir(), storage.DirectoryOptions{Now: clock.Now, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Options{Now: clock.Now, PassivateAfter: passivate})
	if err != nil {
		t.Fatal(err)
	}
	k := register(t, eng, d, engine.KindOptions{OnEvent: rec.on, IdleTimeout: time.Minute})
	ctx := context.Background()
	var all []string
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	for range rounds {
		ids := make([]string, 64)
		for i := range ids {
			if ids[i], err = k.Create(ctx, []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		all = append(all, ids...)
		clock.Advance(2 * time.Minute)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := g; i < len(ids); i += 8 {
					_, _ = k.Load(ctx, ids[i])
				}
			})
		}
		for range 2 {
			wg.Go(func() {
				if _, err := d.Sweep(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if _, err := d.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := eng.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range all {
		if n := rec.count(engine.SessionExpired, engine.StorageKey(id)); n != 1 {
			t.Fatalf("a session reported expired %d times, want once", n)
		}
	}
}

// TestInvalidateRacesSweep: sessions whose actors slid their expiry past
// the stored one, swept while the user invalidates them, 5 rounds of 300:
// each session ends with exactly one terminal event (before the storage
// was given the touch interval as a margin, 3 of 1,500 got both
// invalidated and expired).
func TestInvalidateRacesSweep(t *testing.T) {
	clock := newFakeClock()
	rec := newRecorder()
	d, err := storage.NewDirectory(t.TempDir(), storage.DirectoryOptions{Now: clock.Now, SweepInterval: -1, CheckInterval: -1, SweepBatch: 100000})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Options{Now: clock.Now, PassivateAfter: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	k := register(t, eng, d, engine.KindOptions{OnEvent: rec.on, IdleTimeout: 10 * time.Second})
	ctx := context.Background()
	var all []string
	for range 5 {
		ids := make([]string, 300)
		for i := range ids {
			if ids[i], err = k.Create(ctx, []byte("7")); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(500 * time.Millisecond)
		for _, id := range ids {
			if _, err := k.Load(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(9700 * time.Millisecond)
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := d.Sweep(ctx); err != nil {
				t.Error(err)
			}
		})
		for g := range 4 {
			wg.Go(func() {
				for i := g; i < len(ids); i += 4 {
					_ = k.Invalidate(ctx, ids[i])
				}
			})
		}
		wg.Wait()
		all = append(all, ids...)
	}
	if err := eng.Close(ctx); err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, id := range all {
		key := engine.StorageKey(id)
		if rec.count(engine.SessionInvalidated, key)+rec.count(engine.SessionExpired, key) != 1 {
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d sessions got two terminal events (invalidated and expired)", bad, len(all))
	}
}
