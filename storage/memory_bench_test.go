package storage_test

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-sessions/steward/storage"
)

// benchIDs returns n distinct IDs of 32 characters, the length of a 128-bit
// hex session ID.
func benchIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%032x", uint64(i)*0x9E3779B97F4A7C15)
	}
	return ids
}

func BenchmarkMemory(b *testing.B) {
	const sessions = 10_000
	ids := benchIDs(sessions)
	value := make([]byte, 100)
	expires := time.Now().Add(time.Hour)

	// start hands each parallel goroutine its own offset into ids.
	var start atomic.Uint64
	nextStart := func() int { return int(start.Add(7919) % sessions) }

	b.Run("Save", func(b *testing.B) {
		m := storage.NewMemory(storage.MemoryOptions{})
		ctx := context.Background()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := nextStart(); pb.Next(); i++ {
				if err := m.Save(ctx, ids[i%sessions], value, expires); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})

	b.Run("Load", func(b *testing.B) {
		m := storage.NewMemory(storage.MemoryOptions{})
		ctx := context.Background()
		for _, id := range ids {
			if err := m.Save(ctx, id, value, expires); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for i := nextStart(); pb.Next(); i++ {
				if _, err := m.Load(ctx, ids[i%sessions]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})

	b.Run("WriteRead", func(b *testing.B) {
		// The streaming path, which copies: one Write and one Read per op.
		m := storage.NewMemory(storage.MemoryOptions{})
		ctx := context.Background()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]byte, 100)
			write := func(w io.Writer) error { _, err := w.Write(value); return err }
			read := func(r io.Reader) error { _, err := io.ReadFull(r, buf); return err }
			for i := nextStart(); pb.Next(); i++ {
				id := ids[i%sessions]
				if err := m.Write(ctx, id, expires, write); err != nil {
					b.Error(err)
					return
				}
				if err := m.Read(ctx, id, read); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})

	b.Run("Footprint1M", benchmarkFootprint)
}

// benchmarkFootprint measures the live heap that one million sessions of 100
// bytes take, saved through the byte API as the engine does, and reports it
// per session: B/session counts everything (value, ID, entry, LRU and map),
// overhead-B/session leaves out the 100-byte value and the 32-byte ID.
func benchmarkFootprint(b *testing.B) {
	const (
		sessions = 1_000_000
		size     = 100
		idLen    = 32
	)
	ctx := context.Background()
	expires := time.Now().Add(time.Hour)
	var perSession float64
	for range b.N {
		b.StopTimer()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()

		m := storage.NewMemory(storage.MemoryOptions{})
		for i := range sessions {
			id := fmt.Sprintf("%032x", uint64(i)*0x9E3779B97F4A7C15)
			if err := m.Save(ctx, id, make([]byte, size), expires); err != nil {
				b.Fatal(err)
			}
		}

		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		if n := m.Len(); n != sessions {
			b.Fatalf("Len() = %d, want %d", n, sessions)
		}
		runtime.KeepAlive(m)
		perSession = float64(after.HeapAlloc-before.HeapAlloc) / sessions
		b.StartTimer()
	}
	b.ReportMetric(perSession, "B/session")
	b.ReportMetric(perSession-size-idLen, "overhead-B/session")
	b.ReportMetric(perSession*sessions/(1<<20), "MiB/1M-sessions")
}
