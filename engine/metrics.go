package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/steward-sessions/steward/actors"
	"github.com/steward-sessions/steward/storage"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The instruments' names, as Options.MeterProvider documents them. A
// Prometheus exporter renders the dots as underscores, adds the unit
// (_seconds) and counters' _total.
const (
	meterName = "github.com/steward-sessions/steward"

	metricOperations    = "steward.operations"
	metricOpDuration    = "steward.operation.duration"
	metricStorageTime   = "steward.storage.duration"
	metricStorageErrors = "steward.storage.errors"
	metricConflicts     = "steward.storage.conflicts"
	metricLive          = "steward.actors.live"
	metricSpawned       = "steward.actors.spawned"
	metricPassivations  = "steward.passivations"
	metricEvictions     = "steward.evictions"
	metricCacheHits     = "steward.cache.hits"
	metricCacheMisses   = "steward.cache.misses"
	metricCacheEntries  = "steward.cache.entries"
)

// durationBounds are the histograms' bucket boundaries in seconds, from
// 10 µs (a read of a live session in memory takes a few) to 10 s (a hung
// storage). An SDK View can replace them.
var durationBounds = []float64{
	0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// opName is an operation as the "op" attribute names it.
type opName uint8

const (
	opGet opName = iota
	opSet
	opUpdate
	opGetOrSet
	opClear
	opRenew
	opInvalidate
	opCreate
	opBindOwner
	opOwner
	opSessions
	opInvalidateOwner
	opInvalidateHandle
	opEach
	opSetLifetime
	opTake
	numOps
)

var opNames = [numOps]string{"get", "set", "update", "get_or_set", "clear", "renew", "invalidate", "create",
	"bind_owner", "owner", "sessions", "invalidate_owner", "invalidate_handle", "each", "set_lifetime", "take"}

// outcome is how an operation ended, as the "outcome" attribute names it.
type outcome uint8

const (
	outOK outcome = iota
	outNoSession
	outCanceled
	outMaybeApplied
	outStorageError
	outConflict
	outPanic
	outReentrant
	outRenewed
	outTooLate
	outClosed
	outError
	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	"ok", "no_session", "canceled", "maybe_applied", "storage_error", "conflict",
	"panic", "reentrant", "renewed", "too_late", "closed", "error",
}

// outcomeOf classifies what an operation returned; found false with no
// error is a read that found no session.
func outcomeOf(found bool, err error) outcome {
	switch {
	case err == nil && found:
		return outOK
	case err == nil, errors.Is(err, ErrNoSession):
		return outNoSession
	case errors.Is(err, ErrMaybeApplied): // wraps ctx's error: before canceled
		return outMaybeApplied
	case errors.Is(err, ErrConflict): // wraps ErrStorage: before it
		return outConflict
	case errors.Is(err, ErrStorage):
		return outStorageError
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return outCanceled
	case errors.Is(err, ErrPanic):
		return outPanic
	case errors.Is(err, ErrReentrant):
		return outReentrant
	case errors.Is(err, ErrRenewed):
		return outRenewed
	case errors.Is(err, ErrTooLate):
		return outTooLate
	case errors.Is(err, ErrClosed):
		return outClosed
	}
	return outError
}

// storageCallNames are the "call" attribute's values, by actors.StorageCall.
var storageCallNames = [...]string{
	actors.StorageLoad:   "load",
	actors.StorageSave:   "save",
	actors.StorageDelete: "delete",
}

// metrics are an engine's instruments, made once by New when
// Options.MeterProvider is set.
//
// The counters are atomics of the engine's own, reported by a callback at
// each collection: a synchronous SDK counter costs a lock and a hash of the
// attribute set per measurement (hundreds of ns), an atomic add a few. The
// histograms are synchronous: the metric API has no asynchronous ones.
type metrics struct {
	opDuration  metric.Float64Histogram
	storageTime metric.Float64Histogram

	ops, storageErrors, conflicts    metric.Int64ObservableCounter
	live, entries                    metric.Int64ObservableGauge
	spawned, passivations, evictions metric.Int64ObservableCounter
	hits, misses                     metric.Int64ObservableCounter
	registration                     metric.Registration
	unregisterOnce                   sync.Once
	stats                            func() Stats // the engine's
	epoch                            time.Time    // operations are timed against it (see start)

	mu       sync.Mutex      // protects kinds, caches and observed
	kinds    []*kindMetrics  // appended to only
	caches   []observedCache // appended to only
	observed map[any]bool    // the comparable caches in caches
}

// cacheStatser is what a storage that caches offers (storage.Cache).
type cacheStatser interface{ Stats() storage.CacheStats }

// observedCache is a cache whose counters the callback reports.
type observedCache struct {
	c    cacheStatser
	attr []metric.ObserveOption // kind=...
}

func newMetrics(mp metric.MeterProvider, stats func() Stats) (*metrics, error) {
	m := &metrics{stats: stats, epoch: time.Now(), observed: make(map[any]bool)}
	meter := mp.Meter(meterName)
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	m.ops, err = meter.Int64ObservableCounter(metricOperations, metric.WithUnit("{operation}"),
		metric.WithDescription("Session operations, by kind, op and outcome."))
	check(err)
	m.opDuration, err = meter.Float64Histogram(metricOpDuration, metric.WithUnit("s"),
		metric.WithDescription("How long session operations took, by kind and op."),
		metric.WithExplicitBucketBoundaries(durationBounds...))
	check(err)
	m.storageTime, err = meter.Float64Histogram(metricStorageTime, metric.WithUnit("s"),
		metric.WithDescription("How long storage calls took, by kind and call."),
		metric.WithExplicitBucketBoundaries(durationBounds...))
	check(err)
	m.storageErrors, err = meter.Int64ObservableCounter(metricStorageErrors, metric.WithUnit("{error}"),
		metric.WithDescription("Storage calls that failed (not found and conflicts are not failures), by kind and call."))
	check(err)
	m.conflicts, err = meter.Int64ObservableCounter(metricConflicts, metric.WithUnit("{conflict}"),
		metric.WithDescription("Conditional writes refused because another instance wrote first, by kind."))
	check(err)
	m.live, err = meter.Int64ObservableGauge(metricLive, metric.WithUnit("{actor}"),
		metric.WithDescription("Session actors in memory."))
	check(err)
	m.spawned, err = meter.Int64ObservableCounter(metricSpawned, metric.WithUnit("{actor}"),
		metric.WithDescription("Session actors started."))
	check(err)
	m.passivations, err = meter.Int64ObservableCounter(metricPassivations, metric.WithUnit("{actor}"),
		metric.WithDescription("Session actors stopped for being idle, evictions included."))
	check(err)
	m.evictions, err = meter.Int64ObservableCounter(metricEvictions, metric.WithUnit("{actor}"),
		metric.WithDescription("Session actors passivated early because MaxLiveActors was reached."))
	check(err)
	m.hits, err = meter.Int64ObservableCounter(metricCacheHits, metric.WithUnit("{read}"),
		metric.WithDescription("Reads a storage.Cache answered from memory, by kind."))
	check(err)
	m.misses, err = meter.Int64ObservableCounter(metricCacheMisses, metric.WithUnit("{read}"),
		metric.WithDescription("Reads a storage.Cache passed to its inner storage, by kind."))
	check(err)
	m.entries, err = meter.Int64ObservableGauge(metricCacheEntries, metric.WithUnit("{entry}"),
		metric.WithDescription("Values a storage.Cache holds, by kind."))
	check(err)
	if len(errs) == 0 {
		m.registration, err = meter.RegisterCallback(m.observe,
			m.ops, m.storageErrors, m.conflicts,
			m.live, m.spawned, m.passivations, m.evictions, m.hits, m.misses, m.entries)
		check(err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: MeterProvider: %w", ErrConfig, errors.Join(errs...))
	}
	return m, nil
}

// observe reports the observable instruments. A counter that is still zero
// is left out, so that only the outcomes that happened have series.
func (m *metrics) observe(_ context.Context, o metric.Observer) error {
	st := m.stats()
	o.ObserveInt64(m.live, st.LiveActors)
	o.ObserveInt64(m.spawned, st.Spawned)
	o.ObserveInt64(m.passivations, st.Passivated)
	o.ObserveInt64(m.evictions, st.Evicted)
	m.mu.Lock()
	kinds, caches := m.kinds, m.caches // appended to only: the prefixes stay valid
	m.mu.Unlock()
	for _, km := range kinds {
		for op := range km.ops {
			for out := range km.ops[op] {
				if n := km.ops[op][out].Load(); n > 0 {
					o.ObserveInt64(m.ops, n, km.opAttrs[op][out]...)
				}
			}
		}
		for call := range km.storageErrors {
			if n := km.storageErrors[call].Load(); n > 0 {
				o.ObserveInt64(m.storageErrors, n, km.storageErrorAttrs[call]...)
			}
		}
		if n := km.conflicts.Load(); n > 0 {
			o.ObserveInt64(m.conflicts, n, km.kindAttr...)
		}
	}
	for _, c := range caches {
		cs := c.c.Stats()
		o.ObserveInt64(m.hits, int64(cs.Hits), c.attr...)
		o.ObserveInt64(m.misses, int64(cs.Misses), c.attr...)
		o.ObserveInt64(m.entries, int64(cs.Len), c.attr...)
	}
	return nil
}

// unregister stops the callback, so that a closed engine is no longer
// observed (nor kept alive by its MeterProvider).
func (m *metrics) unregister() error {
	var err error
	m.unregisterOnce.Do(func() { err = m.registration.Unregister() })
	return err
}

// forKind makes the metrics of kind name, with every attribute set they
// use made now, so that recording a measurement costs no allocation, and
// starts observing s if it is a cache. A cache shared by several kinds is
// reported once, under the first kind registered with it.
func (m *metrics) forKind(name string, s storage.Storage) *kindMetrics {
	km := &kindMetrics{m: m}
	kind := attribute.String("kind", name)
	for op := range numOps {
		opAttr := attribute.String("op", opNames[op])
		km.durationAttrs[op] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(kind, opAttr))}
		for out := range numOutcomes {
			set := attribute.NewSet(kind, opAttr, attribute.String("outcome", outcomeNames[out]))
			km.opAttrs[op][out] = []metric.ObserveOption{metric.WithAttributeSet(set)}
		}
	}
	for call, callName := range storageCallNames {
		set := metric.WithAttributeSet(attribute.NewSet(kind, attribute.String("call", callName)))
		km.storageTimeAttrs[call] = []metric.RecordOption{set}
		km.storageErrorAttrs[call] = []metric.ObserveOption{set}
	}
	kindSet := metric.WithAttributeSet(attribute.NewSet(kind))
	km.kindAttr = []metric.ObserveOption{kindSet}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kinds = append(m.kinds, km)
	if c, ok := s.(cacheStatser); ok {
		comparable := reflect.TypeOf(c).Comparable()
		if !comparable || !m.observed[c] {
			if comparable {
				m.observed[c] = true
			}
			m.caches = append(m.caches, observedCache{c: c, attr: km.kindAttr})
		}
	}
	return km
}

