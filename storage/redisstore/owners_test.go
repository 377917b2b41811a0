package redisstore_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/internal/redistest"
	"github.com/steward-sessions/steward/storage/redisstore"
)

// TestMaxPerOwnerThreeInstances: 64 concurrent logins of one user spread
// over three engine instances on one Redis, MaxPerOwner 3: exactly 3
// sessions stay alive, and every instance lists exactly those.
func TestMaxPerOwnerThreeInstances(t *testing.T) {
	srv := redistest.Start(t)
	kinds := instances(t, srv, 3, engine.KindOptions{MaxPerOwner: 3}, redisstore.Options{})
	ctx := context.Background()
	ids := make([]string, 64)
	var wg sync.WaitGroup
	for i := range ids {
		k := kinds[i%len(kinds)]
		wg.Go(func() {
			id, err := k.Create(ctx, []byte("0"))
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = id
			if err := k.BindOwner(ctx, id, "ann"); err != nil && !errors.Is(err, engine.ErrNoSession) {
				t.Errorf("BindOwner: %v", err)
			}
		})
	}
	wg.Wait()
	alive := map[string]bool{}
	for _, id := range ids {
		if _, err := kinds[0].Load(ctx, id); err == nil {
			alive[engine.StorageKey(id)] = true
		} else if !errors.Is(err, engine.ErrNoSession) {
			t.Fatal(err)
		}
	}
	if len(alive) != 3 {
		t.Fatalf("%d sessions alive after 64 logins with MaxPerOwner 3", len(alive))
	}
	for i, k := range kinds {
		infos, err := k.Sessions(ctx, "ann", "")
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) != 3 {
			t.Fatalf("instance %d lists %d sessions, want 3", i, len(infos))
		}
		for _, in := range infos {
			if !alive[in.Handle] {
				t.Fatalf("instance %d lists a session that is not alive", i)
			}
		}
	}
	// Revoking all from one instance ends them on every instance.
	if n, err := kinds[1].InvalidateOwner(ctx, "ann", ""); err != nil || n != 3 {
		t.Fatalf("InvalidateOwner = %d, %v; want 3", n, err)
	}
	for _, id := range ids {
		if _, err := kinds[2].Load(ctx, id); !errors.Is(err, engine.ErrNoSession) {
			t.Fatalf("a revoked session answers on another instance: %v", err)
		}
	}
}

// TestTakeOnceThreeInstances: a flash-like value taken at once through
// three instances is got by exactly one Take.
func TestTakeOnceThreeInstances(t *testing.T) {
	srv := redistest.Start(t)
	kinds := instances(t, srv, 3, engine.KindOptions{}, redisstore.Options{})
	ctx := context.Background()
	for round := range 20 {
		id, err := kinds[0].Create(ctx, []byte("v"))
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		got := 0
		var wg sync.WaitGroup
		for i := range 12 {
			wg.Go(func() {
				v, err := kinds[i%len(kinds)].Take(ctx, id)
				switch {
				case err == nil && string(v) == "v":
					mu.Lock()
					got++
					mu.Unlock()
				case errors.Is(err, engine.ErrNoSession):
				default:
					t.Errorf("Take = %q, %v", v, err)
				}
			})
		}
		wg.Wait()
		if got != 1 {
			t.Fatalf("round %d: %d Takes got the value, want 1", round, got)
		}
	}
}

// BenchmarkOwnerRedis: a login with owner binding, and listing 10
// sessions, on a real Redis.
func BenchmarkOwnerRedis(b *testing.B) {
	srv := redistest.Start(b)
	k := instances(b, srv, 1, engine.KindOptions{MaxPerOwner: 10}, redisstore.Options{})[0]
	ctx := context.Background()
	b.Run("login", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			id, err := k.Create(ctx, []byte("v"))
			if err != nil {
				b.Fatal(err)
			}
			if err := k.BindOwner(ctx, id, "user"+strconv.Itoa(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sessions10", func(b *testing.B) {
		for range 10 {
			id, err := k.Create(ctx, []byte("v"))
			if err != nil {
				b.Fatal(err)
			}
			if err := k.BindOwner(ctx, id, "ann"); err != nil {
				b.Fatal(err)
			}
		}
		for b.Loop() {
			if infos, err := k.Sessions(ctx, "ann", ""); err != nil || len(infos) != 10 {
				b.Fatal(len(infos), err)
			}
		}
	})
}

// TestEachOnRedis: Each on one instance lists exactly the live sessions
// that three instances made, not the owners' indexes or renewal aliases.
func TestEachOnRedis(t *testing.T) {
	srv := redistest.Start(t)
	kinds := instances(t, srv, 3, engine.KindOptions{}, redisstore.Options{})
	ctx := context.Background()
	want := map[string]bool{}
	for i := range 120 {
		k := kinds[i%3]
		id, err := k.Create(ctx, []byte("v"))
		if err != nil {
			t.Fatal(err)
		}
		if err := k.BindOwner(ctx, id, "u"+strconv.Itoa(i%5)); err != nil {
			t.Fatal(err)
		}
		switch i % 4 {
		case 1:
			if err := k.Invalidate(ctx, id); err != nil {
				t.Fatal(err)
			}
			continue
		case 2:
			if id, err = k.Renew(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		want[engine.StorageKey(id)] = true
	}
	got := 0
	err := kinds[1].Each(ctx, func(in engine.SessionInfo) bool {
		if !want[in.Handle] {
			t.Fatalf("listed a session that is not alive")
		}
		got++
		return true
	})
	if err != nil || got != len(want) {
		t.Fatalf("Each listed %d of %d: %v", got, len(want), err)
	}
}
