package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// meteredEngine starts an engine whose metrics go to a ManualReader.
func meteredEngine(t testing.TB, opts engine.Options) (*engine.Engine, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	opts.MeterProvider = mp
	return newEngine(t, opts), reader
}

// series are collected metrics by "name{key=value,...}" (keys sorted):
// the value of a sum or gauge, the count of a histogram.
type series map[string]int64

func collect(t testing.TB, r *sdkmetric.ManualReader) series {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := series{}
	enc := attribute.DefaultEncoder()
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[seriesKey(m.Name, p.Attributes.Encoded(enc))] = p.Value
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[seriesKey(m.Name, p.Attributes.Encoded(enc))] = p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[seriesKey(m.Name, p.Attributes.Encoded(enc))] = int64(p.Count)
				}
			default:
				t.Fatalf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return out
}

// seriesKey names a series; enc encodes attributes as key=value pairs
// joined by commas, sorted by key.
func seriesKey(name, attrs string) string { return name + "{" + attrs + "}" }

// op is the key of the operations counter.
func op(kind, op, outcome string) string {
	return seriesKey("steward.operations", "kind="+kind+",op="+op+",outcome="+outcome)
}

// opTime is the key of the operation duration histogram.
func opTime(kind, op string) string {
	return seriesKey("steward.operation.duration", "kind="+kind+",op="+op)
}

func storageKey(name, kind, call string) string {
	return seriesKey(name, "call="+call+",kind="+kind)
}

// only returns the series of s whose name is name.
func (s series) only(name string) series {
	out := series{}
	for k, v := range s {
		if strings.HasPrefix(k, name+"{") {
			out[k] = v
		}
	}
	return out
}

func (s series) String() string {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n\t%s = %d", k, s[k])
	}
	return b.String()
}

// wantSeries checks that got's series named name are exactly want.
func wantSeries(t *testing.T, got series, name string, want series) {
	t.Helper()
	g := got.only(name)
	bad := false
	for k, v := range want {
		if g[k] != v {
			t.Errorf("%s = %d, want %d", k, g[k], v)
			bad = true
		}
	}
	for k, v := range g {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s = %d", k, v)
			bad = true
		}
	}
	if bad {
		t.Logf("%s:%v", name, g)
	}
}

// tallyStore counts the calls that reach a mapStore, and their failures,
// so that the storage metrics can be checked against what the storage saw.
type tallyStore struct {
	*mapStore
	calls, fails [3]atomic.Int64 // load, save, delete
}

func (s *tallyStore) tally(call int, err error) error {
	s.calls[call].Add(1)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.fails[call].Add(1)
	}
	return err
}

func (s *tallyStore) Load(ctx context.Context, id string) ([]byte, error) {
	v, err := s.mapStore.Load(ctx, id)
	return v, s.tally(0, err)
}

func (s *tallyStore) Save(ctx context.Context, id string, data []byte, exp time.Time) error {
	return s.tally(1, s.mapStore.Save(ctx, id, data, exp))
}

func (s *tallyStore) Delete(ctx context.Context, id string) error {
	return s.tally(2, s.mapStore.Delete(ctx, id))
}

// wantStorage checks the storage metrics of kind against what st saw.
func wantStorage(t *testing.T, got series, kind string, st *tallyStore) {
	t.Helper()
	calls, fails := series{}, series{}
	for i, call := range []string{"load", "save", "delete"} {
		if n := st.calls[i].Load(); n > 0 {
			calls[storageKey("steward.storage.duration", kind, call)] = n
		}
		if n := st.fails[i].Load(); n > 0 {
			fails[storageKey("steward.storage.errors", kind, call)] = n
		}
	}
	wantSeries(t, got, "steward.storage.duration", calls)
	wantSeries(t, got, "steward.storage.errors", fails)
}

