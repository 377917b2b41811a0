//go:build unix

package storage_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/steward-sessions/steward/storage"
)

// TestDirectorySweepDuringClose: a Sweep called by the user runs
// outside the per-ID operations; Close must wait for it, or its pruning rmdir
// (rootDir.rmdir, unlinkat on the raw descriptor number) can run after
// Close closed the descriptor, on whatever directory reused that number.
// Here the number is reused by another directory that has the same
// fan-out names, and the Sweep of the closed Directory removes its leaf.
func TestDirectorySweepDuringClose(t *testing.T) {
	var now time.Time = time.Now()
	clock := func() time.Time { return now }
	root := t.TempDir()
	d, err := storage.NewDirectory(root, storage.DirectoryOptions{Now: clock, SweepInterval: -1, CheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Save(ctx, "session-1", []byte("v"), now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// Find the session's leaf directory, ab/cd.
	var leaf string
	filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && (strings.HasSuffix(p, ".0") || strings.HasSuffix(p, ".1")) {
			leaf, _ = filepath.Rel(root, filepath.Dir(p))
		}
		return nil
	})
	if leaf == "" {
		t.Fatal("no session file")
	}
	other := t.TempDir()
	if err := os.MkdirAll(filepath.Join(other, leaf), 0o700); err != nil {
		t.Fatal(err)
	}
	var held []*os.File
	defer func() {
		for _, f := range held {
			f.Close()
		}
	}()
	d.OnExpired(func(string, []byte) {
		// The session's operation has ended: Close does not wait for the
		// rest of the pass. (Called from another goroutine, as a user's
		// shutdown would; the hook only stands for the scheduling delay.)
		done := make(chan struct{})
		go func() { d.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(200 * time.Millisecond): // Close waits for the Sweep: fixed
			return
		}
		for range 8 { // reuse the freed descriptor numbers
			f, err := os.Open(other)
			if err != nil {
				t.Error(err)
				return
			}
			held = append(held, f)
		}
	})
	now = now.Add(2 * time.Second)
	_, err = d.Sweep(ctx)
	t.Logf("Sweep after Close: %v", err)
	if _, err := os.Stat(filepath.Join(other, leaf)); err != nil {
		t.Fatalf("the closed Directory's Sweep removed %s in another directory: %v", filepath.Join(other, leaf), err)
	}
}
