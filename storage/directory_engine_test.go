package storage_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

// TestCachedDirectoryThroughTheEngine: 64 goroutines × 1,000 updates of one
// session over the directory storage with the cache: the count is exact,
// and a new engine on the same directory reads it back from the disk.
func TestCachedDirectoryThroughTheEngine(t *testing.T) {
	dir := t.TempDir()
	open := func() (*engine.Engine, *engine.RawKind) {
		store, err := storage.NewCachedDirectory(dir, storage.DirectoryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		eng, err := engine.New(engine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		k, err := engine.RegisterRaw(eng, "S", engine.KindOptions{Storage: store})
		if err != nil {
			t.Fatal(err)
		}
		return eng, k
	}
	closeEng := func(eng *engine.Engine) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := eng.Close(ctx); err != nil { // closes the cache and the directory
			t.Fatal(err)
		}
	}
	eng, k := open()
	id, err := k.Create(t.Context(), []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 64, 1000
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if _, err := k.Update(t.Context(), id, func(old []byte) ([]byte, error) {
					n, _ := strconv.Atoi(string(old))
					return strconv.AppendInt(nil, int64(n+1), 10), nil
				}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	closeEng(eng)

	eng, k = open() // the lock was released: a restart opens the directory
	defer closeEng(eng)
	v, err := k.Load(t.Context(), id)
	if err != nil || string(v) != strconv.Itoa(workers*each) {
		t.Fatalf("after a restart: %q, %v; want %d", v, err, workers*each)
	}
}

// TestDirectoryGoneThroughTheEngine: once the directory is removed and
// made again, the engine's operations on a session fail with an error that
// matches both engine.ErrStorage (the usual 503 path) and
// storage.ErrDirectoryGone, and the new directory stays empty.
func TestDirectoryGoneThroughTheEngine(t *testing.T) {
	root := filepath.Join(t.TempDir(), "sessions")
	store, err := storage.NewDirectory(root, storage.DirectoryOptions{CheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := eng.Close(ctx); err != nil {
			t.Error(err)
		}
	}()
	k, err := engine.RegisterRaw(eng, "S", engine.KindOptions{Storage: store})
	if err != nil {
		t.Fatal(err)
	}
	id, err := k.Create(t.Context(), []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err = k.Update(t.Context(), id, func(old []byte) ([]byte, error) { return []byte("1"), nil })
	if !errors.Is(err, engine.ErrStorage) || !errors.Is(err, storage.ErrDirectoryGone) {
		t.Errorf("Update after the removal = %v, want engine.ErrStorage and storage.ErrDirectoryGone", err)
	}
	_, err = k.Create(t.Context(), []byte("0"))
	if !errors.Is(err, engine.ErrStorage) || !errors.Is(err, storage.ErrDirectoryGone) {
		t.Errorf("Create after the removal = %v, want engine.ErrStorage and storage.ErrDirectoryGone", err)
	}
	if files := slotFiles(t, root); len(files) != 0 {
		t.Errorf("the new directory holds %q, want nothing", files)
	}
}