// TestMetricsRawOperations: a known sequence of byte-level operations,
// each outcome in it counted exactly, the duration histograms counting
// every operation, and the storage metrics matching what the storage saw.
func TestMetricsRawOperations(t *testing.T) {
	eng, reader := meteredEngine(t, engine.Options{})
	st := &tallyStore{mapStore: newMapStore()}
	k := register(t, eng, storage.FromBytes(st), engine.KindOptions{})
	ctx := t.Context()
	const unknown = "unknown-but-well-formed"

	id, err := k.Create(ctx, []byte("1")) // create ok
	if err != nil {
		t.Fatal(err)
	}
	mustNot := func(what string, err error, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", what, err, want)
		}
	}
	_, err = k.Load(ctx, id) // get ok
	mustNot("Load", err, nil)
	_, err = k.Load(ctx, unknown) // get no_session
	mustNot("Load unknown", err, engine.ErrNoSession)
	_, err = k.Load(ctx, "not a valid ID!") // get no_session, refused before any actor
	mustNot("Load malformed", err, engine.ErrNoSession)
	_, err = k.Update(ctx, id, incr) // update ok
	mustNot("Update", err, nil)
	_, err = k.Update(ctx, unknown, incr) // update no_session
	mustNot("Update unknown", err, engine.ErrNoSession)
	mustNot("Store", k.Store(ctx, id, []byte("7")), nil) // set ok

	st.down.Store(true)
	_, err = k.Update(ctx, id, incr) // update storage_error (the save)
	mustNot("Update, storage down", err, engine.ErrStorage)
	_, err = k.Load(ctx, id) // get storage_error (the reload)
	mustNot("Load, storage down", err, engine.ErrStorage)
	st.down.Store(false)

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = k.Load(canceled, id) // get canceled
	mustNot("Load, canceled", err, context.Canceled)
	errNo := errors.New("no")
	_, err = k.Update(ctx, id, func([]byte) ([]byte, error) { return nil, errNo }) // update error
	mustNot("Update, refused", err, errNo)
	_, err = k.Update(ctx, id, func([]byte) ([]byte, error) { panic("boom") }) // update panic
	mustNot("Update, panicking", err, engine.ErrPanic)
	var inner error
	_, err = k.Update(ctx, id, func(old []byte) ([]byte, error) { // update ok
		_, inner = k.Load(ctx, id) // get reentrant
		return old, nil
	})
	mustNot("Update, reentrant", err, nil)
	mustNot("Load inside Update", inner, engine.ErrReentrant)
	newID, err := k.Renew(ctx, id) // renew ok
	mustNot("Renew", err, nil)
	_, err = k.Load(ctx, id) // get renewed
	mustNot("Load of the renewed ID", err, engine.ErrRenewed)
	_, err = k.Renew(ctx, unknown) // renew no_session
	mustNot("Renew unknown", err, engine.ErrNoSession)
	mustNot("Invalidate", k.Invalidate(ctx, newID), nil) // invalidate ok
	_, err = k.Load(ctx, newID)                          // get no_session
	mustNot("Load, invalidated", err, engine.ErrNoSession)

	got := collect(t, reader)
	const kind = "SESSION_ID"
	wantSeries(t, got, "steward.operations", series{
		op(kind, "create", "ok"):            1,
		op(kind, "get", "ok"):               1,
		op(kind, "get", "no_session"):       3,
		op(kind, "get", "storage_error"):    1,
		op(kind, "get", "canceled"):         1,
		op(kind, "get", "reentrant"):        1,
		op(kind, "get", "renewed"):          1,
		op(kind, "update", "ok"):            2,
		op(kind, "update", "no_session"):    1,
		op(kind, "update", "storage_error"): 1,
		op(kind, "update", "error"):         1,
		op(kind, "update", "panic"):         1,
		op(kind, "set", "ok"):               1,
		op(kind, "renew", "ok"):             1,
		op(kind, "renew", "no_session"):     1,
		op(kind, "invalidate", "ok"):        1,
	})
	wantSeries(t, got, "steward.operation.duration", series{
		opTime(kind, "create"):     1,
		opTime(kind, "get"):        8,
		opTime(kind, "update"):     6,
		opTime(kind, "set"):        1,
		opTime(kind, "renew"):      2,
		opTime(kind, "invalidate"): 1,
	})
	wantStorage(t, got, kind, st)
	if st.fails[1].Load() != 1 || st.fails[0].Load() != 1 {
		t.Errorf("the storage saw %d failed saves and %d failed loads, want 1 and 1", st.fails[1].Load(), st.fails[0].Load())
	}
	wantSeries(t, got, "steward.storage.conflicts", series{})
	if got[seriesKey("steward.actors.live", "")] != eng.Stats().LiveActors ||
		got[seriesKey("steward.actors.spawned", "")] != eng.Stats().Spawned {
		t.Errorf("actors: %v, engine: %+v", got, eng.Stats())
	}
}

