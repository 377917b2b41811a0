package engine_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

// recorder counts the events it is given, by kind and handle.
type recorder struct {
	mu     sync.Mutex
	counts map[string]int // "kind handle" → count
	all    []engine.Event
}

func newRecorder() *recorder { return &recorder{counts: map[string]int{}} }

func (r *recorder) on(ev engine.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[ev.Kind.String()+" "+ev.Handle]++
	r.all = append(r.all, ev)
}

func (r *recorder) count(kind engine.EventKind, handle string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[kind.String()+" "+handle]
}

// TestEventsExactlyOnce: a storm of 32 goroutines, each creating
// sessions, binding them to an owner (MaxPerOwner 2, so some are
// evicted), updating, renewing and invalidating them, with actors
// passivating after a millisecond: every event is delivered exactly once.
func TestEventsExactlyOnce(t *testing.T) {
	for name, mk := range ownerStorages(t) {
		t.Run(name, func(t *testing.T) {
			rec := newRecorder()
			eng, err := engine.New(engine.Options{PassivateAfter: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			k := register(t, eng, mk(nil), engine.KindOptions{OnEvent: rec.on, MaxPerOwner: 2})
			ctx := context.Background()
			type life struct{ id, renewed, owner string }
			lives := make(chan life, 32*10)
			var wg sync.WaitGroup
			for g := range 32 {
				wg.Go(func() {
					owner := fmt.Sprintf("user%d", g%8)
					for range 10 {
						id, err := k.Create(ctx, []byte("0"))
						if err != nil {
							t.Error(err)
							return
						}
						if err := k.BindOwner(ctx, id, owner); err != nil {
							lives <- life{id: id, owner: owner} // evicted at once by a concurrent login
							continue
						}
						_, _ = k.Update(ctx, id, incr)
						nid, err := k.Renew(ctx, id)
						if err != nil {
							lives <- life{id: id, owner: owner} // evicted meanwhile
							continue
						}
						_, _ = k.Update(ctx, nid, incr)
						_ = k.Invalidate(ctx, nid)
						lives <- life{id: id, renewed: nid, owner: owner}
					}
				})
			}
			wg.Wait()
			close(lives)
			closeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := eng.Close(closeCtx); err != nil { // delivers every event queued
				t.Fatal(err)
			}
			n := 0
			for l := range lives {
				n++
				h := engine.StorageKey(l.id)
				if c := rec.count(engine.SessionCreated, h); c != 1 {
					t.Fatalf("created delivered %d times", c)
				}
				ended := rec.count(engine.SessionEvicted, h) + rec.count(engine.SessionInvalidated, h)
				if l.renewed == "" {
					if ended != 1 && rec.count(engine.SessionRenewed, h) != 1 {
						t.Fatalf("an evicted session: %d ends, %d renewals", ended, rec.count(engine.SessionRenewed, h))
					}
					continue
				}
				nh := engine.StorageKey(l.renewed)
				if c := rec.count(engine.SessionRenewed, h); c != 1 {
					t.Fatalf("renewed delivered %d times", c)
				}
				if c := rec.count(engine.SessionOwnerBound, h); c != 1 {
					t.Fatalf("owner-bound delivered %d times", c)
				}
				if c := rec.count(engine.SessionCreated, nh); c != 0 {
					t.Fatal("a renewal reported as a creation")
				}
				if c := rec.count(engine.SessionInvalidated, nh) + rec.count(engine.SessionEvicted, nh); c != 1 {
					t.Fatalf("the renewed session ended %d times", c)
				}
			}
			rec.mu.Lock()
			for _, ev := range rec.all {
				if ev.Kind == engine.SessionOwnerBound && ev.Owner == "" {
					t.Fatal("owner-bound without an owner")
				}
				if ev.Kind == engine.SessionEvicted && ev.Reason != "max-per-owner" {
					t.Fatalf("evicted with reason %q", ev.Reason)
				}
			}
			total := len(rec.all)
			rec.mu.Unlock()
			t.Logf("%d sessions, %d events", n, total)
		})
	}
}

// TestExpiredEvents: live sessions that pass their idle timeout or their
// lifetime are reported, with the reason, once.
func TestExpiredEvents(t *testing.T) {
	clock := newFakeClock()
	rec := newRecorder()
	eng := newEngine(t, engine.Options{Now: clock.Now})
	k := register(t, eng, storage.NewMemory(storage.MemoryOptions{Now: clock.Now}),
		engine.KindOptions{OnEvent: rec.on, IdleTimeout: 10 * time.Minute, Lifetime: 30 * time.Minute})
	ctx := context.Background()
	idle, _ := k.Create(ctx, []byte("0"))
	busy, _ := k.Create(ctx, []byte("0"))
	for range 7 { // busy is used every 5 minutes: it reaches its lifetime
		clock.Advance(5 * time.Minute)
		_, _ = k.Load(ctx, busy)
	}
	_, _ = k.Load(ctx, idle)
	if err := eng.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	reasons := map[string]string{}
	for _, ev := range rec.all {
		if ev.Kind == engine.SessionExpired {
			if _, dup := reasons[ev.Handle]; dup {
				t.Fatal("expired delivered twice")
			}
			reasons[ev.Handle] = ev.Reason
		}
	}
	if reasons[engine.StorageKey(idle)] != "idle" || reasons[engine.StorageKey(busy)] != "lifetime" {
		t.Fatalf("expired reasons %v", reasons)
	}
}