// kindMetrics are the counters of one kind and the attribute sets of its
// measurements, each a ready-made option slice: passing one costs no
// allocation.
type kindMetrics struct {
	m             *metrics
	ops           [numOps][numOutcomes]atomic.Int64
	storageErrors [len(storageCallNames)]atomic.Int64
	conflicts     atomic.Int64

	opAttrs           [numOps][numOutcomes][]metric.ObserveOption
	durationAttrs     [numOps][]metric.RecordOption
	storageTimeAttrs  [len(storageCallNames)][]metric.RecordOption
	storageErrorAttrs [len(storageCallNames)][]metric.ObserveOption
	kindAttr          []metric.ObserveOption
}

// start returns the instant an operation starts, for done: a monotonic
// reading since the metrics were made, which costs half a time.Now (that
// reads the wall clock too).
func (km *kindMetrics) start() time.Duration { return time.Since(km.m.epoch) }

// done records an operation that began at start and returned found and
// err. The histogram gets a context of its own: the SDK drops a
// measurement made with a context that has ended, which would hide every
// canceled operation.
func (km *kindMetrics) done(op opName, start time.Duration, found bool, err error) {
	took := (time.Since(km.m.epoch) - start).Seconds()
	km.ops[op][outcomeOf(found, err)].Add(1)
	km.m.opDuration.Record(context.Background(), took, km.durationAttrs[op]...)
}

// storageCall is the kind's actors.Kind.OnStorage.
func (km *kindMetrics) storageCall(ctx context.Context, call actors.StorageCall, took time.Duration, err error) {
	if int(call) >= len(storageCallNames) {
		return
	}
	km.m.storageTime.Record(ctx, took.Seconds(), km.storageTimeAttrs[call]...)
	switch {
	case err == nil, errors.Is(err, storage.ErrNotFound):
	case errors.Is(err, storage.ErrConflict):
		km.conflicts.Add(1)
	default:
		km.storageErrors[call].Add(1)
	}
}
