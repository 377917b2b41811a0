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
// goroutines as 64 concurrent requests would, against a local redis-server:
// with every read asking Redis (Remote, the default) and with local reads
// (Local). Compare the two within one run: the machine's load moves both.
//
//	go test -run '^$' -bench Redis ./storage/redisstore
func BenchmarkRedis(b *testing.B) {
	srv := redistest.Start(b)
	for _, mode := range []struct {
		name string
		opts redisstore.Options
	}{
		{"Remote", redisstore.Options{}},
		{"Local", redisstore.Options{LocalReads: true}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			mode.opts.Prefix = "bench:" + mode.name + ":"
			benchStore(b, newStore(b, srv, mode.opts))
		})
	}
}

func benchStore(b *testing.B, s *redisstore.Store) {
	value := make([]byte, 200) // a session record of a typical size
	const goroutines = 64
	parallel := func(b *testing.B, body func(g int, pb *testing.PB)) {
		b.SetParallelism(max(1, goroutines/runtime.GOMAXPROCS(0)))
		var next atomic.Int64
		b.ReportAllocs()
		hits0, misses0, rounds0 := redisstore.LocalReadStats(s)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) { body(int(next.Add(1)), pb) })
		b.StopTimer()
		if s.LocalReads() {
			hits, misses, rounds := redisstore.LocalReadStats(s)
			hits, misses, rounds = hits-hits0, misses-misses0, rounds-rounds0
			if reads := hits + misses; reads > 0 {
				b.ReportMetric(float64(hits)/float64(reads), "hits/read")
				b.ReportMetric(float64(rounds)/float64(reads), "barriers/read")
			}
		}
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

	// LoadVersioned: each goroutine reads its own session, which nobody
	// writes.
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

	// GetHeavy: each goroutine reads its own session and updates it one
	// time in ten (an op is a read or an update), as the engine does for
	// a session's Gets and Updates.
	b.Run("GetHeavy", func(b *testing.B) {
		parallel(b, func(g int, pb *testing.PB) {
			id := fmt.Sprintf("getheavy-%d", g)
			_, v, err := s.LoadVersioned(b.Context(), id)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				b.Error(err)
				return
			}
			for i := 0; pb.Next(); i++ {
				if i%10 != 9 {
					if _, v, err = s.LoadVersioned(b.Context(), id); err != nil && !errors.Is(err, storage.ErrNotFound) {
						b.Error(err)
						return
					}
					continue
				}
				nv, _, cv, err := s.SaveIf(b.Context(), id, value, expires, v)
				switch {
				case errors.Is(err, storage.ErrConflict):
					v = cv
				case err != nil:
					b.Error(err)
					return
				default:
					v = nv
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