// TestMetricsTypedOperations: the request-level operations of a
// server-side and a client-side kind.
func TestMetricsTypedOperations(t *testing.T) {
	eng, reader := meteredEngine(t, engine.Options{})
	type counter struct{ N int }
	srv, err := engine.Register[counter](eng, "srv", engine.KindOptions{Storage: storage.NewMemory(storage.MemoryOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	type flag struct{ On bool }
	cli, err := engine.Register[flag](eng, "cli", engine.KindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Get(t.Context()); !errors.Is(err, engine.ErrNoBinding) { // get error
		t.Fatal(err)
	}
	b := srv.Raw().Bind("")
	ctx := engine.WithBindings(t.Context(), b, cli.Raw().BindClient("", b64Sealer{}))
	steps := []error{}
	do := func(err error) { steps = append(steps, err) }
	_, _, err = srv.Get(ctx) // get no_session
	do(err)
	do(srv.Renew(ctx))           // renew no_session (ErrNoSession)
	do(srv.Set(ctx, counter{1})) // set ok
	_, _, err = srv.Get(ctx)     // get ok
	do(err)
	_, err = srv.Update(ctx, func(c *counter) error { c.N++; return nil }) // update ok
	do(err)
	_, err = srv.GetOrSet(ctx, func() counter { return counter{} }) // get_or_set ok
	do(err)
	do(srv.Renew(ctx))           // renew ok
	do(srv.Clear(ctx))           // clear ok
	do(cli.Set(ctx, flag{true})) // set ok
	_, _, err = cli.Get(ctx)     // get ok
	do(err)
	_ = b.Outcome()
	do(srv.Set(ctx, counter{2})) // set too_late
	for i, err := range steps {
		want := error(nil)
		switch i {
		case 1:
			want = engine.ErrNoSession
		case len(steps) - 1:
			want = engine.ErrTooLate
		}
		if !errors.Is(err, want) {
			t.Fatalf("step %d: %v, want %v", i, err, want)
		}
	}
	got := collect(t, reader)
	wantSeries(t, got, "steward.operations", series{
		op("srv", "get", "error"):        1,
		op("srv", "get", "no_session"):   1,
		op("srv", "get", "ok"):           1,
		op("srv", "renew", "no_session"): 1,
		op("srv", "renew", "ok"):         1,
		op("srv", "set", "ok"):           1,
		op("srv", "set", "too_late"):     1,
		op("srv", "update", "ok"):        1,
		op("srv", "get_or_set", "ok"):    1,
		op("srv", "clear", "ok"):         1,
		op("cli", "set", "ok"):           1,
		op("cli", "get", "ok"):           1,
	})
}

// TestMetricsConflicts: an update that keeps conflicting with another
// instance's writes counts each refused write and gives up as conflict.
func TestMetricsConflicts(t *testing.T) {
	eng, reader := meteredEngine(t, engine.Options{})
	store := newVersionedStore()
	k := register(t, eng, storage.FromBytes(store), engine.KindOptions{})
	id, err := k.Create(t.Context(), []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	store.conflictAlways.Store(true)
	if _, err := k.Update(t.Context(), id, incr); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("Update under endless conflicts: %v", err)
	}
	got := collect(t, reader)
	wantSeries(t, got, "steward.storage.conflicts", series{seriesKey("steward.storage.conflicts", "kind=SESSION_ID"): 128})
	wantSeries(t, got, "steward.storage.errors", series{})
	if n := got[op("SESSION_ID", "update", "conflict")]; n != 1 {
		t.Errorf("update conflict = %d, want 1:%v", n, got)
	}
}

// TestMetricsActorsAndPassivation: the actor gauges and counters follow
// Stats, and a closed engine is no longer observed (its callback is
// unregistered).
func TestMetricsActorsAndPassivation(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	eng, err := engine.New(engine.Options{MeterProvider: mp, PassivateAfter: 5 * time.Millisecond, MaxLiveActors: 4, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	k := register(t, eng, storage.NewMemory(storage.MemoryOptions{}), engine.KindOptions{})
	for range 6 {
		if _, err := k.Create(t.Context(), []byte("1")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every actor to passivate", func() bool { return eng.Stats().LiveActors == 0 })
	st := eng.Stats()
	got := collect(t, reader)
	want := series{
		seriesKey("steward.actors.live", ""):    0,
		seriesKey("steward.actors.spawned", ""): 6,
		seriesKey("steward.passivations", ""):   st.Passivated,
		seriesKey("steward.evictions", ""):      st.Evicted,
	}
	for name := range want {
		name = strings.TrimSuffix(name, "{}")
		wantSeries(t, got, name, series{seriesKey(name, ""): want[seriesKey(name, "")]})
	}
	if st.Passivated != 6 {
		t.Errorf("stats %+v, want 6 passivations", st)
	}
	if _, err := k.Create(t.Context(), []byte("1")); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, reader)[seriesKey("steward.actors.live", "")]; got != 1 {
		t.Errorf("live actors = %d, want 1", got)
	}
	if err := eng.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Load(t.Context(), "any-id"); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Load after Close: %v", err)
	}
	got = collect(t, reader)
	if len(got.only("steward.actors.live")) != 0 || len(got.only("steward.operations")) != 0 {
		t.Errorf("a closed engine is still observed:%v", got)
	}
}

// TestMetricsCache: the hits, misses and size of a kind's storage.Cache,
// reported once when two kinds share it.
func TestMetricsCache(t *testing.T) {
	cache := storage.NewCache(storage.FromBytes(newMapStore()), storage.CacheOptions{})
	seed := register(t, newEngine(t, engine.Options{}), cache, engine.KindOptions{})
	id, err := seed.Create(t.Context(), []byte("1")) // written through: cached
	if err != nil {
		t.Fatal(err)
	}
	eng, reader := meteredEngine(t, engine.Options{})
	k := register(t, eng, cache, engine.KindOptions{})
	if _, err := engine.RegisterRaw(eng, "OTHER", engine.KindOptions{Storage: cache}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Load(t.Context(), id); err != nil { // a hit
		t.Fatal(err)
	}
	if _, err := k.Load(t.Context(), "not-there"); !errors.Is(err, engine.ErrNoSession) { // a miss
		t.Fatal(err)
	}
	got := collect(t, reader)
	attrs := "kind=SESSION_ID"
	wantSeries(t, got, "steward.cache.hits", series{seriesKey("steward.cache.hits", attrs): 1})
	wantSeries(t, got, "steward.cache.misses", series{seriesKey("steward.cache.misses", attrs): 1})
	wantSeries(t, got, "steward.cache.entries", series{seriesKey("steward.cache.entries", attrs): 1})
	if cs := cache.Stats(); cs.Hits != 1 || cs.Misses != 1 {
		t.Errorf("cache stats %+v", cs)
	}
}

// TestMetricsHammer: many goroutines on a few sessions, and on IDs that
// have none; every operation is counted exactly, and the storage metrics
// match what the storage saw.
func TestMetricsHammer(t *testing.T) {
	eng, reader := meteredEngine(t, engine.Options{})
	st := &tallyStore{mapStore: newMapStore()}
	k := register(t, eng, storage.FromBytes(st), engine.KindOptions{})
	ids := make([]string, 4)
	for i := range ids {
		var err error
		if ids[i], err = k.Create(t.Context(), []byte("0")); err != nil {
			t.Fatal(err)
		}
	}
	const workers, each = 32, 100
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := k.Update(t.Context(), ids[(w+i)%len(ids)], incr); err != nil {
					t.Error(err)
					return
				}
				if _, err := k.Load(t.Context(), fmt.Sprintf("gone-%d-%d", w, i%3)); !errors.Is(err, engine.ErrNoSession) {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for _, id := range ids {
		total += count(t, k, id)
	}
	if total != workers*each {
		t.Fatalf("counts add up to %d, want %d", total, workers*each)
	}
	got := collect(t, reader)
	const kind = "SESSION_ID"
	wantSeries(t, got, "steward.operations", series{
		op(kind, "create", "ok"):      int64(len(ids)),
		op(kind, "update", "ok"):      workers * each,
		op(kind, "get", "no_session"): workers * each,
		op(kind, "get", "ok"):         int64(len(ids)), // count's reads
	})
	wantSeries(t, got, "steward.operation.duration", series{
		opTime(kind, "create"): int64(len(ids)),
		opTime(kind, "update"): workers * each,
		opTime(kind, "get"):    workers*each + int64(len(ids)),
	})
	wantStorage(t, got, kind, st)
}

// TestMetricsOwnerOperations: the owner-index, pop and lifetime
// operations are counted under their own op names.
func TestMetricsOwnerOperations(t *testing.T) {
	eng, reader := meteredEngine(t, engine.Options{})
	k := register(t, eng, storage.NewMemory(storage.MemoryOptions{}), engine.KindOptions{})
	ctx := t.Context()
	a, err := k.Create(ctx, []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.Create(ctx, []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{a, b} {
		if err := k.BindOwner(ctx, id, "user"); err != nil {
			t.Fatal(err)
		}
	}
	if owner, err := k.Owner(ctx, a); err != nil || owner != "user" {
		t.Fatalf("Owner = %q, %v", owner, err)
	}
	infos, err := k.Sessions(ctx, "user", a)
	if err != nil || len(infos) != 2 {
		t.Fatalf("Sessions = %v, %v", infos, err)
	}
	if err := k.SetLifetime(ctx, a, time.Hour, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := k.Each(ctx, func(engine.SessionInfo) bool { return true }); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Take(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Take(ctx, a); !errors.Is(err, engine.ErrNoSession) {
		t.Fatalf("Take again: %v, want ErrNoSession", err)
	}
	if err := k.InvalidateHandle(ctx, "user", infos[0].Handle); err != nil && !errors.Is(err, engine.ErrNoSession) {
		t.Fatal(err)
	}
	if _, err := k.InvalidateOwner(ctx, "user", ""); err != nil {
		t.Fatal(err)
	}
	got := collect(t, reader)
	kind := "SESSION_ID"
	for _, name := range []string{"bind_owner", "owner", "sessions", "set_lifetime", "each", "take", "invalidate_handle", "invalidate_owner"} {
		if got[opTime(kind, name)] == 0 {
			t.Errorf("no duration recorded for op %s:\n%v", name, got.only("steward.operation.duration"))
		}
	}
	if got[op(kind, "bind_owner", "ok")] != 2 || got[op(kind, "take", "ok")] != 1 || got[op(kind, "take", "no_session")] != 1 {
		t.Errorf("operations:\n%v", got.only("steward.operations"))
	}
}
