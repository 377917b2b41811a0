package storage_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/steward-sessions/steward/internal/fakeclock"
	"github.com/steward-sessions/steward/storage"
)

// reports records what an ExpiryReporter reports.
type reports struct {
	mu  sync.Mutex
	got map[string][]string // id → values
}

func (r *reports) fn(id string, value []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got == nil {
		r.got = map[string][]string{}
	}
	r.got[id] = append(r.got[id], string(value))
}

func (r *reports) of(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[id]
}

// TestExpiryReporters: Directory (with and without a Cache in front) and
// Memory report each expired value they remove on their own, once, with
// the value; removals asked for are not reported; DeleteFound says whether
// it removed something; an unregistered function is not called.
func TestExpiryReporters(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"directory", "cached-directory", "memory"} {
		t.Run(name, func(t *testing.T) {
			clock := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			var s storage.BytesStorage
			var removeExpired func()
			switch name {
			case "memory":
				m := storage.NewMemory(storage.MemoryOptions{Now: clock.Now})
				s, removeExpired = m, func() {
					for _, id := range []string{"expiring", "deleted", "other"} {
						_, _ = m.Load(ctx, id)
					}
				}
			default:
				d, err := storage.NewDirectory(t.TempDir(), storage.DirectoryOptions{Now: clock.Now, SweepInterval: -1})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { d.Close() })
				s, removeExpired = d, func() {
					if _, err := d.Sweep(ctx); err != nil {
						t.Fatal(err)
					}
				}
				if name == "cached-directory" {
					s = storage.NewCache(d, storage.CacheOptions{Now: clock.Now})
				}
			}
			rep := storage.ExpiryReporterOf(s)
			if rep == nil {
				t.Fatal("no ExpiryReporter")
			}
			var r, gone reports
			unregister := rep.OnExpired(r.fn)
			defer unregister()
			unregisterGone := rep.OnExpired(gone.fn)
			unregisterGone()
			unregisterGone() // twice: nothing more

			soon := clock.Now().Add(time.Minute)
			for _, id := range []string{"expiring", "deleted", "other"} {
				if err := s.Save(ctx, id, []byte("v-"+id), soon); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Save(ctx, "forever", []byte("v"), time.Time{}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Load(ctx, "expiring"); err != nil { // cached, if a cache
				t.Fatal(err)
			}
			found, err := rep.DeleteFound(ctx, "deleted")
			if err != nil || !found {
				t.Fatalf("DeleteFound of a stored value = %v, %v", found, err)
			}
			if found, err := rep.DeleteFound(ctx, "deleted"); err != nil || found {
				t.Fatalf("DeleteFound again = %v, %v; want false", found, err)
			}
			if err := s.Delete(ctx, "other"); err != nil {
				t.Fatal(err)
			}
			clock.Advance(2 * time.Minute)
			removeExpired()
			removeExpired() // nothing more to remove

			if got := r.of("expiring"); len(got) != 1 || got[0] != "v-expiring" {
				t.Errorf("reports of the expired value: %q, want one with its value", got)
			}
			for _, id := range []string{"deleted", "other", "forever"} {
				if got := r.of(id); len(got) != 0 {
					t.Errorf("%s reported expired: %q", id, got)
				}
			}
			if len(gone.got) != 0 {
				t.Errorf("an unregistered function was called: %v", gone.got)
			}
			if _, err := s.Load(ctx, "expiring"); err == nil {
				t.Error("the expired value still loads (from the cache?)")
			}
			if _, err := s.Load(ctx, "forever"); err != nil {
				t.Errorf("a live value was removed: %v", err)
			}
		})
	}
}
