package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
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
	stored, _ := backend.Load(ctx, id)
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
	_ = backend.Save(ctx, id, []byte("not gzip"), time.Time{})
	eng2, _ := engine.New(engine.Options{})
	defer eng2.Close(ctx)
	k2, _ := engine.RegisterRaw(eng2, "S", engine.KindOptions{Storage: Gzip{Inner: storage.FromBytes(backend)}})
	if _, err := k2.Load(ctx, id); !errors.Is(err, engine.ErrNoSession) {
		t.Fatalf("a corrupt value: %v, want ErrNoSession", err)
	}
}
