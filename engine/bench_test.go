package engine_test

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// The engine's figures beside a mutex-protected map doing the same work
// (the limit): go test -run '^$' -bench . ./engine/ (add -args -metrics to
// record metrics into an OpenTelemetry SDK meanwhile)

var benchMetrics = flag.Bool("metrics", false, "benchmarks: record metrics into an OpenTelemetry SDK MeterProvider")

// benchOptions are opts, with a MeterProvider under -metrics.
func benchOptions(b *testing.B, opts engine.Options) engine.Options {
	if *benchMetrics {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
		opts.MeterProvider = mp
	}
	return opts
}

// goroutines runs body from n goroutines in total (b.RunParallel starts
// parallelism × GOMAXPROCS of them).
func goroutines(b *testing.B, n int, body func(pb *testing.PB, g int)) {
	var next atomic.Int64
	p := max(1, n/max(1, runtimeProcs()))
	b.SetParallelism(p)
	b.RunParallel(func(pb *testing.PB) { body(pb, int(next.Add(1))) })
}

func reportRate(b *testing.B, unit string) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}

func BenchmarkUpdate(b *testing.B) {
	for _, sessions := range []int{1, 10_000} {
		for _, workers := range []int{1, 64} {
			b.Run(fmt.Sprintf("sessions=%d/goroutines=%d", sessions, workers), func(b *testing.B) {
				eng := newEngine(b, benchOptions(b, engine.Options{}))
				k := register(b, eng, storage.NewMemory(storage.MemoryOptions{}), engine.KindOptions{})
				ids := make([]string, sessions)
				for i := range ids {
					ids[i], _ = k.Create(context.Background(), []byte("0"))
				}
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				if workers == 1 {
					for i := range b.N {
						if _, err := k.Update(ctx, ids[i%sessions], incr); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					goroutines(b, workers, func(pb *testing.PB, g int) {
						for i := g * 7919; pb.Next(); i++ {
							if _, err := k.Update(ctx, ids[i%sessions], incr); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				reportRate(b, "updates/s")
			})
		}
	}
}

// BenchmarkMutexMap is the limit for BenchmarkUpdate: the same update on a
// map behind one mutex per 1/256 of the keys, with no actor, no storage
// and no expiry.
func BenchmarkMutexMap(b *testing.B) {
	for _, sessions := range []int{1, 10_000} {
		for _, workers := range []int{1, 64} {
			b.Run(fmt.Sprintf("sessions=%d/goroutines=%d", sessions, workers), func(b *testing.B) {
				type shard struct {
					mu sync.Mutex
					m  map[string][]byte
				}
				shards := make([]shard, 256)
				for i := range shards {
					shards[i].m = make(map[string][]byte)
				}
				ids := make([]string, sessions)
				for i := range ids {
					ids[i] = strconv.Itoa(i)
				}
				update := func(i int) {
					s := &shards[i%256]
					s.mu.Lock()
					v, _ := incr(s.m[ids[i]])
					s.m[ids[i]] = v
					s.mu.Unlock()
				}
				b.ReportAllocs()
				b.ResetTimer()
				if workers == 1 {
					for i := range b.N {
						update(i % sessions)
					}
				} else {
					goroutines(b, workers, func(pb *testing.PB, g int) {
						for i := g * 7919; pb.Next(); i++ {
							update(i % sessions)
						}
					})
				}
				reportRate(b, "updates/s")
			})
		}
	}
}

func BenchmarkGet(b *testing.B) {
	eng := newEngine(b, benchOptions(b, engine.Options{}))
	k := register(b, eng, storage.NewMemory(storage.MemoryOptions{}), engine.KindOptions{})
	ids := make([]string, 10_000)
	for i := range ids {
		ids[i], _ = k.Create(context.Background(), []byte("12345"))
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	goroutines(b, 64, func(pb *testing.PB, g int) {
		for i := g * 7919; pb.Next(); i++ {
			if _, err := k.Load(ctx, ids[i%len(ids)]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRate(b, "gets/s")
}

// BenchmarkFirstUse measures an operation on a session whose actor is not
// in memory: a spawn and a storage read.
func BenchmarkFirstUse(b *testing.B) {
	store := storage.NewMemory(storage.MemoryOptions{})
	seed := newEngine(b, engine.Options{})
	ks := register(b, seed, store, engine.KindOptions{})
	ids := make([]string, b.N)
	for i := range ids {
		ids[i], _ = ks.Create(context.Background(), []byte("1"))
	}
	eng := newEngine(b, benchOptions(b, engine.Options{}))
	k := register(b, eng, store, engine.KindOptions{})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for _, id := range ids {
		if _, err := k.Load(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, "first-uses/s")
}

// BenchmarkPassivation measures the whole life of a session actor: b.N
// sessions are created (a spawn and a write each), and the janitor (a round
// every millisecond, PassivateAfter 4 ms) stops every actor again; the
// figure is that total per session, and lifecycles/s.
func BenchmarkPassivation(b *testing.B) {
	eng := newEngine(b, benchOptions(b, engine.Options{PassivateAfter: 4 * time.Millisecond}))
	k := register(b, eng, storage.NewMemory(storage.MemoryOptions{}), engine.KindOptions{})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := k.Create(ctx, []byte("1")); err != nil {
			b.Fatal(err)
		}
	}
	for eng.Stats().LiveActors > 0 {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	if p := eng.Stats().Passivated; p < int64(b.N) {
		b.Fatalf("%d passivations for %d actors", p, b.N)
	}
	reportRate(b, "lifecycles/s")
}
