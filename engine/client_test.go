package engine_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
)

// b64Sealer is a Sealer with no cryptography (the transformers are tested
// in package transport): base64, a size limit, and a switch to fail.
type b64Sealer struct{ limit int }

var errTooBig = errors.New("too big")

func (s b64Sealer) Open(wire string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(wire)
}

func (s b64Sealer) Seal(p []byte) (string, error) {
	w := base64.RawURLEncoding.EncodeToString(p)
	if s.limit > 0 && len(w) > s.limit {
		return "", errTooBig
	}
	return w, nil
}

func TestClientSideKind(t *testing.T) {
	clock := newFakeClock()
	eng := newEngine(t, engine.Options{Now: clock.Now})
	carts, err := engine.Register[counter](eng, "CART", engine.KindOptions{
		IdleTimeout: 10 * time.Minute, Lifetime: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	sealer := b64Sealer{limit: 200}
	request := func(wire string) (*engine.Binding, func() engine.Outcome) {
		b := carts.Raw().BindClient(wire, sealer)
		return b, b.Outcome
	}

	// A request with nothing has no session, and a Get sends nothing.
	b, out := request("")
	ctx := engine.WithBindings(t.Context(), b)
	if _, ok, err := carts.Get(ctx); ok || err != nil {
		t.Fatalf("Get = %v, %v", ok, err)
	}
	if o := out(); o.Changed || o.Cleared {
		t.Fatalf("outcome of a read: %+v", o)
	}

	// Update creates the value; the sealed value is what travels.
	b, out = request("")
	ctx = engine.WithBindings(t.Context(), b)
	v, err := carts.Update(ctx, func(c *counter) error { c.N += 5; return nil })
	if err != nil || v.N != 5 {
		t.Fatalf("Update = %+v, %v", v, err)
	}
	o := out()
	if !o.Changed || o.Value == "" || o.ID != "" {
		t.Fatalf("outcome of a write: %+v", o)
	}
	wire := o.Value

	// The next request carries it.
	b, out = request(wire)
	ctx = engine.WithBindings(t.Context(), b)
	if got, ok, err := carts.Get(ctx); err != nil || !ok || got.N != 5 {
		t.Fatalf("Get of the carried value = %+v, %v, %v", got, ok, err)
	}
	if o := out(); o.Changed || o.Cleared {
		t.Fatalf("a read must not resend: %+v", o)
	}

	// Too large to seal: the write fails, nothing changes, nothing is sent.
	type big struct{ S string }
	bigs, err := engine.Register[big](eng, "BIG", engine.KindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bb := bigs.Raw().BindClient("", sealer)
	if err := bigs.Set(engine.WithBindings(t.Context(), bb), big{S: strings.Repeat("x", 500)}); !errors.Is(err, errTooBig) {
		t.Fatalf("oversized Set: %v", err)
	}
	if o := bb.Outcome(); o.Changed || o.Value != "" {
		t.Fatalf("outcome after a failed Set: %+v", o)
	}

	// Idle timeout counts from the last write; the lifetime from creation.
	clock.Advance(9 * time.Minute)
	b, _ = request(wire)
	if _, ok, _ := carts.Get(engine.WithBindings(t.Context(), b)); !ok {
		t.Fatal("within the idle timeout the value must read")
	}
	clock.Advance(2 * time.Minute)
	b, out = request(wire)
	if _, ok, _ := carts.Get(engine.WithBindings(t.Context(), b)); ok {
		t.Fatal("past the idle timeout the client's copy must be refused")
	}
	if o := out(); !o.Cleared {
		t.Fatalf("an expired value must be cleared: %+v", o)
	}
	// Rewritten every 9 minutes, it still ends after its lifetime.
	b, out = request("")
	_ = carts.Set(engine.WithBindings(t.Context(), b), counter{N: 1})
	wire = out().Value
	for range 6 {
		clock.Advance(9 * time.Minute)
		b, out = request(wire)
		if _, err := carts.Update(engine.WithBindings(t.Context(), b), func(c *counter) error { c.N++; return nil }); err != nil {
			t.Fatal(err)
		}
		wire = out().Value
	}
	clock.Advance(9 * time.Minute) // 63 minutes since creation
	b, _ = request(wire)
	if _, ok, _ := carts.Get(engine.WithBindings(t.Context(), b)); ok {
		t.Fatal("past its lifetime the value must be refused")
	}

	// Garbage is no session and is cleared.
	for _, bad := range []string{"!!!", "AAAA", base64.RawURLEncoding.EncodeToString([]byte{9, 9, 9}), strings.Repeat("A", 5000)} {
		b, out = request(bad)
		if _, ok, err := carts.Get(engine.WithBindings(t.Context(), b)); ok || err != nil {
			t.Fatalf("Get(%.10q) = %v, %v", bad, ok, err)
		}
		if o := out(); !o.Cleared {
			t.Fatalf("garbage %.10q must be cleared: %+v", bad, o)
		}
	}

	// Clear, Renew, and the ID-based API.
	b, out = request("")
	ctx = engine.WithBindings(t.Context(), b)
	if err := carts.Renew(ctx); !errors.Is(err, engine.ErrNoSession) {
		t.Fatalf("Renew without a value: %v", err)
	}
	_ = carts.Set(ctx, counter{N: 2})
	first := out().Value
	if err := carts.Set(ctx, counter{N: 3}); !errors.Is(err, engine.ErrTooLate) {
		t.Fatalf("Set after the outcome was taken: %v", err)
	}
	b, out = request(first)
	ctx = engine.WithBindings(t.Context(), b)
	if err := carts.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if o := out(); !o.Changed || o.Value == "" {
		t.Fatalf("Renew must reseal: %+v", o)
	}
	b, out = request(first)
	ctx = engine.WithBindings(t.Context(), b)
	if err := carts.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if o := out(); !o.Cleared || o.Changed || o.Value != "" {
		t.Fatalf("outcome after Clear: %+v (first value %q)", o, first)
	}
	if _, err := carts.Raw().Load(t.Context(), "x"); !errors.Is(err, engine.ErrServerSideOnly) {
		t.Fatalf("Load on a client-side kind: %v", err)
	}
	if _, err := carts.Raw().Create(t.Context(), nil); !errors.Is(err, engine.ErrServerSideOnly) {
		t.Fatalf("Create on a client-side kind: %v", err)
	}
	if n := eng.Stats().Spawned; n != 0 {
		t.Fatalf("client-side sessions spawned %d actors", n)
	}
}

func TestGobCodec(t *testing.T) {
	eng := newEngine(t, engine.Options{})
	type prefs struct {
		Theme string
		Tags  map[string]int
	}
	k, err := engine.Register[prefs](eng, "P", engine.KindOptions{Codec: engine.GobCodec{}, Storage: nil})
	if err != nil {
		t.Fatal(err)
	}
	b := k.Raw().BindClient("", b64Sealer{})
	ctx := engine.WithBindings(t.Context(), b)
	if err := k.Set(ctx, prefs{Theme: "dark", Tags: map[string]int{"a": 1}}); err != nil {
		t.Fatal(err)
	}
	b2 := k.Raw().BindClient(b.Outcome().Value, b64Sealer{})
	got, ok, err := k.Get(engine.WithBindings(t.Context(), b2))
	if err != nil || !ok || got.Theme != "dark" || got.Tags["a"] != 1 {
		t.Fatalf("gob round trip: %+v %v %v", got, ok, err)
	}
}
