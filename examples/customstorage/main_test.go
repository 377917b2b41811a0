package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/storage/storagetest"
)

func TestMapStoreConformance(t *testing.T) {
	storagetest.Run(t, func(*testing.T) storage.Storage { return storage.FromBytes(&MapStore{}) })
}

func TestGzipConformance(t *testing.T) {
	storagetest.Run(t, func(*testing.T) storage.Storage {
		return Gzip{Inner: storage.NewMemory(storage.MemoryOptions{})}
	})
}

func TestGzipCompressesThroughTheEngine(t *testing.T) {
	ctx := context.Background()
	backend := &MapStore{}
	eng, err := engine.New(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	k, err := engine.RegisterRaw(eng, "S", engine.KindOptions{Storage: Gzip{Inner: storage.FromBytes(backend)}})
	if err != nil {
		t.Fatal(err)
	}
	value := []byte(strings.Repeat("all work and no play ", 1000))
	id, err := k.Create(ctx, value)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := backend.Load(ctx, engine.StorageKey(id))
	if len(stored) == 0 || len(stored)*10 > len(value) {
		t.Fatalf("stored %d bytes for a %d-byte value", len(stored), len(value))
	}
	if !bytes.HasPrefix(stored, []byte{0x1f, 0x8b}) {
		t.Fatal("the stored bytes are not gzip")
	}
	got, err := k.Load(ctx, id)
	if err != nil || !bytes.Equal(got, value) {
		t.Fatalf("round trip: %d bytes, %v", len(got), err)
	}
	// A value corrupted in the backend reads as no session, not a panic.
	_ = backend.Save(ctx, engine.StorageKey(id), []byte("not gzip"), time.Time{})
	eng2, _ := engine.New(engine.Options{})
	defer eng2.Close(ctx)
	k2, _ := engine.RegisterRaw(eng2, "S", engine.KindOptions{Storage: Gzip{Inner: storage.FromBytes(backend)}})
	if _, err := k2.Load(ctx, id); !errors.Is(err, engine.ErrNoSession) {
		t.Fatalf("a corrupt value: %v, want ErrNoSession", err)
	}
}

// sharedStore stands in for a storage that several engine instances share,
// such as redisstore.Store: every value has a version, and SaveIf writes
// only over the version the writer read. Values do not expire.
type sharedStore struct {
	storage.Streams // Read, Write and Invalidate over Load, Save and Delete

	mu   sync.Mutex // protects m and last
	m    map[string]versioned
	last uint64
}

type versioned struct {
	data    []byte
	version uint64
}

func newSharedStore() *sharedStore {
	s := &sharedStore{m: make(map[string]versioned)}
	s.Streams = storage.NewStreams(s)
	return s
}

func (s *sharedStore) LoadVersioned(_ context.Context, id string) ([]byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[id]
	if !ok {
		return nil, 0, storage.ErrNotFound
	}
	return v.data, v.version, nil
}

func (s *sharedStore) SaveIf(_ context.Context, id string, data []byte, _ time.Time, version uint64) (uint64, []byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.m[id]; cur.version != version {
		return 0, cur.data, cur.version, storage.ErrConflict
	}
	s.last++
	s.m[id] = versioned{data, s.last}
	return s.last, nil, 0, nil
}

func (s *sharedStore) Load(ctx context.Context, id string) ([]byte, error) {
	data, _, err := s.LoadVersioned(ctx, id)
	return data, err
}

func (s *sharedStore) Save(_ context.Context, id string, data []byte, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last++
	s.m[id] = versioned{data, s.last}
	return nil
}

func (s *sharedStore) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

// TestGzipHidesCompareAndSet: Gzip has no Versioned method, so over a
// storage that several instances share it would turn the engine's
// compare-and-set writes into last-write-wins. storage.CheckVersioned says
// so; over a storage of one instance Gzip is fine.
func TestGzipHidesCompareAndSet(t *testing.T) {
	shared := newSharedStore()
	if storage.VersionedOf(Gzip{Inner: shared}) != nil {
		t.Fatal("Gzip reports a compare-and-set capability: update this test and Gzip's comment")
	}
	err := storage.CheckVersioned(Gzip{Inner: shared})
	if !errors.Is(err, storage.ErrHiddenVersioned) {
		t.Fatalf("CheckVersioned(Gzip over a shared storage) = %v, want storage.ErrHiddenVersioned", err)
	}
	for _, want := range []string{"main.Gzip", "*main.sharedStore", "Inner"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %s: %v", want, err)
		}
	}
	for _, s := range []storage.Storage{
		Gzip{Inner: storage.FromBytes(&MapStore{})},
		Gzip{Inner: storage.NewMemory(storage.MemoryOptions{})},
		shared,
	} {
		if err := storage.CheckVersioned(s); err != nil {
			t.Errorf("CheckVersioned(%T) = %v", s, err)
		}
	}
}
