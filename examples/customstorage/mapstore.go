package main

import (
	"context"
	"sync"
	"time"

	"github.com/steward-sessions/steward/storage"
)

// MapStore is a custom backend written through the byte-slice adapter, the
// counterpart of Ktor's SimplifiedSessionStorage: three methods over whole
// values, and storage.FromBytes turns it into a storage.Storage. Replace
// the map with a call to your key-value service and it is a real backend.
type MapStore struct {
	mu sync.Mutex // protects m
	m  map[string]mapEntry
}

type mapEntry struct {
	data    []byte
	expires time.Time
}

// Load implements storage.BytesStorage.
func (s *MapStore) Load(_ context.Context, id string) ([]byte, error) {
	if !storage.ValidID(id) {
		return nil, storage.ErrInvalidID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[id]
	if !ok || !e.expires.IsZero() && time.Now().After(e.expires) {
		delete(s.m, id)
		return nil, storage.ErrNotFound
	}
	return e.data, nil
}

// Save implements storage.BytesStorage.
func (s *MapStore) Save(_ context.Context, id string, data []byte, expires time.Time) error {
	if !storage.ValidID(id) {
		return storage.ErrInvalidID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]mapEntry)
	}
	s.m[id] = mapEntry{data: data, expires: expires}
	return nil
}

// Delete implements storage.BytesStorage.
func (s *MapStore) Delete(_ context.Context, id string) error {
	if !storage.ValidID(id) {
		return storage.ErrInvalidID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}
