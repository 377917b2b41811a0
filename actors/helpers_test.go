package actors

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// newTestSystem starts a System with the engine's defaults for every zero
// field of cfg, closed at the end of the test if the test has not.
func newTestSystem(t testing.TB, cfg Config) *System {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Shards == 0 {
		cfg.Shards = 16
	}
	if cfg.StorageActors == 0 {
		cfg.StorageActors = 4
	}
	if cfg.PassivateAfter == 0 {
		cfg.PassivateAfter = time.Minute
	}
	if cfg.MaxLive == 0 {
		cfg.MaxLive = 1 << 20
	}
	sys := NewSystem(cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sys.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return sys
}

// setTo is an update function that stores v.
func setTo(v string) UpdateFunc {
	return func(Value, bool) (Value, bool, error) { return Value{Data: []byte(v)}, true, nil }
}
