package engine_test

import (
	"context"
	"errors"
	"testing"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

// TestEach: Each lists exactly the live sessions, once each: not the
// invalidated ones, not the IDs renewed away (their aliases), not the
// owners' indexes.
func TestEach(t *testing.T) {
	stores := map[string]func() storage.Storage{
		"memory": func() storage.Storage { return storage.NewMemory(storage.MemoryOptions{}) },
		"directory": func() storage.Storage {
			d, err := storage.NewDirectory(t.TempDir(), storage.DirectoryOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		"cached directory": func() storage.Storage {
			d, err := storage.NewCachedDirectory(t.TempDir(), storage.DirectoryOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
	}
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			eng := newEngine(t, engine.Options{})
			k := register(t, eng, mk(), engine.KindOptions{})
			want := map[string]string{} // handle → owner
			for i := range 300 {
				id, err := k.Create(ctx, []byte("v"))
				if err != nil {
					t.Fatal(err)
				}
				owner := ""
				if i%3 == 0 {
					owner = "o" + string(rune('a'+i%7))
					if err := k.BindOwner(ctx, id, owner); err != nil {
						t.Fatal(err)
					}
				}
				switch i % 10 {
				case 1:
					if err := k.Invalidate(ctx, id); err != nil {
						t.Fatal(err)
					}
					continue
				case 2, 3:
					if id, err = k.Renew(ctx, id); err != nil {
						t.Fatal(err)
					}
				}
				want[engine.StorageKey(id)] = owner
			}
			got := map[string]string{}
			err := k.Each(ctx, func(in engine.SessionInfo) bool {
				if _, dup := got[in.Handle]; dup {
					t.Fatalf("session listed twice")
				}
				got[in.Handle] = in.Owner
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("Each listed %d sessions, want %d", len(got), len(want))
			}
			for h, o := range want {
				if g, ok := got[h]; !ok || g != o {
					t.Fatalf("session %s: listed %v with owner %q, want owner %q", h, ok, g, o)
				}
			}
			n := 0
			if err := k.Each(ctx, func(engine.SessionInfo) bool { n++; return n < 10 }); err != nil || n != 10 {
				t.Fatalf("stopping after 10: %d, %v", n, err)
			}
		})
	}
	eng := newEngine(t, engine.Options{})
	k := register(t, eng, storage.FromBytes(newMapStore()), engine.KindOptions{})
	if err := k.Each(context.Background(), func(engine.SessionInfo) bool { return true }); !errors.Is(err, engine.ErrCannotList) {
		t.Fatalf("Each on a storage that cannot list: %v", err)
	}
}
