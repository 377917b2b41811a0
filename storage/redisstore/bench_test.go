package redisstore_test

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-sessions/steward/internal/redistest"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/storage/redisstore"
)

// BenchmarkRedis measures the calls the engine makes on a Store, from 64
// goroutines as 64 concurrent requests would, against a local redis-server.
//
//	go test -run '^$' -bench Redis ./storage/redisstore
func BenchmarkRedis(b *testing.B) {
	srv := redistest.Start(b)
	s := newStore(b, srv, redisstore.Options{Prefix: "bench:"})
	value := make([]byte, 200) // a session record of a typical size
	const goroutines = 64
	parallel := func(b *testing.B, body func(g int, pb *testing.PB)) {
		b.SetParallelism(max(1, goroutines/runtime.GOMAXPROCS(0)))
		var next atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) { body(int(next.Add(1)), pb) })
	}
	expires := time.Now().Add(time.Hour)

	// SaveIf: each goroutine updates its own session, as the engine does
	// for many sessions.
	b.Run("SaveIf", func(b *testing.B) {
		parallel(b, func(g int, pb *testing.PB) {
			id := fmt.Sprintf("saveif-%d", g)
			var v uint64
			for pb.Next() {
				nv, _, cv, err := s.SaveIf(b.Context(), id, value, expires, v)
				switch {
				case errors.Is(err, storage.ErrConflict):
					v = cv // a leftover of an earlier run
				case err != nil:
					b.Error(err)
					return
				default:
					v = nv
				}
			}
		})
	})

	// LoadVersioned: each goroutine reads its own session.
	b.Run("LoadVersioned", func(b *testing.B) {
		parallel(b, func(g int, pb *testing.PB) {
			id := fmt.Sprintf("load-%d", g)
			if err := s.Save(b.Context(), id, value, expires); err != nil {
				b.Error(err)
				return
			}
			for pb.Next() {
				if _, _, err := s.LoadVersioned(b.Context(), id); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})

	// HotSession: every goroutine reads and conditionally writes one
	// session, retrying on conflicts as the engine's instances would; an
	// op is one successful update. It reports the conflicts per update.
	b.Run("HotSession", func(b *testing.B) {
		var conflicts atomic.Int64
		parallel(b, func(g int, pb *testing.PB) {
			const id = "hot"
			for pb.Next() {
				_, v, err := s.LoadVersioned(b.Context(), id)
				if err != nil && !errors.Is(err, storage.ErrNotFound) {
					b.Error(err)
					return
				}
				for {
					_, _, cv, err := s.SaveIf(b.Context(), id, value, expires, v)
					if !errors.Is(err, storage.ErrConflict) {
						if err != nil {
							b.Error(err)
							return
						}
						break
					}
					conflicts.Add(1)
					v = cv
				}
			}
		})
		b.ReportMetric(float64(conflicts.Load())/float64(b.N), "conflicts/op")
	})
}
