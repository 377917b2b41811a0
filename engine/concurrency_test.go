package engine_test

// Regression tests for concurrency defects found in review: each failed on
// the engine as first written (protoactor's synchronized dispatcher for
// every actor, forwarded operations re-checking the caller's context).
// Their time limits only detect a hang; they are ten times the deadlines
// involved.

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

// gateStore is a mapStore whose calls for chosen IDs wait on a gate.
type gateStore struct {
	*mapStore
	mu    sync.Mutex
	gates map[string]chan struct{} // op+id -> gate; the call waits until it is closed
	hit   map[string]chan struct{} // op+id -> closed when the call reached the gate
}

func newGateStore() *gateStore {
	return &gateStore{mapStore: newMapStore(), gates: map[string]chan struct{}{}, hit: map[string]chan struct{}{}}
}

// gate makes the next calls of op on session id wait until release is
// called; the returned channel is closed when such a call has arrived.
func (s *gateStore) gate(op, id string) (arrived <-chan struct{}, release func()) {
	id = engine.StorageKey(id) // what the storage sees
	s.mu.Lock()
	defer s.mu.Unlock()
	g, h := make(chan struct{}), make(chan struct{})
	s.gates[op+id], s.hit[op+id] = g, h
	var once sync.Once
	return h, func() { once.Do(func() { close(g) }) }
}

func (s *gateStore) wait(op, id string) {
	s.mu.Lock()
	g, h := s.gates[op+id], s.hit[op+id]
	s.mu.Unlock()
	if g == nil {
		return
	}
	select {
	case <-h:
	default:
		close(h)
	}
	<-g
}

func (s *gateStore) Load(ctx context.Context, id string) ([]byte, error) {
	s.wait("load", id)
	return s.mapStore.Load(ctx, id)
}

func (s *gateStore) Save(ctx context.Context, id string, data []byte, exp time.Time) error {
	s.wait("save", id)
	return s.mapStore.Save(ctx, id, data, exp)
}

func (s *gateStore) Delete(ctx context.Context, id string) error {
	s.wait("delete", id)
	return s.mapStore.Delete(ctx, id)
}

// returnsWithin runs f and reports whether it returned within d. f keeps
// running in the background otherwise; done is closed when it returns.
func returnsWithin(d time.Duration, f func()) (ok bool, done <-chan struct{}) {
	c := make(chan struct{})
	go func() { defer close(c); f() }()
	select {
	case <-c:
		return true, c
	case <-time.After(d):
		return false, c
	}
}

// TestCallerHeldHostageByOtherSessionsStorage: an Update on session Y
// returns once its own write completed, even while an unrelated session
// X's write hangs in the same storage actor: storage I/O never runs on a
// caller's goroutine for another session.
func TestCallerHeldHostageByOtherSessionsStorage(t *testing.T) {
	store := newGateStore()
	eng := newEngine(t, engine.Options{StorageActors: 1})
	k := register(t, eng, storage.FromBytes(store), engine.KindOptions{})
	x, err := k.Create(t.Context(), []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	y, err := k.Create(t.Context(), []byte("0"))
	if err != nil {
		t.Fatal(err)
	}

	yArrived, releaseY := store.gate("save", y)
	xArrived, releaseX := store.gate("save", x)
	defer releaseX()
	defer releaseY()

	// Y's caller finds the storage actor idle and runs it; Y's save waits.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var yErr error
	yDone := make(chan struct{})
	go func() { defer close(yDone); _, yErr = k.Update(ctx, y, incr) }()
	<-yArrived
	// X's write queues behind it in the same storage actor's mailbox.
	go func() { _, _ = k.Update(context.Background(), x, incr) }()
	time.Sleep(100 * time.Millisecond) // let X's request reach the storage mailbox
	releaseY()                         // Y's own write completes now
	select {
	case <-xArrived:
		t.Log("X's save is running, on Y's caller goroutine")
	case <-time.After(10 * time.Second):
		t.Fatal("X's save never started")
	}
	select {
	case <-yDone:
		t.Logf("Update(Y) returned: %v", yErr)
	case <-time.After(10 * time.Second):
		releaseX()
		<-yDone
		t.Fatalf("Update(Y) with a 200ms deadline was still blocked 10s after its own write finished: " +
			"its goroutine was running session X's hung storage call")
	}
}

// TestCloseIgnoresCtxDuringFinalFlush: a Close whose final flush hangs in
// the storage gives up when its context ends, and so does a concurrent
// Close; a later Close finishes the job.
func TestCloseIgnoresCtxDuringFinalFlush(t *testing.T) {
	store := newGateStore()
	clock := newFakeClock()
	eng, err := engine.New(engine.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	k := register(t, eng, storage.FromBytes(store), engine.KindOptions{IdleTimeout: 30 * time.Minute})
	id, err := k.Create(t.Context(), []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second) // slide the expiry by less than the touch interval:
	if _, err := k.Load(t.Context(), id); err != nil {
		t.Fatal(err) // no write now, the flush at passivation will write it
	}
	arrived, release := store.gate("save", id)
	defer func() {
		release()
		if err := eng.Close(context.Background()); err != nil {
			t.Errorf("final Close: %v", err)
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	ok, done := returnsWithin(10*time.Second, func() { _ = eng.Close(ctx) })
	<-arrived
	if !ok {
		// A second Close with its own short deadline.
		ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel2()
		ok2, done2 := returnsWithin(10*time.Second, func() { _ = eng.Close(ctx2) })
		release()
		<-done
		<-done2
		t.Fatalf("Close with a 200ms deadline was still running after 10s (blocked in a flush on its own goroutine); "+
			"a concurrent Close with a 100ms deadline returned in time: %v", ok2)
	}
}

// TestInvalidateThroughAliasPartial: Invalidate(old ID) deletes the alias,
// then forwards to the renewed ID. If the caller's deadline passes in
// between, the forwarded operation still runs (it has started), so the
// renewed session cannot outlive a retried Invalidate(old ID).
func TestInvalidateThroughAliasPartial(t *testing.T) {
	store := newGateStore()
	eng := newEngine(t, engine.Options{})
	k := register(t, eng, storage.FromBytes(store), engine.KindOptions{RenewGrace: time.Minute})
	old, err := k.Create(t.Context(), []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := k.Renew(t.Context(), old)
	if err != nil {
		t.Fatal(err)
	}
	arrived, release := store.gate("delete", old)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- k.Invalidate(ctx, old) }()
	<-arrived
	<-ctx.Done() // the alias delete is slow: the deadline passes during it
	release()
	err = <-errc
	t.Logf("first Invalidate(old): %v", err)
	// The caller retries, as it should after a timeout.
	if err := k.Invalidate(context.Background(), old); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if v, err := k.Load(context.Background(), renewed); !errors.Is(err, engine.ErrNoSession) {
		t.Fatalf("after Invalidate(old) failed once and then succeeded, the renewed session is still alive: %q, %v", v, err)
	}
}
