package engine

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/steward-sessions/steward/actors"
	"github.com/steward-sessions/steward/storage"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// TestOutcomeOf: what each result and error an operation can return is
// counted as.
func TestOutcomeOf(t *testing.T) {
	errFn := errors.New("the function's own error")
	for _, tc := range []struct {
		found bool
		err   error
		want  string
	}{
		{true, nil, "ok"},
		{false, nil, "no_session"},
		{true, ErrNoSession, "no_session"},
		{true, errOf(actors.Result{Status: actors.Closed}), "closed"},
		{true, errOf(actors.Result{Status: actors.Canceled, Err: context.Canceled}), "canceled"},
		{true, errOf(actors.Result{Status: actors.Canceled, Err: context.DeadlineExceeded}), "canceled"},
		{true, errOf(actors.Result{Status: actors.MaybeApplied, Err: context.DeadlineExceeded}), "maybe_applied"},
		{true, errOf(actors.Result{Status: actors.StorageFailed, Err: errors.New("disk full")}), "storage_error"},
		{true, errOf(actors.Result{Status: actors.Conflict, Err: errors.New("32 attempts")}), "conflict"},
		{true, errOf(actors.Result{Status: actors.Panicked, Err: errors.New("boom")}), "panic"},
		{true, errOf(actors.Result{Status: actors.Reentrant}), "reentrant"},
		{true, errOf(actors.Result{Status: actors.Renewed}), "renewed"},
		{true, errOf(actors.Result{Status: actors.FnFailed, Err: errFn}), "error"},
		{true, errOf(tooLate), "too_late"},
		{true, ErrNoBinding, "error"},
		{true, ErrServerSideOnly, "error"},
		{true, fmt.Errorf("codec: %w", errFn), "error"},
	} {
		if got := outcomeNames[outcomeOf(tc.found, tc.err)]; got != tc.want {
			t.Errorf("outcomeOf(%v, %v) = %s, want %s", tc.found, tc.err, got, tc.want)
		}
	}
}

// BenchmarkRecord is what metrics add to an operation with an SDK
// MeterProvider: its counter and histogram, and one storage call's
// histogram. Neither allocates.
func BenchmarkRecord(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(context.Background())
	m, err := newMetrics(mp, func() Stats { return Stats{} })
	if err != nil {
		b.Fatal(err)
	}
	km := m.forKind("SESSION_ID", storage.NewMemory(storage.MemoryOptions{}))
	ctx := context.Background()
	b.Run("operation", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			km.done(opUpdate, km.start(), true, nil)
		}
	})
	b.Run("storage-call", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			km.storageCall(ctx, actors.StorageSave, time.Microsecond, nil)
		}
	})
	b.Run("operation-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				km.done(opGet, km.start(), true, nil)
			}
		})
	})
}
