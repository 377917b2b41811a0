package engine_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

// ownerStorages are the storages the owner index is tested on: memory, a
// storage that blocks (actors do its I/O), and a real directory, each on
// the clock given (nil: time.Now).
func ownerStorages(t *testing.T) map[string]func(now func() time.Time) storage.Storage {
	return map[string]func(now func() time.Time) storage.Storage{
		"memory":   func(now func() time.Time) storage.Storage { return storage.NewMemory(storage.MemoryOptions{Now: now}) },
		"blocking": func(func() time.Time) storage.Storage { return storage.FromBytes(newMapStore()) },
		"directory": func(now func() time.Time) storage.Storage {
			d, err := storage.NewDirectory(t.TempDir(), storage.DirectoryOptions{Now: now})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			return d
		},
	}
}

func handles(t *testing.T, k *engine.RawKind, owner, current string) []string {
	t.Helper()
	infos, err := k.Sessions(context.Background(), owner, current)
	if err != nil {
		t.Fatalf("Sessions(%s): %v", owner, err)
	}
	var hs []string
	for _, in := range infos {
		hs = append(hs, in.Handle)
	}
	return hs
}

func login(t *testing.T, k *engine.RawKind, owner string) string {
	t.Helper()
	id, err := k.Create(context.Background(), []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	if err := k.BindOwner(context.Background(), id, owner); err != nil {
		t.Fatalf("BindOwner: %v", err)
	}
	return id
}

// TestOwnerListingNeverStale: a session that expires (idle or absolute),
// is invalidated, renewed or evicted is gone from its owner's listing at
// once, and every session listed can be used.
func TestOwnerListingNeverStale(t *testing.T) {
	for name, mk := range ownerStorages(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			clock := newFakeClock()
			eng := newEngine(t, engine.Options{Now: clock.Now})
			k := register(t, eng, mk(clock.Now), engine.KindOptions{IdleTimeout: 10 * time.Minute, Lifetime: time.Hour, MaxPerOwner: 4})
			idle := login(t, k, "ann")
			clock.Advance(time.Minute)
			invalidated := login(t, k, "ann")
			renewed := login(t, k, "ann")
			kept := login(t, k, "ann")
			if n := len(handles(t, k, "ann", kept)); n != 4 {
				t.Fatalf("%d sessions listed after 4 logins", n)
			}

			// Idle expiry: "idle" is not used for 10 minutes, the others are.
			for range 2 {
				clock.Advance(5*time.Minute + time.Second)
				for _, id := range []string{invalidated, renewed, kept} {
					if _, err := k.Load(ctx, id); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := k.Invalidate(ctx, invalidated); err != nil {
				t.Fatal(err)
			}
			newID, err := k.Renew(ctx, renewed)
			if err != nil {
				t.Fatal(err)
			}
			infos, err := k.Sessions(ctx, "ann", kept)
			if err != nil {
				t.Fatal(err)
			}
			if len(infos) != 2 {
				t.Fatalf("listed %d sessions, want 2 (kept and the renewed one's new ID): %+v", len(infos), infos)
			}
			current := 0
			for _, in := range infos {
				if in.Current {
					current++
				}
			}
			if current != 1 {
				t.Fatalf("%d sessions flagged current, want 1", current)
			}
			for _, in := range infos {
				if in.Handle == engine.StorageKey(idle) {
					t.Fatal("the idle-expired session is listed")
				}
			}
			if o, err := k.Owner(ctx, newID); err != nil || o != "ann" {
				t.Fatalf("the renewed session's owner = %q, %v", o, err)
			}

			// Eviction: the fifth... MaxPerOwner is 4: two more logins
			// evict the least recently used.
			clock.Advance(time.Second)
			if _, err := k.Load(ctx, kept); err != nil { // kept is used most recently
				t.Fatal(err)
			}
			a, b, c := login(t, k, "ann"), login(t, k, "ann"), login(t, k, "ann")
			live := handles(t, k, "ann", "")
			if len(live) != 4 {
				t.Fatalf("%d sessions listed with MaxPerOwner 4", len(live))
			}
			if _, err := k.Load(ctx, newID); !errors.Is(err, engine.ErrNoSession) {
				t.Fatalf("the least recently used session still answers: %v", err)
			}
			for _, id := range []string{kept, a, b, c} {
				if !slices.Contains(live, engine.StorageKey(id)) {
					t.Fatalf("a live session is not listed")
				}
				if _, err := k.Load(ctx, id); err != nil {
					t.Fatalf("a listed session cannot be used: %v", err)
				}
			}

			// Absolute expiry: an hour after creation, even if busy.
			for range 12 {
				clock.Advance(5 * time.Minute)
				for _, id := range []string{kept, a, b, c} {
					_, _ = k.Load(ctx, id)
				}
			}
			if hs := handles(t, k, "ann", ""); len(hs) != 0 {
				t.Fatalf("%d sessions listed past their lifetime", len(hs))
			}
		})
	}
}

// TestMaxPerOwnerConcurrentLogins: 64 concurrent logins of one owner with
// MaxPerOwner 3 leave exactly 3 live sessions, all listed.
func TestMaxPerOwnerConcurrentLogins(t *testing.T) {
	for name, mk := range ownerStorages(t) {
		t.Run(name, func(t *testing.T) {
			eng := newEngine(t, engine.Options{})
			k := register(t, eng, mk(nil), engine.KindOptions{MaxPerOwner: 3})
			ids := make([]string, 64)
			var wg sync.WaitGroup
			for i := range ids {
				wg.Go(func() {
					id, err := k.Create(context.Background(), []byte("0"))
					if err != nil {
						t.Error(err)
						return
					}
					ids[i] = id
					// A login that a concurrent one evicted at once finds
					// its session gone.
					if err := k.BindOwner(context.Background(), id, "bob"); err != nil && !errors.Is(err, engine.ErrNoSession) {
						t.Errorf("BindOwner: %v", err)
					}
				})
			}
			wg.Wait()
			alive := 0
			for _, id := range ids {
				if _, err := k.Load(context.Background(), id); err == nil {
					alive++
				} else if !errors.Is(err, engine.ErrNoSession) {
					t.Fatal(err)
				}
			}
			if listed := len(handles(t, k, "bob", "")); alive != 3 || listed != 3 {
				t.Fatalf("%d sessions alive and %d listed after 64 logins with MaxPerOwner 3", alive, listed)
			}
		})
	}
}

// TestRefuseNew: with RefuseNew, the login past the bound fails with
// ErrTooManySessions and leaves the session unowned.
func TestRefuseNew(t *testing.T) {
	eng := newEngine(t, engine.Options{})
	k := register(t, eng, storage.NewMemory(storage.MemoryOptions{}), engine.KindOptions{MaxPerOwner: 2, OwnerLimit: engine.RefuseNew})
	login(t, k, "cy")
	login(t, k, "cy")
	id, err := k.Create(context.Background(), []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := k.BindOwner(context.Background(), id, "cy"); !errors.Is(err, engine.ErrTooManySessions) {
		t.Fatalf("third BindOwner = %v, want ErrTooManySessions", err)
	}
	if o, _ := k.Owner(context.Background(), id); o != "" {
		t.Fatalf("refused session owned by %q", o)
	}
	if n := len(handles(t, k, "cy", "")); n != 2 {
		t.Fatalf("%d listed, want 2", n)
	}
}

// TestRevokeOthersUnderLoad: while each of 8 sessions of one owner is used
// by concurrent requests, InvalidateOthers from one of them ends the
// other 7: from its return on, none of their operations succeeds.
func TestRevokeOthersUnderLoad(t *testing.T) {
	for name, mk := range ownerStorages(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			eng := newEngine(t, engine.Options{})
			k := register(t, eng, mk(nil), engine.KindOptions{})
			ids := make([]string, 8)
			for i := range ids {
				ids[i] = login(t, k, "dee")
			}
			var revoked atomic.Bool
			var lateSuccess atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for _, id := range ids[1:] {
				for range 4 {
					wg.Go(func() {
						for {
							select {
							case <-stop:
								return
							default:
							}
							after := revoked.Load()
							_, err := k.Update(ctx, id, incr)
							if err == nil && after {
								lateSuccess.Add(1)
							}
						}
					})
				}
			}
			time.Sleep(20 * time.Millisecond)
			n, err := k.InvalidateOwner(ctx, "dee", ids[0])
			revoked.Store(true)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
			close(stop)
			wg.Wait()
			if n != 7 {
				t.Fatalf("InvalidateOwner ended %d sessions, want 7", n)
			}
			if lateSuccess.Load() != 0 {
				t.Fatalf("%d updates of revoked sessions succeeded after the revocation returned", lateSuccess.Load())
			}
			if hs := handles(t, k, "dee", ids[0]); len(hs) != 1 || hs[0] != engine.StorageKey(ids[0]) {
				t.Fatalf("listed %v after revoking the others", hs)
			}
		})
	}
}

