package storage_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-sessions/steward/storage"
)

// BenchmarkDirectory measures the directory storage with values of 120
// bytes (an engine record of about 100 bytes of session), from 1 and 16
// goroutines. Save/slots is the Directory as built: a fresh slot file per
// write, then the previous one removed. Save/rename is the classic design
// it was chosen against, a temporary file renamed over the session's file,
// reduced to its file system calls (no checksum, cache or locking), so it
// is a lower bound of that design's cost. µs/op is the wall time per
// operation: with 16 goroutines, the inverse of the throughput.
func BenchmarkDirectory(b *testing.B) {
	const sessions = 10_000
	ids := benchIDs(sessions)
	value := make([]byte, 120)
	expires := time.Now().Add(time.Hour)
	ctx := context.Background()

	open := func(b *testing.B, sync bool) *storage.Directory {
		d, err := storage.NewDirectory(b.TempDir(), storage.DirectoryOptions{Sync: sync, SweepInterval: -1})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = d.Close() })
		for _, id := range ids {
			if err := d.Save(ctx, id, value, expires); err != nil {
				b.Fatal(err)
			}
		}
		return d
	}
	slots := func(sync bool) func(b *testing.B) func(string) error {
		return func(b *testing.B) func(string) error {
			d := open(b, sync)
			return func(id string) error { return d.Save(ctx, id, value, expires) }
		}
	}
	rename := func(b *testing.B) func(string) error {
		r := newRenameStore(b, ids, value)
		return func(id string) error { return r.save(id, value) }
	}
	load := func(b *testing.B) func(string) error {
		d := open(b, false)
		return func(id string) error {
			_, err := d.Load(ctx, id)
			return err
		}
	}

	for _, bm := range []struct {
		name    string
		writers []int
		setup   func(b *testing.B) func(id string) error
	}{
		{"Save/slots", []int{1, 16}, slots(false)},
		{"Save/rename", []int{1, 16}, rename},
		{"Save/slots-sync", []int{16}, slots(true)},
		{"Load", []int{1, 16}, load},
	} {
		for _, writers := range bm.writers {
			b.Run(fmt.Sprintf("%s/goroutines=%d", bm.name, writers), func(b *testing.B) {
				op := bm.setup(b)
				runGoroutines(b, writers, sessions, func(i int) error { return op(ids[i%sessions]) })
			})
		}
	}
}

// runGoroutines runs op b.N times from n goroutines, each starting at its
// own offset, and reports µs/op.
func runGoroutines(b *testing.B, n, sessions int, op func(i int) error) {
	b.ReportAllocs()
	b.ResetTimer()
	if n == 1 {
		for i := range b.N {
			if err := op(i); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		var start atomic.Uint64
		b.SetParallelism((n + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.RunParallel(func(pb *testing.PB) {
			for i := int(start.Add(7919) % uint64(sessions)); pb.Next(); i++ {
				if err := op(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(b.N), "µs/op")
}

// renameStore is the temp-file-and-rename design, only its file system
// calls: the same fan-out and file size as the Directory, each write to a
// temporary file in the session's directory renamed over the session file.
type renameStore struct{ root string }

func newRenameStore(b *testing.B, ids []string, value []byte) *renameStore {
	r := &renameStore{root: b.TempDir()}
	for _, id := range ids {
		if err := os.MkdirAll(r.dir(id), 0o700); err != nil {
			b.Fatal(err)
		}
		if err := r.save(id, value); err != nil {
			b.Fatal(err)
		}
	}
	return r
}

// dir spreads the (hex) IDs over 256×256 directories.
func (r *renameStore) dir(id string) string {
	return filepath.Join(r.root, id[len(id)-2:], id[len(id)-4:len(id)-2])
}

func (r *renameStore) save(id string, value []byte) error {
	dir := r.dir(id)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	buf := make([]byte, 32+len(value)) // a header and the value
	copy(buf[32:], value)
	_, err = f.Write(buf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, id))
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}
