package engine_test

// Regression tests for review findings on the Versioned (compare-and-set)
// path and on the memo of flat types: each failed on the engine as first
// written.

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

// hookStore is a versionedStore whose SaveIf can run a hook once, before
// the write is decided, to place another instance's operation in the
// window between a session actor's read and its write.
type hookStore struct {
	*versionedStore
	hook atomic.Pointer[func(id string, version uint64) bool] // true: consumed
}

func newHookStore() *hookStore { return &hookStore{versionedStore: newVersionedStore()} }

func (s *hookStore) arm(f func(id string, version uint64) bool) { s.hook.Store(&f) }

func (s *hookStore) SaveIf(ctx context.Context, id string, data []byte, exp time.Time, version uint64) (uint64, []byte, uint64, error) {
	if f := s.hook.Load(); f != nil && (*f)(id, version) {
		s.hook.CompareAndSwap(f, nil)
	}
	return s.versionedStore.SaveIf(ctx, id, data, exp, version)
}

// TestRenewNoGraceLosesRemoteUpdate: with RenewGrace < 0 the old ID
// is deleted unconditionally after the value was copied to the new ID; an
// update acknowledged by another instance in between is lost.
func TestRenewNoGraceLosesRemoteUpdate(t *testing.T) {
	store := newHookStore()
	opts := engine.KindOptions{RenewGrace: -1}
	a := register(t, newEngine(t, engine.Options{}), storage.FromBytes(store), opts)
	b := register(t, newEngine(t, engine.Options{}), storage.FromBytes(store), opts)
	id, err := a.Create(t.Context(), []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	var updateErr error
	store.arm(func(target string, version uint64) bool {
		if target == id || version != 0 {
			return false
		}
		// A is writing the renewed copy: another instance updates the old ID now.
		store.hook.Store(nil)
		_, updateErr = b.Update(context.Background(), id, incr)
		return true
	})
	newID, err := a.Renew(t.Context(), id)
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if updateErr != nil {
		t.Fatalf("the other instance's update failed: %v", updateErr)
	}
	// The update was acknowledged, so it must live on under the new ID (or
	// Renew must have failed).
	if got := count(t, a, newID); got != 2 {
		t.Fatalf("renewed session holds %d: the acknowledged update on the other instance was lost", got)
	}
}

// TestStaleExpiryDeletesLiveSession: an update works on the cached
// state of a Versioned session and runs expire() on the cached expiry,
// which deletes the stored record unconditionally, although another
// instance kept the session alive. (Real-world trigger: IdleTimeout shorter
// than PassivateAfter, e.g. IdleTimeout 30s or PassivateAfter raised to an
// hour.)
func TestStaleExpiryDeletesLiveSession(t *testing.T) {
	store := newVersionedStore()
	clock := newFakeClock()
	opts := engine.KindOptions{IdleTimeout: 10 * time.Minute}
	a := register(t, newEngine(t, engine.Options{Now: clock.Now}), storage.FromBytes(store), opts)
	b := register(t, newEngine(t, engine.Options{Now: clock.Now}), storage.FromBytes(store), opts)
	id, err := a.Create(t.Context(), []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // the user keeps working, on instance b
		clock.Advance(4 * time.Minute)
		if _, err := b.Update(t.Context(), id, incr); err != nil {
			t.Fatal(err)
		}
	}
	// 12 minutes after A last saw it, 4 minutes after the last use: alive.
	if _, err := a.Update(t.Context(), id, incr); err != nil {
		t.Fatalf("update on instance a of a session used 4 minutes ago on b: %v", err)
	}
	if got := count(t, b, id); got != 5 {
		t.Fatalf("count = %d, want 5", got)
	}
}

// TestUpdateErrorFromStaleCopy: when the update function fails, the
// error is answered from the cached copy; with a Versioned storage that
// copy may be one another instance has overwritten (the !write path
// re-reads, the error path does not).
func TestUpdateErrorFromStaleCopy(t *testing.T) {
	store := newVersionedStore()
	a := register(t, newEngine(t, engine.Options{}), storage.FromBytes(store), engine.KindOptions{})
	b := register(t, newEngine(t, engine.Options{}), storage.FromBytes(store), engine.KindOptions{})
	id, err := a.Create(t.Context(), []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Store(t.Context(), id, []byte("0")); err != nil { // acknowledged
		t.Fatal(err)
	}
	errNotZero := errors.New("precondition: value is not 0")
	_, err = a.Update(t.Context(), id, func(old []byte) ([]byte, error) {
		if string(old) != "0" {
			return nil, errNotZero
		}
		return []byte("42"), nil
	})
	if err != nil {
		t.Fatalf("Update decided on a stale copy: %v (the stored value is 0)", err)
	}
}

// TestGetFoundWithoutValueAfterTouchConflict: a Get's expiry touch
// conflicts with another instance's Invalidate; the conflict adopts "no
// session" but the Get still answers Found with a nil value.
func TestGetFoundWithoutValueAfterTouchConflict(t *testing.T) {
	store := newHookStore()
	clock := newFakeClock()
	opts := engine.KindOptions{IdleTimeout: 10 * time.Minute} // touch interval: 1 minute
	a := register(t, newEngine(t, engine.Options{Now: clock.Now}), storage.FromBytes(store), opts)
	b := register(t, newEngine(t, engine.Options{Now: clock.Now}), storage.FromBytes(store), opts)
	id, err := a.Create(t.Context(), []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	store.arm(func(target string, version uint64) bool {
		if target != id || version == 0 {
			return false
		}
		store.hook.Store(nil)
		if err := b.Invalidate(context.Background(), id); err != nil {
			t.Error(err)
		}
		return true
	})
	v, err := a.Load(t.Context(), id)
	switch {
	case errors.Is(err, engine.ErrNoSession):
	case err != nil:
		t.Fatal(err)
	case string(v) != "1":
		t.Fatalf("Load = %q, nil: found, but not the session's value (nor ErrNoSession)", v)
	}
}

// TestGetOrSetReplacesRenewedSession: GetOrSet of an existing
// session writes nothing, touches the expiry, and the touch conflicts with
// a Renew on another instance. The adopted alias makes the update answer
// "not found", so the Binding creates a brand-new session: the user's
// session (just renewed at login elsewhere) is replaced by create().
func TestGetOrSetReplacesRenewedSession(t *testing.T) {
	store := newHookStore()
	clock := newFakeClock()
	opts := engine.KindOptions{Storage: storage.FromBytes(store), IdleTimeout: 10 * time.Minute}
	ka, err := engine.Register[counter](newEngine(t, engine.Options{Now: clock.Now}), "S", opts)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := engine.Register[counter](newEngine(t, engine.Options{Now: clock.Now}), "S", opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx0 := engine.WithBindings(t.Context(), ka.Raw().Bind(""))
	if err := ka.Set(ctx0, counter{N: 7}); err != nil {
		t.Fatal(err)
	}
	id := ka.ID(ctx0)
	clock.Advance(2 * time.Minute)
	var renewed string
	store.arm(func(target string, version uint64) bool {
		if target != id || version == 0 {
			return false
		}
		store.hook.Store(nil)
		var err error
		renewed, err = kb.Raw().Renew(context.Background(), id)
		if err != nil {
			t.Error(err)
		}
		return true
	})
	ctx := engine.WithBindings(t.Context(), ka.Raw().Bind(id))
	v, err := ka.GetOrSet(ctx, func() counter { return counter{N: -1} })
	if err != nil {
		t.Fatal(err)
	}
	if v.N != 7 {
		t.Fatalf("GetOrSet = %+v, ID %q (renewed to %q): a new session replaced the existing one", v, ka.ID(ctx), renewed)
	}
}

// prefs is a "flat" type (no references) whose JSON encoding drops a
// field: the memo keeps what the bytes do not hold.
type prefs struct {
	Theme string
	Draft string `json:"-"` // not persisted, by intent
	count int    // unexported: never encoded either
}

// TestMemoDivergesFromBytes: the memo is served for bytes it was not
// decoded from: Get returns fields the stored value does not have, until
// the actor passivates or another path drops the memo.
func TestMemoDivergesFromBytes(t *testing.T) {
	eng := newEngine(t, engine.Options{})
	k, err := engine.Register[prefs](eng, "P", engine.KindOptions{Storage: storage.FromBytes(newMapStore())})
	if err != nil {
		t.Fatal(err)
	}
	ctx := engine.WithBindings(t.Context(), k.Raw().Bind(""))
	if err := k.Set(ctx, prefs{Theme: "dark", Draft: "unsaved", count: 3}); err != nil {
		t.Fatal(err)
	}
	got, _, err := k.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := k.Raw().Load(t.Context(), k.ID(ctx))
	if err != nil {
		t.Fatal(err)
	}
	var fromBytes prefs
	if err := json.Unmarshal(raw, &fromBytes); err != nil {
		t.Fatal(err)
	}
	if got != fromBytes {
		t.Fatalf("Get = %+v, but the stored value %s decodes to %+v", got, raw, fromBytes)
	}
}
