package engine_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

func benchOwnerStorages(b *testing.B) map[string]storage.Storage {
	d, err := storage.NewDirectory(b.TempDir(), storage.DirectoryOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return map[string]storage.Storage{"memory": storage.NewMemory(storage.MemoryOptions{}), "directory": d}
}

// BenchmarkLoginWithOwner: create a session and bind it to an owner (a
// new owner each time, so MaxPerOwner's look at the owner's other
// sessions costs nothing), as a login does after Renew.
func BenchmarkLoginWithOwner(b *testing.B) {
	for name, s := range benchOwnerStorages(b) {
		b.Run(name, func(b *testing.B) {
			eng := newEngine(b, engine.Options{})
			k := register(b, eng, s, engine.KindOptions{MaxPerOwner: 10})
			ctx := context.Background()
			b.ReportAllocs()
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
	}
}

// BenchmarkSessions10: list an owner's 10 sessions.
func BenchmarkSessions10(b *testing.B) {
	for name, s := range benchOwnerStorages(b) {
		b.Run(name, func(b *testing.B) {
			eng := newEngine(b, engine.Options{})
			k := register(b, eng, s, engine.KindOptions{})
			ctx := context.Background()
			for range 10 {
				id, err := k.Create(ctx, []byte("v"))
				if err != nil {
					b.Fatal(err)
				}
				if err := k.BindOwner(ctx, id, "ann"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				infos, err := k.Sessions(ctx, "ann", "")
				if err != nil || len(infos) != 10 {
					b.Fatal(len(infos), err)
				}
			}
		})
	}
}
