package storage_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-sessions/steward/storage"
)

// BenchmarkDirectory measures the directory storage with values of 120
// bytes (an engine record of about 100 bytes of session), from 1 and 16
// goroutines, over 4,096 sessions written before the timer starts.
//
// Save/inplace is the Directory as built: two slots per session, a write
// overwrites the older one in place. The two designs it was chosen
// against are reduced to their file system calls (no checksum, cache or
// locking), so they are lower bounds of their cost: Save/fresh writes a
// new file under a fresh name, then removes the previous one; Save/rename
// writes a temporary file and renames it over the session's file. Both
// create and free an inode per write, which ext4 without a journal makes
// slower the more inodes were freed in the last minutes: run them long
// enough (-benchtime=20000x or more) to see the steady state.
//
// µs/op is the wall time per operation: with 16 goroutines, the inverse of
// the throughput.
func BenchmarkDirectory(b *testing.B) {
	const sessions = 4096
	ids := benchIDs(sessions)
	value := make([]byte, 120)
	expires := time.Now().Add(time.Hour)
	ctx := context.Background()

	// The setups use the parent b for the directories and their cleanup,
	// and fail the sub-benchmark sub that runs them.
	open := func(sub *testing.B, sync bool) *storage.Directory {
		d, err := storage.NewDirectory(b.TempDir(), storage.DirectoryOptions{Sync: sync, SweepInterval: -1})
		if err != nil {
			sub.Fatal(err)
		}
		b.Cleanup(func() { _ = d.Close() })
		for range 2 { // both slots
			for _, id := range ids {
				if err := d.Save(ctx, id, value, expires); err != nil {
					sub.Fatal(err)
				}
			}
		}
		return d
	}
	inplace := func(sync bool) func(sub *testing.B) func(string) error {
		return func(sub *testing.B) func(string) error {
			d := open(sub, sync)
			return func(id string) error { return d.Save(ctx, id, value, expires) }
		}
	}
	bare := func(save func(*bareStore, string) error) func(sub *testing.B) func(string) error {
		return func(sub *testing.B) func(string) error {
			r := newBareStore(b, sub, ids, save)
			return func(id string) error { return save(r, id) }
		}
	}
	load := func(sub *testing.B) func(string) error {
		d := open(sub, false)
		return func(id string) error {
			_, err := d.Load(ctx, id)
			return err
		}
	}

	for _, bm := range []struct {
		name    string
		writers []int
		setup   func(sub *testing.B) func(id string) error
	}{
		{"Save/inplace", []int{1, 16}, inplace(false)},
		{"Save/fresh", []int{1, 16}, bare((*bareStore).fresh)},
		{"Save/rename", []int{1, 16}, bare((*bareStore).rename)},
		{"Save/inplace-sync", []int{1, 16}, inplace(true)},
		{"Load", []int{1, 16}, load},
	} {
		for _, writers := range bm.writers {
			// Set up once for the calibration run and the measured ones,
			// and clean up when the whole benchmark ends.
			var op func(string) error
			b.Run(fmt.Sprintf("%s/goroutines=%d", bm.name, writers), func(sub *testing.B) {
				if op == nil {
					op = bm.setup(sub)
				}
				runGoroutines(sub, writers, sessions, func(i int) error { return op(ids[i%sessions]) })
			})
		}
	}
}

// runGoroutines runs op b.N times from n goroutines, each starting at its
// own offset, and reports µs/op and, where it can be measured, the CPU
// time of the whole process per operation (cpu-µs/op): on a machine that
// other work shares, wall time says more about the other work.
func runGoroutines(b *testing.B, n, sessions int, op func(i int) error) {
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
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
	cpu := processCPU() - cpu0
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(b.N), "µs/op")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
	}
}

// bareStore holds the rejected designs, reduced to their file system
// calls: the same fan-out and file size as the Directory.
type bareStore struct {
	root  string
	value []byte // a header and the value
	mu    sync.Mutex
	gen   map[string]int  // per ID, which of two names holds the value; protected by mu
	locks [256]sync.Mutex // serialize the writes of an ID, as the engine and the Directory do
}

func newBareStore(b, sub *testing.B, ids []string, save func(*bareStore, string) error) *bareStore {
	r := &bareStore{root: b.TempDir(), value: make([]byte, 32+120), gen: make(map[string]int)}
	for _, id := range ids {
		if err := os.MkdirAll(r.dir(id), 0o700); err != nil {
			sub.Fatal(err)
		}
		if err := save(r, id); err != nil {
			sub.Fatal(err)
		}
	}
	return r
}

// dir spreads the (hex) IDs over 256×256 directories.
func (r *bareStore) dir(id string) string {
	return filepath.Join(r.root, id[len(id)-2:], id[len(id)-4:len(id)-2])
}

