package engine_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

// TestFlashShownOnce: a flash message added by one request is popped by
// exactly one of 16 concurrent requests of the same client, on each
// server-side storage; the next pop finds none.
func TestFlashShownOnce(t *testing.T) {
	for name, mk := range ownerStorages(t) {
		t.Run(name, func(t *testing.T) {
			eng := newEngine(t, engine.Options{})
			f, err := engine.RegisterFlash[string](eng, "FLASH", engine.KindOptions{Storage: mk(nil)})
			if err != nil {
				t.Fatal(err)
			}
			for round := range 20 {
				b := f.Kind().Raw().Bind("")
				if err := f.Add(engine.WithBindings(context.Background(), b), "saved", "twice"); err != nil {
					t.Fatal(err)
				}
				id := b.Outcome().ID
				var shown atomic.Int64
				var wg sync.WaitGroup
				for range 16 {
					wg.Go(func() {
						ctx := engine.WithBindings(context.Background(), f.Kind().Raw().Bind(id))
						msgs, err := f.Pop(ctx)
						if err != nil {
							t.Error(err)
							return
						}
						if msgs != nil {
							if !slices.Equal(msgs, []string{"saved", "twice"}) {
								t.Errorf("popped %q", msgs)
							}
							shown.Add(1)
						}
					})
				}
				wg.Wait()
				if shown.Load() != 1 {
					t.Fatalf("round %d: the flash was shown %d times, want once", round, shown.Load())
				}
				if _, err := f.Kind().Raw().Load(context.Background(), id); !errors.Is(err, engine.ErrNoSession) {
					t.Fatalf("after the pop: %v", err)
				}
			}
		})
	}
}

// TestTakeOnce: of 16 concurrent Takes of one session exactly one gets its
// value.
func TestTakeOnce(t *testing.T) {
	eng := newEngine(t, engine.Options{})
	k := register(t, eng, storage.FromBytes(newMapStore()), engine.KindOptions{})
	id, err := k.Create(context.Background(), []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	var got atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			v, err := k.Take(context.Background(), id)
			switch {
			case err == nil && string(v) == "v":
				got.Add(1)
			case errors.Is(err, engine.ErrNoSession):
			default:
				t.Errorf("Take = %q, %v", v, err)
			}
		})
	}
	wg.Wait()
	if got.Load() != 1 {
		t.Fatalf("%d Takes got the value, want 1", got.Load())
	}
}
