package engine_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

// syncBuffer collects log output; safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// namingStore fails, when told to, with errors that name the key they were
// given, as real storages do (a file path, a Redis key); it can also fail
// only the saves after the next few, and hold garbage under a key.
type namingStore struct {
	*mapStore
	saveBudget atomic.Int64 // < 0: no limit; else saves left before they fail
	deletesOff atomic.Bool
}

func (s *namingStore) Save(ctx context.Context, id string, data []byte, exp time.Time) error {
	if s.saveBudget.Load() >= 0 && s.saveBudget.Add(-1) < 0 {
		return fmt.Errorf("saving %s: %w", id, errDown)
	}
	if err := s.mapStore.Save(ctx, id, data, exp); err != nil {
		return fmt.Errorf("saving %s: %w", id, err)
	}
	return nil
}

func (s *namingStore) Load(ctx context.Context, id string) ([]byte, error) {
	v, err := s.mapStore.Load(ctx, id)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("loading %s: %w", id, err)
	}
	return v, err
}

func (s *namingStore) Delete(ctx context.Context, id string) error {
	if s.deletesOff.Load() {
		return fmt.Errorf("deleting %s: %w", id, errDown)
	}
	if err := s.mapStore.Delete(ctx, id); err != nil {
		return fmt.Errorf("deleting %s: %w", id, err)
	}
	return nil
}

// TestLogsNeverCarryRawIDs drives the engine through every path that logs
// (a panicking update, an unreadable record, a value that does not decode,
// a failed expiry refresh, a failed removal of an expired session, a
// renewal that leaves an orphan) with its logs, protoactor's included, at
// Debug: each message is logged, and no raw session ID appears in any of
// them; only their storage keys (digests) may.
func TestLogsNeverCarryRawIDs(t *testing.T) {
	var logs syncBuffer
	clock := newFakeClock()
	eng := newEngine(t, engine.Options{
		Logger:         slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:            clock.Now,
		PassivateAfter: 5 * time.Millisecond,
	})
	st := &namingStore{mapStore: newMapStore()}
	st.saveBudget.Store(-1)
	k := register(t, eng, storage.FromBytes(st), engine.KindOptions{IdleTimeout: time.Hour})
	type counter struct{ N int }
	typed, err := engine.Register[counter](eng, "typed", engine.KindOptions{Storage: storage.FromBytes(st)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var ids []string
	create := func(v string) string {
		t.Helper()
		id, err := k.Create(ctx, []byte(v))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		return id
	}

	// A panicking update function (answered, not logged), and an ID
	// generator that panics inside the actor, on Renew.
	id := create("1")
	_, _ = k.Update(ctx, id, func([]byte) ([]byte, error) { panic("boom") })
	var broken atomic.Bool
	panicky, err := engine.RegisterRaw(eng, "panicky", engine.KindOptions{
		Storage: storage.FromBytes(st),
		NewID: func() (string, error) {
			if broken.Load() {
				panic("the generator broke")
			}
			return rand.Text(), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	pid, err := panicky.Create(ctx, []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, pid)
	broken.Store(true)
	if _, err := panicky.Renew(ctx, pid); !errors.Is(err, engine.ErrPanic) {
		t.Fatalf("Renew with a panicking generator: %v", err)
	}

	// An unreadable record, read by a fresh actor.
	garbled := create("2")
	waitFor(t, "the actors to passivate", func() bool { return eng.Stats().LiveActors == 0 })
	st.mu.Lock()
	st.m[engine.StorageKey(garbled)] = []byte("garbage")
	st.mu.Unlock()
	_, _ = k.Load(ctx, garbled)

	// A value that does not decode into the typed kind's type.
	undecodable, err := typed.Raw().Create(ctx, []byte("not json"))
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, undecodable)
	_, _, _ = typed.Get(engine.WithBindings(ctx, typed.Raw().Bind(undecodable)))

	// A sliding expiry that fails to flush at passivation.
	sliding := create("3")
	clock.Advance(time.Second)
	if _, err := k.Load(ctx, sliding); err != nil {
		t.Fatal(err)
	}
	st.saveBudget.Store(0)
	waitFor(t, "the actors to passivate", func() bool { return eng.Stats().LiveActors == 0 })
	st.saveBudget.Store(-1)

	// An expired session whose removal fails.
	expired := create("4")
	clock.Advance(2 * time.Hour)
	st.deletesOff.Store(true)
	_, _ = k.Load(ctx, expired)

	// A renewal whose alias write fails, and whose cleanup fails too.
	renewed := create("5")
	st.saveBudget.Store(1) // the new ID's record, not the alias
	newID, err := k.Renew(ctx, renewed)
	if err == nil {
		t.Fatalf("Renew with the alias write failing: new ID, no error")
	}
	ids = append(ids, newID)
	st.saveBudget.Store(-1)
	st.deletesOff.Store(false)

	if err := eng.Close(ctx); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, msg := range []string{
		"panic in a session actor",
		"unreadable session record",
		"does not decode",
		"refreshing a session's expiry",
		"removing an expired session",
		"orphan session",
	} {
		if !strings.Contains(out, msg) {
			t.Errorf("nothing logged %q", msg)
		}
	}
	for _, id := range ids {
		if id != "" && strings.Contains(out, id) {
			t.Errorf("the logs carry the raw session ID %s", id)
		}
	}
	if !strings.Contains(out, engine.StorageKey(expired)) {
		t.Errorf("the storage's error (naming the storage key) is not in the logs")
	}
	if t.Failed() {
		t.Logf("logs:\n%s", out)
	}
}