// fresh writes the value under a new name with O_EXCL, then removes the
// previous name.
func (r *bareStore) fresh(id string) error {
	l := &r.locks[id[len(id)-1]]
	l.Lock()
	defer l.Unlock()
	r.mu.Lock()
	g := r.gen[id] ^ 1
	r.gen[id] = g
	r.mu.Unlock()
	base := filepath.Join(r.dir(id), id)
	path, old := base+"."+strconv.Itoa(g), base+"."+strconv.Itoa(g^1)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(r.value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Remove(old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// rename writes the value to a temporary file and renames it over the
// session's file.
func (r *bareStore) rename(id string) error {
	dir := r.dir(id)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(r.value)
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

// BenchmarkDirectorySweep measures the sweeper on session files of 120
// bytes written through Save with a fake clock, in the page cache as the
// files of a running server are.
//
// background opens a Directory on default settings over sessions that
// have all expired and reports the files its background sweeper removes
// per second of wall time, from NewDirectory until the last is gone: what
// a server gets. pass runs Sweep back to back at the default SweepBatch
// over the same, and reports the files removed per second: the sweeper's
// top speed, one goroutine flat out, pruning empty directories as Sweep
// does. scan runs one pass over sessions that are all live and reports the
// cost of examining a file that stays.
func BenchmarkDirectorySweep(b *testing.B) {
	for _, n := range []int{20_000, 100_000} {
		b.Run(fmt.Sprintf("background/sessions=%d", n), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				swept := &sweptCounter{want: n, done: make(chan struct{})}
				d, _ := sweepFixture(b, n, time.Hour, storage.DirectoryOptions{Logger: slog.New(swept)}, func() {
					b.StartTimer()
				})
				start := time.Now()
				<-swept.done
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(n)/elapsed.Seconds(), "files/s")
				_ = d.Close()
				b.StartTimer()
			}
		})
	}
	for _, n := range []int{20_000, 100_000} {
		b.Run(fmt.Sprintf("pass/sessions=%d", n), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				d, _ := sweepFixture(b, n, time.Hour, storage.DirectoryOptions{SweepInterval: -1}, nil)
				b.StartTimer()
				start := time.Now()
				removed := 0
				for removed < n {
					r, err := d.Sweep(context.Background())
					if err != nil {
						b.Fatal(err)
					}
					if r == 0 {
						b.Fatalf("a Sweep removed nothing after %d of %d files", removed, n)
					}
					removed += r
				}
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(n)/elapsed.Seconds(), "files/s")
				_ = d.Close()
				b.StartTimer()
			}
		})
	}
	b.Run("scan/sessions=20000", func(b *testing.B) {
		const n = 20_000
		d, _ := sweepFixture(b, n, 0, storage.DirectoryOptions{SweepInterval: -1, SweepBatch: n}, nil)
		defer d.Close()
		b.ResetTimer()
		for range b.N {
			if r, err := d.Sweep(context.Background()); r != 0 || err != nil {
				b.Fatalf("Sweep over live sessions = %d, %v", r, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(b.N)/n, "µs/file")
	})
}

// sweepFixture writes n sessions of 120 bytes that expire in a minute
// under a new temporary directory, then opens it with opts and a clock
// moved on by age, and returns the Directory and its root. It calls
// opening, if not nil, just before NewDirectory.
func sweepFixture(b *testing.B, n int, age time.Duration, opts storage.DirectoryOptions, opening func()) (*storage.Directory, string) {
	b.Helper()
	root := b.TempDir()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	w, err := storage.NewDirectory(root, storage.DirectoryOptions{SweepInterval: -1, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 120)
	for _, id := range benchIDs(n) {
		if err := w.Save(context.Background(), id, value, now.Add(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	later := now.Add(age)
	opts.Now = func() time.Time { return later }
	if opening != nil {
		opening()
	}
	d, err := storage.NewDirectory(root, opts)
	if err != nil {
		b.Fatal(err)
	}
	return d, root
}

// sweptCounter is a slog.Handler that adds up the files the background
// sweeper reports removed, and closes done once they reach want.
type sweptCounter struct {
	mu      sync.Mutex
	removed int
	want    int
	done    chan struct{}
}

func (c *sweptCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *sweptCounter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *sweptCounter) WithGroup(string) slog.Handler            { return c }

func (c *sweptCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "storage: swept the session directory" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "removed" {
			c.mu.Lock()
			before := c.removed
			c.removed += int(a.Value.Int64())
			if before < c.want && c.removed >= c.want {
				close(c.done)
			}
			c.mu.Unlock()
		}
		return true
	})
	return nil
}