// TestInvalidateHandle: a handle revokes its session only for its owner;
// a handle is not an ID.
func TestInvalidateHandle(t *testing.T) {
	ctx := context.Background()
	eng := newEngine(t, engine.Options{})
	k := register(t, eng, storage.NewMemory(storage.MemoryOptions{}), engine.KindOptions{})
	a := login(t, k, "eve")
	b := login(t, k, "eve")
	other := login(t, k, "fay")
	h := engine.StorageKey(b)
	if _, err := k.Load(ctx, h); !errors.Is(err, engine.ErrNoSession) {
		t.Fatalf("a handle used as an ID: %v", err)
	}
	if err := k.InvalidateHandle(ctx, "fay", h); !errors.Is(err, engine.ErrNoSession) {
		t.Fatalf("another owner's handle: %v", err)
	}
	if err := k.InvalidateHandle(ctx, "eve", h); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Load(ctx, b); !errors.Is(err, engine.ErrNoSession) {
		t.Fatalf("revoked session: %v", err)
	}
	for _, id := range []string{a, other} {
		if _, err := k.Load(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.InvalidateHandle(ctx, "eve", "not a handle"); !errors.Is(err, engine.ErrNoSession) {
		t.Fatalf("junk handle: %v", err)
	}
	if err := k.BindOwner(ctx, a, ""); !errors.Is(err, engine.ErrBadOwner) {
		t.Fatalf("empty owner: %v", err)
	}
}
