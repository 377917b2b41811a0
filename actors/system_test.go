package actors

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/steward-sessions/steward/internal/fakeclock"
	"github.com/steward-sessions/steward/internal/record"
	"github.com/steward-sessions/steward/storage"
)

// gated is a map storage whose Saves of chosen IDs wait for a gate.
type gated struct {
	mu    sync.Mutex
	m     map[string][]byte
	gates map[string]chan struct{}
	hits  map[string]chan struct{}
}

func newGated() *gated {
	return &gated{m: map[string][]byte{}, gates: map[string]chan struct{}{}, hits: map[string]chan struct{}{}}
}

// gate holds the next Saves of id until release; arrived is closed when
// one reached the gate.
func (g *gated) gate(id string) (arrived <-chan struct{}, release func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	gc, hc := make(chan struct{}), make(chan struct{})
	g.gates[id], g.hits[id] = gc, hc
	var once sync.Once
	return hc, func() { once.Do(func() { close(gc) }) }
}

func (g *gated) Load(_ context.Context, id string) ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if v, ok := g.m[id]; ok {
		return v, nil
	}
	return nil, storage.ErrNotFound
}

func (g *gated) Save(_ context.Context, id string, data []byte, _ time.Time) error {
	g.mu.Lock()
	gc, hc := g.gates[id], g.hits[id]
	g.mu.Unlock()
	if gc != nil {
		select {
		case <-hc:
		default:
			close(hc)
		}
		<-gc
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.m[id] = data
	return nil
}

func (g *gated) Delete(_ context.Context, id string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.m, id)
	return nil
}

func (g *gated) value(t *testing.T, id string) string {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	rec, err := record.Decode(g.m[id])
	if err != nil {
		t.Fatalf("record of %s: %v", id, err)
	}
	return string(rec.Payload)
}

func testKind(s storage.Storage) *Kind {
	return &Kind{Name: "S", Storage: s, Expiry: record.Policy{Idle: 10 * time.Minute}, NewID: func() (string, error) { return "", errors.New("no IDs here") }}
}

func do(t *testing.T, sys *System, k *Kind, id string, op *Op) Result {
	t.Helper()
	res := sys.Do(t.Context(), k, record.DigestOf(id), op)
	if res.Status != OK {
		t.Fatalf("%v on %s: status %d, %v", op.Code, id, res.Status, res.Err)
	}
	return res
}

// makeDirty creates id and reads it after the clock moved (less than the
// touch interval), so that its actor holds an expiry it has not written:
// its passivation must flush.
func makeDirty(t *testing.T, sys *System, k *Kind, clock *fakeclock.Clock, id string) {
	t.Helper()
	do(t, sys, k, id, &Op{Code: OpUpdate, Fresh: true, Fn: setTo("v-" + id)})
	clock.Advance(time.Second)
	do(t, sys, k, id, &Op{Code: OpGet})
}

// TestPassivationCalledOffByAnArrival: an operation that reaches an actor
// while its passivation is flushing makes it stay: the same actor answers,
// nothing is spawned and nothing passivated.
func TestPassivationCalledOffByAnArrival(t *testing.T) {
	clock := fakeclock.New(time.Unix(1_800_000_000, 0))
	store := newGated()
	sys := newTestSystem(t, Config{Now: clock.Now, Shards: 1, MaxLive: 1})
	k := testKind(storage.FromBytes(store))
	sys.AddKind(k)
	makeDirty(t, sys, k, clock, "a")
	arrived, release := store.gate(record.DigestOf("a").StorageID())
	defer release()
	// A second session over the bound of one evicts "a", whose flush hangs.
	do(t, sys, k, "b", &Op{Code: OpUpdate, Fresh: true, Fn: setTo("v-b")})
	<-arrived
	got := make(chan Result)
	go func() { got <- sys.Do(context.Background(), k, record.DigestOf("a"), &Op{Code: OpGet}) }()
	waitUntil(t, func() bool { return pendingOf(sys, k, "a") == 2 })
	release()
	res := <-got
	if res.Status != OK || string(res.Value.Data) != "v-a" {
		t.Fatalf("Get after the called-off passivation: %+v", res)
	}
	if sp, pa := sys.Spawned(), sys.Passivated(); sp != 2 || pa != 0 {
		t.Fatalf("spawned %d, passivated %d; want 2 and 0: the actor should have stayed", sp, pa)
	}
}

