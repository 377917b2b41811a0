package engine_test

import (
	"context"
	"testing"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

// TestOutcomeRead checks which operations mark the Outcome as Read: every
// operation that lets the response depend on the session, found or not,
// and neither Clear nor a request that never looked.
func TestOutcomeRead(t *testing.T) {
	// One engine each: a type names one kind per engine.
	server, err := engine.Register[counter](newEngine(t, engine.Options{}), "S",
		engine.KindOptions{Storage: storage.FromBytes(newMapStore())})
	if err != nil {
		t.Fatal(err)
	}
	client, err := engine.Register[counter](newEngine(t, engine.Options{}), "C", engine.KindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	type op func(ctx context.Context, k *engine.Kind[counter])
	ops := []struct {
		name string
		op   op
		want bool
	}{
		{"nothing", func(context.Context, *engine.Kind[counter]) {}, false},
		{"Clear", func(ctx context.Context, k *engine.Kind[counter]) { _ = k.Clear(ctx) }, false},
		{"Get", func(ctx context.Context, k *engine.Kind[counter]) { _, _, _ = k.Get(ctx) }, true},
		{"ID", func(ctx context.Context, k *engine.Kind[counter]) { _ = k.ID(ctx) }, true},
		{"Set", func(ctx context.Context, k *engine.Kind[counter]) { _ = k.Set(ctx, counter{N: 1}) }, true},
		{"Update", func(ctx context.Context, k *engine.Kind[counter]) {
			_, _ = k.Update(ctx, func(c *counter) error { c.N++; return nil })
		}, true},
		{"GetOrSet", func(ctx context.Context, k *engine.Kind[counter]) {
			_, _ = k.GetOrSet(ctx, func() counter { return counter{} })
		}, true},
		{"Renew without a session", func(ctx context.Context, k *engine.Kind[counter]) { _ = k.Renew(ctx) }, true},
	}
	for _, tc := range ops {
		t.Run("server/"+tc.name, func(t *testing.T) {
			b := server.Raw().Bind("")
			tc.op(engine.WithBindings(t.Context(), b), server)
			if got := b.Outcome().Read; got != tc.want {
				t.Errorf("Read = %v, want %v", got, tc.want)
			}
		})
		if tc.name == "ID" {
			continue // a client-side kind has no ID to read
		}
		t.Run("client/"+tc.name, func(t *testing.T) {
			b := client.Raw().BindClient("", b64Sealer{})
			tc.op(engine.WithBindings(t.Context(), b), client)
			if got := b.Outcome().Read; got != tc.want {
				t.Errorf("Read = %v, want %v", got, tc.want)
			}
		})
	}
}
