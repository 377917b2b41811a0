package storage_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/steward-sessions/steward/storage"
)

// versionedMap is about the smallest Versioned storage: a map of values
// with versions behind a mutex, standing in for a storage that several
// engine instances share. Values do not expire; a SaveIf whose expiry is
// past deletes, as Versioned says.
type versionedMap struct {
	storage.Streams // Read, Write and Invalidate over Load, Save and Delete

	mu   sync.Mutex // protects m and last
	m    map[string]versionedValue
	last uint64 // the last version handed out
}

type versionedValue struct {
	data    []byte
	version uint64
}

func newVersionedMap() *versionedMap {
	v := &versionedMap{m: make(map[string]versionedValue)}
	v.Streams = storage.NewStreams(v)
	return v
}

func (v *versionedMap) LoadVersioned(_ context.Context, id string) ([]byte, uint64, error) {
	if !storage.ValidID(id) {
		return nil, 0, storage.ErrInvalidID
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	cur, ok := v.m[id]
	if !ok {
		return nil, 0, storage.ErrNotFound
	}
	return cur.data, cur.version, nil
}

func (v *versionedMap) SaveIf(_ context.Context, id string, data []byte, expires time.Time, version uint64) (uint64, []byte, uint64, error) {
	if !storage.ValidID(id) {
		return 0, nil, 0, storage.ErrInvalidID
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if cur := v.m[id]; cur.version != version {
		return 0, cur.data, cur.version, fmt.Errorf("versionedMap: %w", storage.ErrConflict)
	}
	if !expires.IsZero() && time.Now().After(expires) {
		delete(v.m, id)
		return 0, nil, 0, nil
	}
	v.last++
	v.m[id] = versionedValue{data, v.last}
	return v.last, nil, 0, nil
}

func (v *versionedMap) Load(ctx context.Context, id string) ([]byte, error) {
	data, _, err := v.LoadVersioned(ctx, id)
	return data, err
}

func (v *versionedMap) Save(_ context.Context, id string, data []byte, _ time.Time) error {
	if !storage.ValidID(id) {
		return storage.ErrInvalidID
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.last++
	v.m[id] = versionedValue{data, v.last}
	return nil
}

func (v *versionedMap) Delete(_ context.Context, id string) error {
	if !storage.ValidID(id) {
		return storage.ErrInvalidID
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.m, id)
	return nil
}

var _ storage.Versioned = (*versionedMap)(nil)