// TestPassivationThenArrival: an operation that arrives after the actor
// left the registry spawns a fresh one, which reads what the old one
// flushed.
func TestPassivationThenArrival(t *testing.T) {
	clock := fakeclock.New(time.Unix(1_800_000_000, 0))
	store := newGated()
	sys := newTestSystem(t, Config{Now: clock.Now, Shards: 1, MaxLive: 1})
	k := testKind(storage.FromBytes(store))
	sys.AddKind(k)
	makeDirty(t, sys, k, clock, "a")
	do(t, sys, k, "b", &Op{Code: OpUpdate, Fresh: true, Fn: setTo("v-b")})
	waitUntil(t, func() bool { return sys.Passivated() == 1 })
	if res := do(t, sys, k, "a", &Op{Code: OpGet}); string(res.Value.Data) != "v-a" {
		t.Fatalf("after passivation: %q", res.Value.Data)
	}
	if sp := sys.Spawned(); sp != 3 {
		t.Fatalf("spawned %d, want 3 (a, b, a again)", sp)
	}
}

// TestHandshakeHammer: 32 goroutines increment 8 sessions while the live
// bound of 2 evicts constantly and the janitor passivates every
// millisecond: every increment counts, and actors passivated.
func TestHandshakeHammer(t *testing.T) {
	sys := newTestSystem(t, Config{Shards: 1, MaxLive: 2, PassivateAfter: time.Millisecond})
	k := testKind(storage.NewMemory(storage.MemoryOptions{}))
	sys.AddKind(k)
	ids := make([]string, 8)
	for i := range ids {
		ids[i] = "s" + strconv.Itoa(i)
		do(t, sys, k, ids[i], &Op{Code: OpUpdate, Fresh: true, Fn: setTo("0")})
	}
	inc := UpdateFunc(func(cur Value, _ bool) (Value, bool, error) {
		n, _ := strconv.Atoi(string(cur.Data))
		return Value{Data: strconv.AppendInt(nil, int64(n+1), 10)}, true, nil
	})
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 250 {
				res := sys.Do(context.Background(), k, record.DigestOf(ids[(g+i)%len(ids)]), &Op{Code: OpUpdate, MustExist: true, Fn: inc})
				if res.Status != OK || !res.Found {
					t.Errorf("increment: %+v", res)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		if res := do(t, sys, k, id, &Op{Code: OpGet}); string(res.Value.Data) != "1000" {
			t.Errorf("%s counts %s, want 1000", id, res.Value.Data)
		}
	}
	if sys.Passivated() == 0 {
		t.Error("no passivation happened")
	}
}

// TestCloseDrainsQueued: operations queued behind a hung write are all
// applied before the actor stops; Close gives up at its ctx saying one
// session is left, then finishes.
func TestCloseDrainsQueued(t *testing.T) {
	store := newGated()
	sys := newTestSystem(t, Config{})
	k := testKind(storage.FromBytes(store))
	sys.AddKind(k)
	do(t, sys, k, "a", &Op{Code: OpUpdate, Fresh: true, Fn: setTo("0")})
	arrived, release := store.gate(record.DigestOf("a").StorageID())
	defer release()
	results := make(chan Result, 3)
	for i := range 3 {
		go func() {
			results <- sys.Do(context.Background(), k, record.DigestOf("a"), &Op{Code: OpUpdate, MustExist: true, Fn: setTo(strconv.Itoa(i + 1))})
		}()
		if i == 0 {
			<-arrived
		}
	}
	waitUntil(t, func() bool { return pendingOf(sys, k, "a") == 3 })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := sys.Close(ctx); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with a hung write: %v", err)
	}
	if res := sys.Do(t.Context(), k, record.DigestOf("b"), &Op{Code: OpGet}); res.Status != Closed {
		t.Fatalf("an operation after Close began: %+v", res)
	}
	release()
	for range 3 {
		if res := <-results; res.Status != OK {
			t.Fatalf("a queued update: %+v", res)
		}
	}
	if err := sys.Close(t.Context()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if v := store.value(t, record.DigestOf("a").StorageID()); v != "1" && v != "2" && v != "3" {
		t.Fatalf("stored %q", v)
	}
	if sys.Live() != 0 {
		t.Fatalf("%d actors live after Close", sys.Live())
	}
}

func pendingOf(sys *System, k *Kind, id string) int32 {
	d := record.DigestOf(id)
	sh := &sys.shards[sys.hash(k, d)&sys.mask]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.entries[key{k.index, d}]; e != nil {
		return e.pending.Load()
	}
	return 0
}
