package engine_test

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/internal/fakeclock"
	"github.com/steward-sessions/steward/storage"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errDown = errors.New("test storage is down")

// mapStore is a BytesStorage over a map that can be made to fail, so the
// tests see exactly what reached the storage.
type mapStore struct {
	mu   sync.Mutex
	m    map[string][]byte
	down atomic.Bool
}

func newMapStore() *mapStore { return &mapStore{m: make(map[string][]byte)} }

func (s *mapStore) Load(_ context.Context, id string) ([]byte, error) {
	if s.down.Load() {
		return nil, errDown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[id]
	if !ok {
		return nil, storage.ErrNotFound
	}
	return v, nil
}

func (s *mapStore) Save(_ context.Context, id string, data []byte, _ time.Time) error {
	if s.down.Load() {
		return errDown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[id] = data
	return nil
}

func (s *mapStore) Delete(_ context.Context, id string) error {
	if s.down.Load() {
		return errDown
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

func (s *mapStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// fakeClock is an engine.Options.Now that moves only when told.
type fakeClock = fakeclock.Clock

func newFakeClock() *fakeClock { return fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) }

// newEngine starts an engine that the test closes at its end.
func newEngine(t testing.TB, opts engine.Options) *engine.Engine {
	t.Helper()
	eng, err := engine.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := eng.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return eng
}

func register(t testing.TB, eng *engine.Engine, s storage.Storage, opts engine.KindOptions) *engine.RawKind {
	t.Helper()
	opts.Storage = s
	k, err := engine.RegisterRaw(eng, "SESSION_ID", opts)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// incr is a byte-level update function: the value is a decimal counter.
func incr(old []byte) ([]byte, error) {
	n, _ := strconv.Atoi(string(old))
	return strconv.AppendInt(nil, int64(n+1), 10), nil
}

func count(t testing.TB, k *engine.RawKind, id string) int {
	t.Helper()
	v, err := k.Load(context.Background(), id)
	if err != nil {
		t.Fatalf("Load(%s): %v", id, err)
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		t.Fatalf("Load(%s) = %q", id, v)
	}
	return n
}

// waitFor polls cond until it holds or a generous deadline passes; it never
// asserts a duration, only that the condition is eventually reached.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
