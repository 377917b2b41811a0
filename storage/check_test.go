package storage_test

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steward-sessions/steward/storage"
)

// hider wraps a storage through the streaming interface and says nothing
// about compare-and-set, as a compressing or encrypting wrapper might.
type hider struct {
	Inner storage.Storage
}

func (h hider) Read(ctx context.Context, id string, fn func(io.Reader) error) error {
	return h.Inner.Read(ctx, id, fn)
}

func (h hider) Write(ctx context.Context, id string, exp time.Time, fn func(io.Writer) error) error {
	return h.Inner.Write(ctx, id, exp, fn)
}

func (h hider) Invalidate(ctx context.Context, id string) error { return h.Inner.Invalidate(ctx, id) }

// privateHider holds its inner storage in an unexported field, by pointer.
type privateHider struct {
	hider
	inner *versionedMap
}

// passThrough reports what it wraps, as a wrapper that leaves the values
// alone should.
type passThrough struct{ hider }

func (p passThrough) Versioned() storage.Versioned { return storage.VersionedOf(p.Inner) }

// bytesOnly is a BytesStorage wrapper: only Load, Save and Delete show.
type bytesOnly struct{ storage.BytesStorage }

// tiers holds several storages.
type tiers struct {
	storage.Storage // the first tier
	rest            []storage.BytesStorage
}

// loop is a storage that points at itself.
type loop struct {
	hider
	self *loop
	next storage.Storage
}

// panicky's Versioned method panics.
type panicky struct{ hider }

func (*panicky) Versioned() storage.Versioned { panic("boom") }

func TestCheckVersioned(t *testing.T) {
	vm := newVersionedMap()
	mem := storage.NewMemory(storage.MemoryOptions{})
	l := &loop{hider: hider{mem}}
	l.self = l
	l.next = l

	pass := []struct {
		name string
		s    any
	}{
		{"Nil", nil},
		{"Versioned", vm},
		{"Memory", mem},
		{"Cache", storage.NewCache(mem, storage.CacheOptions{})},
		{"CacheOverVersioned", storage.NewCache(vm, storage.CacheOptions{})},
		{"FromBytes", storage.FromBytes(&mapStorage{})},
		{"FromBytesOverVersioned", storage.FromBytes(vm)},
		{"AsBytesOverVersioned", storage.AsBytes(vm)},
		{"AdapterOverPassThrough", storage.AsBytes(passThrough{hider{vm}})},
		{"PassThrough", passThrough{hider{vm}}},
		{"WrapperOverMemory", hider{mem}},
		{"NilInner", hider{}},
		{"NilPointer", (*privateHider)(nil)},
		{"TypedNilInner", privateHider{}},
		{"Loop", l},
		{"NotAStorage", 42},
		{"PanickyOverMemory", &panicky{hider{mem}}},
	}
	for _, tt := range pass {
		t.Run(tt.name, func(t *testing.T) {
			if err := storage.CheckVersioned(tt.s); err != nil {
				t.Fatalf("CheckVersioned(%T) = %v, want nil", tt.s, err)
			}
		})
	}

	fail := []struct {
		name string
		s    any
		want []string // in the error
	}{
		{"Wrapper", hider{vm}, []string{"storage_test.hider holds a *storage_test.versionedMap in its field Inner"}},
		{"PointerToWrapper", &hider{vm}, []string{"storage_test.hider holds"}},
		{"Unexported", &privateHider{inner: vm}, []string{"*storage_test.privateHider holds a *storage_test.versionedMap in its field inner"}},
		{"OverCache", hider{storage.NewCache(vm, storage.CacheOptions{})},
			[]string{"holds a *storage.Cache (with the compare-and-set of a *storage_test.versionedMap) in its field Inner"}},
		{"CacheOverWrapper", storage.NewCache(hider{vm}, storage.CacheOptions{}),
			[]string{"storage_test.hider (in field inner.s of *storage.Cache) holds a *storage_test.versionedMap in its field Inner"}},
		{"AdapterOverWrapper", storage.FromBytes(bytesOnly{vm}),
			[]string{"storage_test.bytesOnly (in field BytesStorage of storage.bytesAdapter) holds a *storage_test.versionedMap in its field BytesStorage"}},
		{"WrapperOfWrapper", hider{hider{hider{vm}}}, []string{"storage_test.hider (in field Inner.Inner of storage_test.hider) holds"}},
		{"Slice", tiers{mem, []storage.BytesStorage{mem, vm}}, []string{"in its field rest[1]"}},
		{"Panicky", &panicky{hider{vm}}, []string{"*storage_test.panicky holds a *storage_test.versionedMap in its field hider.Inner"}},
	}
	for _, tt := range fail {
		t.Run(tt.name, func(t *testing.T) {
			err := storage.CheckVersioned(tt.s)
			if !errors.Is(err, storage.ErrHiddenVersioned) {
				t.Fatalf("CheckVersioned(%T) = %v, want storage.ErrHiddenVersioned", tt.s, err)
			}
			for _, w := range append(tt.want, "Implement storage.Versioned on", "`Versioned() storage.Versioned`", "do not wrap") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestCheckVersionedDepth(t *testing.T) {
	// Eight wrappers deep is found; a ninth is beyond the walk, which then
	// passes rather than guess.
	var s storage.Storage = newVersionedMap()
	for range 8 {
		s = hider{s}
	}
	if err := storage.CheckVersioned(s); !errors.Is(err, storage.ErrHiddenVersioned) {
		t.Fatalf("eight wrappers deep: %v", err)
	}
	if err := storage.CheckVersioned(hider{s}); err != nil {
		t.Fatalf("nine wrappers deep: %v", err)
	}
}

// TestCheckVersionedWhileInUse checks storages that other goroutines are
// using: the walk reads only fields that do not change after construction
// (the race detector would tell).
func TestCheckVersionedWhileInUse(t *testing.T) {
	ctx := t.Context()
	mem := storage.NewMemory(storage.MemoryOptions{})
	cache := storage.NewCache(mem, storage.CacheOptions{MaxEntries: 64})
	dir, err := storage.NewCachedDirectory(t.TempDir(), storage.DirectoryOptions{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	stores := []storage.Storage{mem, cache, dir}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, s := range stores {
		b := storage.AsBytes(s)
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				id := "id" + strconv.Itoa(i%500)
				_ = b.Save(ctx, id, []byte("v"), time.Time{})
				_, _ = b.Load(ctx, id)
			}
		})
	}
	for range 200 {
		for _, s := range stores {
			if err := storage.CheckVersioned(hider{s}); err != nil {
				t.Error(err)
			}
		}
	}
	close(done)
	wg.Wait()
}
