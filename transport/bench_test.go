package transport_test

import (
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/transport"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

var benchMetrics = flag.Bool("metrics", false, "benchmarks and allocation pins: record metrics into an OpenTelemetry SDK MeterProvider")

// benchOptions are opts, with a MeterProvider under -metrics (go test
// -bench . ./transport/ -args -metrics).
func benchOptions(tb testing.TB, opts engine.Options) engine.Options {
	if *benchMetrics {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		tb.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
		opts.MeterProvider = mp
	}
	return opts
}

// discardWriter is a ResponseWriter that keeps only its header map, so that
// the benchmarks measure the middleware and not a recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// benchSetup returns a request that carries a live session's cookie and the
// kind, with the middleware around the handler that op builds; the kind's
// storage is a map behind a mutex (a storage that may block), or Memory
// with memory set.
func benchSetup(tb testing.TB, op func(k *engine.Kind[counter]) http.HandlerFunc, memory ...bool) (http.Handler, *http.Request) {
	tb.Helper()
	eng, err := engine.New(benchOptions(tb, engine.Options{}))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		eng.Close(ctx)
	})
	st := newMapStorage()
	if len(memory) > 0 && memory[0] {
		st = storage.NewMemory(storage.MemoryOptions{})
	}
	kind, err := engine.Register[counter](eng, "SESSION_ID", engine.KindOptions{Storage: st})
	if err != nil {
		tb.Fatal(err)
	}
	mw, err := transport.Middleware(transport.Cookie(kind, transport.CookieConfig{}))
	if err != nil {
		tb.Fatal(err)
	}
	rec := httptest.NewRecorder()
	mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind.Set(r.Context(), counter{})
	})).ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
	c, err := http.ParseSetCookie(rec.Header().Get("Set-Cookie"))
	if err != nil {
		tb.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Cookie", "theme=dark; SESSION_ID="+c.Value+"; lang=en")
	return mw(op(kind)), req
}

var benchOps = []struct {
	name string
	op   func(k *engine.Kind[counter]) http.HandlerFunc
}{
	{"untouched", func(*engine.Kind[counter]) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }
	}},
	{"get", func(k *engine.Kind[counter]) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { k.Get(r.Context()) }
	}},
	{"update", func(k *engine.Kind[counter]) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			k.Update(r.Context(), func(c *counter) error { c.N++; return nil })
		}
	}},
}

// BenchmarkMiddleware: a request through the middleware on a warm
// session, with Memory and with a storage that may block (a map behind a
// mutex, so that only the engine's hand-offs are measured).
func BenchmarkMiddleware(b *testing.B) {
	for _, st := range []string{"memory", "blocking"} {
		for _, bo := range benchOps {
			b.Run(st+"/"+bo.name, func(b *testing.B) {
				h, req := benchSetup(b, bo.op, st == "memory")
				w := &discardWriter{h: make(http.Header)}
				b.ReportAllocs()
				for b.Loop() {
					clear(w.h)
					h.ServeHTTP(w, req)
				}
			})
		}
	}
}
