package storage_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/internal/fakeclock"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/storage/storagetest"
)

// dirClock is a settable clock for DirectoryOptions.Now.
type dirClock = fakeclock.Clock

func newDirClock() *dirClock { return fakeclock.New(time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)) }

// logBuffer collects a logger's output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// openDir opens a Directory on root without a background sweeper, closed
// when the test ends.
func openDir(t *testing.T, root string, opts storage.DirectoryOptions) *storage.Directory {
	t.Helper()
	if opts.SweepInterval == 0 {
		opts.SweepInterval = -1
	}
	d, err := storage.NewDirectory(root, opts)
	if err != nil {
		t.Fatalf("NewDirectory(%s): %v", root, err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

func dirSave(t *testing.T, d *storage.Directory, id, value string, expires time.Time) {
	t.Helper()
	if err := d.Save(t.Context(), id, []byte(value), expires); err != nil {
		t.Fatalf("Save(%q): %v", id, err)
	}
}

func dirWantLoad(t *testing.T, d *storage.Directory, id, want string) {
	t.Helper()
	data, err := d.Load(t.Context(), id)
	if err != nil || string(data) != want {
		t.Fatalf("Load(%q) = %q, %v; want %q", id, data, err, want)
	}
}

func dirWantMissing(t *testing.T, d *storage.Directory, id string) {
	t.Helper()
	if data, err := d.Load(t.Context(), id); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Load(%q) = %q, %v; want storage.ErrNotFound", id, data, err)
	}
}

func dirSweep(t *testing.T, d *storage.Directory) int {
	t.Helper()
	n, err := d.Sweep(t.Context())
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	return n
}

// slotFiles returns the session files under root, relative to it, sorted.
func slotFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if !e.IsDir() && rel != "lock" {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// onlySlot returns the path of the single session file under root.
func onlySlot(t *testing.T, root string) string {
	t.Helper()
	files := slotFiles(t, root)
	if len(files) != 1 {
		t.Fatalf("session files under the root: %q, want exactly one", files)
	}
	return filepath.Join(root, files[0])
}

// fileState is what a walk records of a file or directory.
type fileState struct {
	mode  fs.FileMode
	size  int64
	mtime time.Time
	ctime time.Time // any change of content or metadata moves it
	atime time.Time
}

// snapshot records every file and directory under root.
func snapshot(t *testing.T, root string) map[string]fileState {
	t.Helper()
	m := make(map[string]fileState)
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		// Nothing is read: that would move the access times.
		m[path] = fileState{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime(), ctime: changeTime(fi), atime: accessTime(fi)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// wantSameTree fails t unless two snapshots are equal.
func wantSameTree(t *testing.T, before, after map[string]fileState) {
	t.Helper()
	for path, a := range after {
		b, ok := before[path]
		switch {
		case !ok:
			t.Errorf("%s was created", path)
		case a.mode != b.mode || a.size != b.size || !a.mtime.Equal(b.mtime) || !a.ctime.Equal(b.ctime):
			t.Errorf("%s was modified", path)
		case a.mode.IsRegular() && !a.atime.Equal(b.atime):
			t.Errorf("%s was read (its access time moved)", path)
		}
	}
	for path := range before {
		if _, ok := after[path]; !ok {
			t.Errorf("%s was removed", path)
		}
	}
}

func TestDirectoryConformance(t *testing.T) {
	for _, sync := range []bool{false, true} {
		t.Run(fmt.Sprintf("Sync=%v", sync), func(t *testing.T) {
			storagetest.Run(t, func(t *testing.T) storage.Storage {
				// The default background sweeper runs too.
				d, err := storage.NewDirectory(t.TempDir(), storage.DirectoryOptions{Sync: sync})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = d.Close() })
				return d
			})
		})
	}
}

func TestDirectoryLayout(t *testing.T) {
	root := t.TempDir()
	d := openDir(t, root, storage.DirectoryOptions{})
	ids := []string{"a", "A", "abc", "ABC", "aBc", "-", "_", strings.Repeat("Zz_-9", 26)[:storage.MaxIDLen]}
	for _, id := range ids {
		dirSave(t, d, id, "value of "+id, time.Time{})
	}
	for _, id := range ids {
		dirWantLoad(t, d, id, "value of "+id)
	}
	// Every name is two levels of hex fan-out, then lowercase base32 and
	// a slot number, so IDs that differ only by case never collide on a
	// case-insensitive file system.
	name := regexp.MustCompile(`^[0-9a-f]{2}/[0-9a-f]{2}/[a-z2-7]+\.[01]$`)
	files := slotFiles(t, root)
	if len(files) != len(ids) {
		t.Fatalf("session files: %q, want one per ID (%d)", files, len(ids))
	}
	seen := make(map[string]bool)
	for _, f := range files {
		f = filepath.ToSlash(f)
		if !name.MatchString(f) {
			t.Errorf("session file %q does not match %s", f, name)
		}
		low := strings.ToLower(f[:len(f)-2])
		if seen[low] {
			t.Errorf("two session files differ only by case: %q", low)
		}
		seen[low] = true
	}
	// The directories NewDirectory makes are private.
	sub := filepath.Join(root, "made", "here")
	openDir(t, sub, storage.DirectoryOptions{})
	for _, dir := range []string{filepath.Dir(sub), sub} {
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("NewDirectory made %s with mode %v, %v; want 0700", dir, fi.Mode().Perm(), err)
		}
	}
}

// hostileIDs are IDs that could escape or abuse the root if used as paths.
func hostileIDs(parent string) []string {
	return []string{
		"", ".", "..", "../x", "../../../../etc/passwd", "/etc/passwd",
		filepath.Join(parent, "victim"), "../victim", "store/../victim",
		"a\x00b", "\x00", `..\victim`, `a\b`, "C:", "séssion", "セッション",
		"id\U0001F600", "a\xffb", "%2e%2e%2fvictim", "a b", "a\nb", "lock/",
		strings.Repeat("a", 10<<10),
	}
}

func TestDirectoryHostileIDs(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "store")
	d := openDir(t, root, storage.DirectoryOptions{})
	for _, name := range []string{"victim", "x", "etc/passwd"} {
		path := filepath.Join(parent, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("do not touch "+name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	readsShow := makeReadsVisible(t, parent)

	before := snapshot(t, parent)
	ctx := t.Context()
	for _, id := range hostileIDs(parent) {
		if storage.ValidID(id) {
			t.Fatalf("%q should be invalid", id)
		}
		want := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, storage.ErrInvalidID) {
				t.Errorf("%s(%.40q) = %v, want storage.ErrInvalidID", op, id, err)
			}
		}
		data, err := d.Load(ctx, id)
		want("Load", err)
		if data != nil {
			t.Errorf("Load(%.40q) returned data", id)
		}
		want("Save", d.Save(ctx, id, []byte("x"), time.Time{}))
		want("Delete", d.Delete(ctx, id))
		want("Read", d.Read(ctx, id, func(io.Reader) error {
			t.Errorf("Read(%.40q) called fn", id)
			return nil
		}))
		want("Write", d.Write(ctx, id, time.Time{}, func(io.Writer) error {
			t.Errorf("Write(%.40q) called fn", id)
			return nil
		}))
		want("Invalidate", d.Invalidate(ctx, id))
	}
	if _, err := d.Sweep(ctx); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	after := snapshot(t, parent)
	if !readsShow {
		for path, st := range after {
			st.atime = before[path].atime
			after[path] = st
		}
	}
	wantSameTree(t, before, after)
}

// makeReadsVisible sets the access time of every file under root an hour
// before its modification time, so that on a file system mounted with
// relatime (the Linux default) the next read moves it. It reports whether
// reads show, checked on a control file.
func makeReadsVisible(t *testing.T, root string) bool {
	t.Helper()
	control := filepath.Join(t.TempDir(), "control")
	if err := os.WriteFile(control, []byte("control"), 0o600); err != nil {
		t.Fatal(err)
	}
	age := func(path string) {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, fi.ModTime().Add(-time.Hour), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			age(path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	age(control)
	fi, _ := os.Stat(control)
	was := accessTime(fi)
	if _, err := os.ReadFile(control); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Stat(control)
	if accessTime(fi).Equal(was) {
		t.Log("reads do not move access times here (noatime?): reads outside the root are not checked")
		return false
	}
	return true
}

func TestDirectoryUnknownIDCreatesNothing(t *testing.T) {
	root := t.TempDir()
	d := openDir(t, root, storage.DirectoryOptions{})
	before := snapshot(t, root)
	ctx := t.Context()
	for _, id := range []string{"unknown", "a", strings.Repeat("z", storage.MaxIDLen)} {
		dirWantMissing(t, d, id)
		err := d.Read(ctx, id, func(io.Reader) error {
			t.Errorf("Read(%q) called fn", id)
			return nil
		})
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Read(%q) = %v, want storage.ErrNotFound", id, err)
		}
		if err := d.Delete(ctx, id); err != nil {
			t.Errorf("Delete(%q): %v", id, err)
		}
		// An expired value is not stored, so it creates nothing either.
		dirSave(t, d, id, "stale", time.Now().Add(-time.Hour))
	}
	wantSameTree(t, before, snapshot(t, root))
}

func TestDirectoryExpiry(t *testing.T) {
	root := t.TempDir()
	clock := newDirClock()
	d := openDir(t, root, storage.DirectoryOptions{Now: clock.Now})

	expires := clock.Now().Add(time.Minute)
	dirSave(t, d, "short", "short", expires)
	dirSave(t, d, "forever", "forever", time.Time{})
	clock.Advance(time.Minute) // live up to and including the expiry instant
	dirWantLoad(t, d, "short", "short")
	if n := dirSweep(t, d); n != 0 {
		t.Fatalf("Sweep removed %d files of live sessions", n)
	}
	clock.Advance(time.Nanosecond)
	dirWantMissing(t, d, "short")
	if n := len(slotFiles(t, root)); n != 2 {
		t.Fatalf("%d session files before the sweep, want 2", n)
	}
	if n := dirSweep(t, d); n != 1 {
		t.Fatalf("Sweep removed %d files, want the expired one", n)
	}
	dirWantMissing(t, d, "short")
	dirWantLoad(t, d, "forever", "forever")
	if n := len(slotFiles(t, root)); n != 1 {
		t.Fatalf("%d session files after the sweep, want 1", n)
	}

	// The same through a fresh Directory, which has no cache: the expiry
	// is read from the file.
	dirSave(t, d, "short", "again", clock.Now().Add(time.Minute))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	d2 := openDir(t, root, storage.DirectoryOptions{Now: clock.Now})
	dirWantMissing(t, d2, "short")
	dirWantLoad(t, d2, "forever", "forever")

	// A value saved already expired replaces the live one.
	dirSave(t, d2, "forever", "stale", clock.Now().Add(-time.Second))
	dirWantMissing(t, d2, "forever")
	dirSweep(t, d2)
	if files := slotFiles(t, root); len(files) != 0 {
		t.Fatalf("session files after everything expired: %q", files)
	}
	// Empty fan-out directories went with them.
	entries, err := os.ReadDir(root)
	if err != nil || len(entries) != 1 || entries[0].Name() != "lock" {
		t.Fatalf("the root holds %v, %v; want only the lock file", entries, err)
	}
}

// twoSlots writes value and then newer under id, an ID not used before, and
// returns the paths of the two slot files, which hold them.
func twoSlots(t *testing.T, d *storage.Directory, root, id, value, newer string) (older, newest string) {
	t.Helper()
	dirSave(t, d, id, value, time.Time{})
	older = onlySlot(t, root)
	dirSave(t, d, id, newer, time.Time{})
	files := slotFiles(t, root)
	if len(files) != 2 {
		t.Fatalf("session files after two writes: %q, want the two slots", files)
	}
	for _, f := range files {
		if f := filepath.Join(root, f); f != older {
			newest = f
		}
	}
	return older, newest
}

func TestDirectorySlots(t *testing.T) {
	root := t.TempDir()
	d := openDir(t, root, storage.DirectoryOptions{})
	older, newest := twoSlots(t, d, root, "id", "old", "new")
	dirWantLoad(t, d, "id", "new")
	oldInfo, err := os.Stat(older)
	if err != nil {
		t.Fatal(err)
	}

	// A fresh Directory reads both slots and takes the newer; the older
	// is the spare, which the sweeper keeps.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = openDir(t, root, storage.DirectoryOptions{})
	dirWantLoad(t, d, "id", "new")
	if n := dirSweep(t, d); n != 0 {
		t.Fatalf("Sweep removed %d files of a live session", n)
	}

	// The next write overwrites the spare in place: same file, no new
	// one; the one after it the other slot.
	dirSave(t, d, "id", "newer", time.Time{})
	dirWantLoad(t, d, "id", "newer")
	if fi, err := os.Stat(older); err != nil || !os.SameFile(fi, oldInfo) {
		t.Fatalf("the write did not overwrite the spare %s in place: %v", older, err)
	}
	dirSave(t, d, "id", "newest", time.Time{})
	dirWantLoad(t, d, "id", "newest")
	if files := slotFiles(t, root); len(files) != 2 {
		t.Fatalf("session files: %q, want the two slots", files)
	}
	data, err := os.ReadFile(newest)
	if err != nil || !bytes.HasSuffix(data, []byte("newest")) {
		t.Fatalf("%s holds %q, %v; want the newest value", newest, data, err)
	}

	// Delete removes both.
	if err := d.Delete(t.Context(), "id"); err != nil {
		t.Fatal(err)
	}
	dirWantMissing(t, d, "id")
	if files := slotFiles(t, root); len(files) != 0 {
		t.Fatalf("session files after Delete: %q", files)
	}
}

func TestDirectorySweepExpiredKeepsNoOlderSlot(t *testing.T) {
	// The newer slot expires before the older one would: removing only
	// the newer would bring the older value back.
	root := t.TempDir()
	clock := newDirClock()
	d := openDir(t, root, storage.DirectoryOptions{Now: clock.Now})
	dirSave(t, d, "id", "old", clock.Now().Add(time.Hour))
	dirSave(t, d, "id", "new", clock.Now().Add(time.Minute))
	clock.Advance(2 * time.Minute)
	dirWantMissing(t, d, "id")
	if n := dirSweep(t, d); n != 2 {
		t.Fatalf("Sweep removed %d files, want both slots", n)
	}
	dirWantMissing(t, d, "id")
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = openDir(t, root, storage.DirectoryOptions{Now: clock.Now})
	dirWantMissing(t, d, "id")
}

func TestDirectorySweepCorrupt(t *testing.T) {
	root := t.TempDir()
	logs := &logBuffer{}
	d := openDir(t, root, storage.DirectoryOptions{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	dirSave(t, d, "id", "value", time.Time{})
	path := onlySlot(t, root)
	if err := os.WriteFile(path, []byte("garbage, not a session file"), 0o600); err != nil {
		t.Fatal(err)
	}
	dirWantMissing(t, d, "id")
	if !strings.Contains(logs.String(), "damaged session file") || !strings.Contains(logs.String(), path) {
		t.Fatalf("the damaged file was not logged with its path; log:\n%s", logs)
	}
	if n := dirSweep(t, d); n != 1 {
		t.Fatalf("Sweep removed %d files, want the damaged one", n)
	}
	if files := slotFiles(t, root); len(files) != 0 {
		t.Fatalf("session files after the sweep: %q", files)
	}
	// Files that are not session files are left alone.
	foreign := []string{"README", "ab/notes.txt", "ab/cd/x.2", "ab/cd/NRXWG2Y.0", "ab/cd/nrxwg2y.0"}
	for _, f := range foreign {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("mine"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if n := dirSweep(t, d); n != 0 {
		t.Fatalf("Sweep removed %d foreign files", n)
	}
	if got := len(slotFiles(t, root)); got != len(foreign) {
		t.Fatalf("%d files left, want the %d foreign ones", got, len(foreign))
	}
}

func TestDirectorySweepBatch(t *testing.T) {
	root := t.TempDir()
	clock := newDirClock()
	const batch, sessions = 3, 20
	d := openDir(t, root, storage.DirectoryOptions{Now: clock.Now, SweepBatch: batch})
	for i := range sessions {
		dirSave(t, d, fmt.Sprintf("s%02d", i), "v", clock.Now().Add(time.Minute))
	}
	dirSave(t, d, "forever", "v", time.Time{})
	clock.Advance(time.Hour)

	// A cancelled pass stops before touching anything.
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if n, err := d.Sweep(cancelled); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Sweep with a cancelled context = %d, %v; want 0, context.Canceled", n, err)
	}

	total, passes := 0, 0
	for total < sessions {
		n := dirSweep(t, d)
		if n > batch {
			t.Fatalf("a Sweep with SweepBatch %d removed %d files", batch, n)
		}
		total += n
		passes++
		if passes > 2*sessions {
			t.Fatalf("after %d passes only %d of %d expired files are removed", passes, total, sessions)
		}
	}
	// 21 files at 3 a pass: the cursor goes on from pass to pass.
	if passes > (sessions+1+batch-1)/batch+1 {
		t.Errorf("%d passes to remove %d files at %d a pass: the cursor does not advance", passes, sessions, batch)
	}
	if files := slotFiles(t, root); len(files) != 1 {
		t.Fatalf("session files left: %q, want only the live one", files)
	}
	dirWantLoad(t, d, "forever", "v")
	for range 3 {
		if n := dirSweep(t, d); n != 0 {
			t.Fatalf("Sweep removed the live session's file")
		}
	}
}

func TestDirectorySweepConcurrent(t *testing.T) {
	// Writers, readers and removals race with sweeps that remove expired
	// files and empty fan-out directories under them.
	root := t.TempDir()
	clock := newDirClock()
	d := openDir(t, root, storage.DirectoryOptions{Now: clock.Now, SweepBatch: 5})
	ctx := t.Context()
	stop := make(chan struct{})
	var sweeper sync.WaitGroup
	sweeper.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			clock.Advance(time.Second)
			if _, err := d.Sweep(ctx); err != nil {
				t.Errorf("Sweep: %v", err)
				return
			}
		}
	})

	const (
		goroutines = 8
		idsEach    = 10
		rounds     = 300
	)
	// What a goroutine knows of its IDs: a live value, nothing, or a
	// value that may have expired by now.
	type state struct {
		value string
		maybe bool
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			known := make(map[string]state)
			for i := range rounds {
				id := fmt.Sprintf("g%d-%d", g, rand.IntN(idsEach))
				value := fmt.Sprintf("%s round %d", id, i)
				var err error
				switch op := rand.IntN(10); {
				case op < 4:
					err = d.Save(ctx, id, []byte(value), clock.Now().Add(time.Hour))
					known[id] = state{value: value}
				case op < 6:
					err = d.Save(ctx, id, []byte(value), clock.Now())
					known[id] = state{value: value, maybe: true}
				case op < 7:
					err = d.Delete(ctx, id)
					known[id] = state{}
				default:
					var data []byte
					data, err = d.Load(ctx, id)
					want := known[id]
					switch {
					case errors.Is(err, storage.ErrNotFound) && (want.value == "" || want.maybe):
						err = nil
						known[id] = state{}
					case err == nil && string(data) != want.value:
						err = fmt.Errorf("Load(%s) = %q, want %q", id, data, want.value)
					}
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	sweeper.Wait()
}

func TestDirectorySweeperGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := t.TempDir()
		d, err := storage.NewDirectory(root, storage.DirectoryOptions{SweepInterval: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		dirSave(t, d, "id", "v", time.Now().Add(30*time.Second))
		time.Sleep(59 * time.Second)
		synctest.Wait()
		if n := len(slotFiles(t, root)); n != 1 {
			t.Fatalf("%d session files before the first sweep, want 1", n)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if files := slotFiles(t, root); len(files) != 0 {
			t.Fatalf("the sweeper left %q", files)
		}
		// Close stops the sweeper: synctest.Test fails if it outlives the
		// bubble.
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if err := d.Save(t.Context(), "id", []byte("v"), time.Time{}); !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Save after Close = %v, want os.ErrClosed", err)
		}
		if _, err := d.Load(t.Context(), "id"); !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Load after Close = %v, want os.ErrClosed", err)
		}
		if _, err := d.Sweep(t.Context()); !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Sweep after Close = %v, want os.ErrClosed", err)
		}
	})
}

// TestDirectorySweeperKeepsUp: on default settings, 500,000 expired
// sessions are swept within a minute. The background sweeper finds a
// backlog within its default SweepInterval (10 s), and its schedule then
// allows it at least 10,000 files a second (50 s for 500,000), more than
// one client creating 10,000 sessions a second.
//
// The files are real and the time is synctest's, which stands still while
// the sweeper works and moves only while it rests: what is checked is the
// schedule, batches × frequency, on a backlog of n files made through
// Save. The real speed depends on the disk: BenchmarkDirectorySweep/
// background measures it.
func TestDirectorySweeperKeepsUp(t *testing.T) {
	n := 10_000 // making files costs real time: mkdir is slow on ext4
	if testing.Short() {
		n = 3_000
	}
	const (
		interval = 10 * time.Second // the default SweepInterval
		rate     = 10_000           // files a second
	)
	synctest.Test(t, func(t *testing.T) {
		root := t.TempDir()
		swept := &sweepLog{}
		d, err := storage.NewDirectory(root, storage.DirectoryOptions{Logger: slog.New(swept)})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		expires := time.Now().Add(time.Second)
		value := make([]byte, 120)
		for i := range n {
			dirSave(t, d, fmt.Sprintf("flood-%06d", i), string(value), expires)
		}
		// Found within one interval of expiring, removed at rate or faster.
		deadline := expires.Add(interval + time.Duration(n)*time.Second/rate)
		time.Sleep(time.Until(deadline))
		synctest.Wait()
		if left := len(slotFiles(t, root)); left != 0 {
			t.Fatalf("%d of %d expired files left %v after they expired", left, n, deadline.Sub(expires))
		}
		// The rate itself, from the first pass that removed files to the
		// last: the files removed after the first over the time between.
		passes := swept.passes()
		total := 0
		for _, p := range passes {
			total += p.removed
		}
		if total != n {
			t.Fatalf("the sweeper reported %d files removed, want %d", total, n)
		}
		if len(passes) < 2 {
			t.Fatalf("%d files removed in %d passes: make n larger than SweepBatch", n, len(passes))
		}
		first, last := passes[0], passes[len(passes)-1]
		span := last.at.Sub(first.at)
		got := float64(n-first.removed) / span.Seconds()
		t.Logf("%d files in %d passes; %.0f files a second of simulated time after the first pass, which came %v after they expired",
			n, len(passes), got, first.at.Sub(expires))
		if got < rate {
			t.Errorf("the sweeper removed %.0f files a second, want at least %d", got, rate)
		}

		// The empty fan-out directories are left while the backlog is
		// cleared, and removed by the next round.
		time.Sleep(2 * interval)
		synctest.Wait()
		entries, err := os.ReadDir(root)
		if err != nil || len(entries) != 1 || entries[0].Name() != "lock" {
			t.Fatalf("the root holds %d entries, %v; want only the lock file", len(entries), err)
		}
	})
}

// sweepLog is a slog.Handler that records the background sweeper's
// reports of the files it removed.
type sweepLog struct {
	mu   sync.Mutex
	seen []sweptPass
}

type sweptPass struct {
	at      time.Time
	removed int
}

func (l *sweepLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *sweepLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *sweepLog) WithGroup(string) slog.Handler            { return l }

func (l *sweepLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "storage: swept the session directory" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "removed" {
			l.mu.Lock()
			l.seen = append(l.seen, sweptPass{at: r.Time, removed: int(a.Value.Int64())})
			l.mu.Unlock()
		}
		return true
	})
	return nil
}

func (l *sweepLog) passes() []sweptPass {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.seen)
}

func TestDirectoryTornFiles(t *testing.T) {
	root := t.TempDir()
	logs := &logBuffer{}
	opts := storage.DirectoryOptions{Logger: slog.New(slog.NewTextHandler(logs, nil))}
	d := openDir(t, root, opts)
	value, newer := "the older, acknowledged value", "a newer value that was being written"
	older, newest := twoSlots(t, d, root, "id", value, newer)
	full, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}

	// The newer file cut at every length, as a crash could leave it:
	// the older value is read, never a torn one. Fresh Directories read
	// the files with an empty cache.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for cut := range len(full) {
		if err := os.WriteFile(newest, full[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		d := openDir(t, root, opts)
		dirWantLoad(t, d, "id", value)
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// One flipped bit: every bit of the header, a bit of every byte of
	// the payload.
	for i := range len(full) * 8 {
		if i >= 32*8 && i%8 != i/8%8 {
			continue
		}
		flipped := bytes.Clone(full)
		flipped[i/8] ^= 1 << (i % 8)
		if err := os.WriteFile(newest, flipped, 0o600); err != nil {
			t.Fatal(err)
		}
		d := openDir(t, root, opts)
		dirWantLoad(t, d, "id", value)
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// A damaged length announcing 4 GiB is caught without allocating it.
	huge := bytes.Clone(full)
	copy(huge[24:28], []byte{0xff, 0xff, 0xff, 0xff})
	if err := os.WriteFile(newest, huge, 0o600); err != nil {
		t.Fatal(err)
	}
	d = openDir(t, root, opts)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	dirWantLoad(t, d, "id", value)
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("reading a file announcing 4 GiB allocated %d bytes", grew)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// A Directory whose cache knows the newer file falls back too.
	if err := os.WriteFile(newest, full, 0o600); err != nil {
		t.Fatal(err)
	}
	d = openDir(t, root, opts)
	dirWantLoad(t, d, "id", newer)
	if err := os.Truncate(newest, int64(len(full)-1)); err != nil {
		t.Fatal(err)
	}
	dirWantLoad(t, d, "id", value)

	// Both damaged: no session, logged, no panic.
	if err := os.WriteFile(older, []byte("STWD\x01"), 0o600); err != nil {
		t.Fatal(err)
	}
	dirWantMissing(t, d, "id")
	if got := strings.Count(logs.String(), "damaged session file"); got < 2 {
		t.Fatalf("%d damaged files logged, want both; log:\n%s", got, logs)
	}
	// A write replaces them.
	dirSave(t, d, "id", "fresh", time.Time{})
	dirWantLoad(t, d, "id", "fresh")
	if n := len(slotFiles(t, root)); n != 1 {
		t.Fatalf("%d session files after a write over damaged ones, want 1", n)
	}
}

func TestDirectoryWriteSizes(t *testing.T) {
	root := t.TempDir()
	d := openDir(t, root, storage.DirectoryOptions{})
	ctx := t.Context()
	// Values around the buffer size, written in pieces of every size,
	// growing and then shrinking, over the same two slot files.
	for _, size := range []int{0, 1, 4000, 4063, 4064, 4065, 4096, 9000, 100_000, 9000, 4065, 1, 0} {
		for _, piece := range []int{1, 7, 4096, 1 << 20} {
			want := make([]byte, size)
			for i := range want {
				want[i] = byte(i*31 + size)
			}
			err := d.Write(ctx, "id", time.Time{}, func(w io.Writer) error {
				for rest := want; len(rest) > 0; {
					n := min(piece, len(rest))
					if _, err := w.Write(rest[:n]); err != nil {
						return err
					}
					rest = rest[n:]
				}
				return nil
			})
			if err != nil {
				t.Fatalf("Write of %d bytes in pieces of %d: %v", size, piece, err)
			}
			got, err := d.Load(ctx, "id")
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("Load after a Write of %d bytes in pieces of %d = %d bytes, %v", size, piece, len(got), err)
			}
		}
	}
	// A panicking fn leaves the previous value and the files as they were.
	before := slotFiles(t, root)
	func() {
		defer func() { _ = recover() }()
		_ = d.Write(ctx, "id", time.Time{}, func(w io.Writer) error {
			_, _ = w.Write(make([]byte, 10_000))
			panic("boom")
		})
	}()
	if after := slotFiles(t, root); !slices.Equal(after, before) {
		t.Fatalf("session files after a panicking Write: %q, before: %q", after, before)
	}
	if got, err := d.Load(ctx, "id"); err != nil || len(got) != 0 {
		t.Fatalf("Load after a panicking Write = %d bytes, %v; want the empty value", len(got), err)
	}
	dirSave(t, d, "id", "after", time.Time{})
	dirWantLoad(t, d, "id", "after")

	// Slots overwritten by much shorter values shrink.
	dirSave(t, d, "id", string(make([]byte, 50_000)), time.Time{})
	dirSave(t, d, "id", string(make([]byte, 50_000)), time.Time{})
	dirSave(t, d, "id", "small", time.Time{})
	dirSave(t, d, "id", "small", time.Time{})
	for _, f := range slotFiles(t, root) {
		if fi, err := os.Stat(filepath.Join(root, f)); err != nil || fi.Size() > 4096 {
			t.Errorf("slot %s holds %d bytes after small writes, %v", f, fi.Size(), err)
		}
	}
	// Bytes left after a shorter value in its slot are ignored, also by
	// a Directory that reads the files afresh.
	dirSave(t, d, "id", strings.Repeat("long", 500), time.Time{})
	dirSave(t, d, "id", strings.Repeat("long", 500), time.Time{})
	dirSave(t, d, "id", "short", time.Time{})
	dirWantLoad(t, d, "id", "short")
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = openDir(t, root, storage.DirectoryOptions{})
	dirWantLoad(t, d, "id", "short")
	dirSave(t, d, "id", "shorter", time.Time{})
	dirWantLoad(t, d, "id", "shorter")
	if n := dirSweep(t, d); n != 0 {
		t.Fatalf("Sweep removed %d files with bytes after their value", n)
	}
}

func TestDirectoryLock(t *testing.T) {
	root := t.TempDir()
	d, err := storage.NewDirectory(root, storage.DirectoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d2, err := storage.NewDirectory(root, storage.DirectoryOptions{})
	if !errors.Is(err, storage.ErrLocked) {
		if d2 != nil {
			d2.Close()
		}
		t.Fatalf("a second NewDirectory on %s = %v, want storage.ErrLocked", root, err)
	}
	if !strings.Contains(err.Error(), root) || !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) {
		t.Errorf("the error %q does not name the directory and the holder", err)
	}
	// The relative spelling of the same directory is the same lock.
	if rel, err := filepath.Rel(".", root); err == nil {
		if _, err := storage.NewDirectory(rel, storage.DirectoryOptions{}); !errors.Is(err, storage.ErrLocked) {
			t.Errorf("NewDirectory(%s) = %v, want storage.ErrLocked", rel, err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	openDir(t, root, storage.DirectoryOptions{})
}

// The helper process: the tests below run the test binary again with
// dirHelperEnv set, so that a Directory is held by another process.
const (
	dirHelperEnv    = "STEWARD_DIRECTORY_HELPER"
	dirHelperDirEnv = "STEWARD_DIRECTORY_HELPER_DIR"
	dirHelperIDsEnv = "STEWARD_DIRECTORY_HELPER_IDS"
)

// TestDirectoryHelperProcess is not a test: it is the child process of
// TestDirectoryLockProcess and TestDirectoryCrash, and returns at once
// otherwise.
func TestDirectoryHelperProcess(t *testing.T) {
	mode := os.Getenv(dirHelperEnv)
	if mode == "" {
		return
	}
	dir := os.Getenv(dirHelperDirEnv)
	d, err := storage.NewDirectory(dir, storage.DirectoryOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	switch mode {
	case "lock":
		fmt.Println("locked")
		time.Sleep(time.Hour) // until killed
	case "crash":
		crashChild(d, os.Getenv(dirHelperIDsEnv))
	}
	os.Exit(3)
}

// crashChild updates sessions through a real engine from 16 goroutines
// until it is killed, incrementing the counter in each value and printing
// "ack ID N" after every acknowledged update that stored counter N (and
// after creating a session, N being 0). Without ids it creates 64 sessions
// first.
func crashChild(d *storage.Directory, ids string) {
	ctx := context.Background()
	eng, err := engine.New(engine.Options{})
	if err != nil {
		panic(err)
	}
	kind, err := engine.RegisterRaw(eng, "crash", engine.KindOptions{Storage: d})
	if err != nil {
		panic(err)
	}
	var out sync.Mutex // one write per line
	ack := func(id string, value []byte) {
		line := "ack " + id + " " + string(value) + "\n"
		out.Lock()
		_, _ = os.Stdout.WriteString(line)
		out.Unlock()
	}
	var sessions []string
	if ids != "" {
		sessions = strings.Split(ids, ",")
	} else {
		for range 64 {
			id, err := kind.Create(ctx, crashValue(0))
			if err != nil {
				panic(err)
			}
			sessions = append(sessions, id)
			ack(id, []byte("0"))
		}
	}
	increment := func(old []byte) ([]byte, error) {
		n, err := crashCounter(old)
		if err != nil {
			return nil, err
		}
		return crashValue(n + 1), nil
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				id := sessions[rand.IntN(len(sessions))]
				v, err := kind.Update(ctx, id, increment)
				if err == nil {
					var n int
					n, err = crashCounter(v)
					v = strconv.AppendInt(nil, int64(n), 10)
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "helper: update:", err)
					os.Exit(4)
				}
				ack(id, v)
			}
		})
	}
	wg.Wait()
}

// crashValue is the value of a crash test session whose counter is n: the
// counter in decimal, then padding to 9000 bytes, so that every write
// spans several pages and system calls, and a kill can cut it short.
func crashValue(n int) []byte {
	v := strconv.AppendInt(nil, int64(n), 10)
	v = append(v, ' ')
	return append(v, bytes.Repeat([]byte{'.'}, 9000-len(v))...)
}

// crashCounter returns the counter of a crash test session's value, and an
// error unless the value is exactly what crashValue makes of it.
func crashCounter(v []byte) (int, error) {
	head, _, _ := bytes.Cut(v, []byte(" "))
	n, err := strconv.Atoi(string(head))
	if err != nil || !bytes.Equal(v, crashValue(n)) {
		return 0, fmt.Errorf("a torn or foreign value %.40q... (%d bytes)", v, len(v))
	}
	return n, nil
}

// startHelper starts the helper process in mode on dir and returns it with
// a scanner over its standard output.
func startHelper(t *testing.T, mode, dir, ids string) (*exec.Cmd, *bufio.Scanner, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDirectoryHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), dirHelperEnv+"="+mode, dirHelperDirEnv+"="+dir, dirHelperIDsEnv+"="+ids)
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Kill and reap the child if the test ended early.
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, bufio.NewScanner(stdout), stderr
}

// killHelper SIGKILLs the helper and waits for it.
func killHelper(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != -1 {
		t.Fatalf("the helper ended with %v, want killed by SIGKILL", err)
	}
}

func TestDirectoryLockProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	root := t.TempDir()
	cmd, out, stderr := startHelper(t, "lock", root, "")
	if !out.Scan() || out.Text() != "locked" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("the helper did not lock the directory; stderr:\n%s", stderr)
	}
	_, err := storage.NewDirectory(root, storage.DirectoryOptions{})
	if !errors.Is(err, storage.ErrLocked) {
		t.Fatalf("NewDirectory while another process holds %s = %v, want storage.ErrLocked", root, err)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(cmd.Process.Pid)) {
		t.Errorf("the error %q does not name the holder, process %d", err, cmd.Process.Pid)
	}
	killHelper(t, cmd)
	// The lock died with the process.
	openDir(t, root, storage.DirectoryOptions{})
}

func TestDirectoryCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	root := t.TempDir()
	last := make(map[string]int) // the last acknowledged value of each session
	var ids []string
	for round := range 3 {
		// Kill at a random moment: after a random number of
		// acknowledgements or a random time, whichever comes first, so
		// that a slow machine keeps the test short.
		killAfter := 1000 + rand.IntN(3000)
		storm := 300*time.Millisecond + rand.N(time.Second)
		var deadline time.Time // set by the first acknowledgement
		started := time.Now()
		cmd, out, stderr := startHelper(t, "crash", root, strings.Join(ids, ","))
		acks, killed := 0, false
		for out.Scan() {
			f := strings.Fields(out.Text())
			if len(f) != 3 || f[0] != "ack" {
				continue // the test framework's own output
			}
			n, err := strconv.Atoi(f[2])
			if err != nil {
				t.Fatalf("bad ack line %q", out.Text())
			}
			if deadline.IsZero() {
				deadline = time.Now().Add(storm)
			}
			if _, ok := last[f[1]]; !ok {
				ids = append(ids, f[1])
			}
			last[f[1]] = max(last[f[1]], n)
			if acks++; !killed && acks > len(ids) && (acks >= killAfter || time.Now().After(deadline)) {
				// Lines already written are acknowledged updates too:
				// read on to the end.
				if err := cmd.Process.Kill(); err != nil { // SIGKILL
					t.Fatal(err)
				}
				killed = true
			}
		}
		err := cmd.Wait()
		if !killed {
			t.Fatalf("round %d: the helper ended after %d acknowledgements: %v; stderr:\n%s", round, acks, err, stderr)
		}
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != -1 {
			t.Fatalf("round %d: the helper ended with %v, want killed; stderr:\n%s", round, err, stderr)
		}
		if len(ids) != 64 {
			t.Fatalf("round %d: %d sessions acknowledged, want 64", round, len(ids))
		}
		t.Logf("round %d: killed after %v, %d acknowledgements read", round, time.Since(started).Round(time.Millisecond), acks)
		checkAfterCrash(t, root, ids, last)
	}
}

// checkAfterCrash reopens the directory the killed helper used (its lock
// must be free), checks through a new engine that every session holds its
// last acknowledged value or a later one, and that a sweep leaves at most
// the two slot files of each session, none damaged.
func checkAfterCrash(t *testing.T, root string, ids []string, last map[string]int) {
	t.Helper()
	d, err := storage.NewDirectory(root, storage.DirectoryOptions{SweepInterval: -1, SweepBatch: 1 << 20})
	if err != nil {
		t.Fatalf("reopening after the crash: %v", err)
	}
	eng, err := engine.New(engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// Closing the engine closes the Directory and frees the lock.
		if err := eng.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
	}()
	kind, err := engine.RegisterRaw(eng, "crash", engine.KindOptions{Storage: d})
	if err != nil {
		t.Fatal(err)
	}
	ahead := 0
	for _, id := range ids {
		v, err := kind.Load(t.Context(), id)
		if err != nil {
			t.Errorf("session %s: %v (last acknowledged %d)", id, err, last[id])
			continue
		}
		n, err := crashCounter(v)
		if err != nil {
			t.Errorf("session %s: %v", id, err)
			continue
		}
		// At most one update per goroutine was stored but not yet
		// acknowledged when the kill came.
		if n < last[id] || n > last[id]+16 {
			t.Errorf("session %s holds %d, last acknowledged %d", id, n, last[id])
		}
		if n > last[id] {
			ahead++
		}
		last[id] = n
	}

	// The sweep removes what the kill left damaged (a slot being
	// written) and nothing else: a second one finds nothing to do.
	before := len(slotFiles(t, root))
	removed, err := d.Sweep(t.Context())
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if n, err := d.Sweep(t.Context()); n != 0 || err != nil {
		t.Errorf("a second Sweep removed %d files, %v; want none", n, err)
	}
	perSession := make(map[string]int)
	for _, f := range slotFiles(t, root) {
		perSession[strings.TrimSuffix(strings.TrimSuffix(f, ".0"), ".1")]++
	}
	if len(perSession) != len(ids) {
		t.Errorf("files of %d sessions after the sweep, want %d", len(perSession), len(ids))
	}
	for name, n := range perSession {
		if n > 2 {
			t.Errorf("%d files for session file %s", n, name)
		}
	}
	t.Logf("%d session files, %d damaged by the kill; %d sessions hold an update stored but not acknowledged", before, removed, ahead)
}

func ExampleNewDirectory() {
	dir, err := os.MkdirTemp("", "sessions")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	d, err := storage.NewDirectory(dir, storage.DirectoryOptions{})
	if err != nil {
		panic(err)
	}
	defer d.Close()
	ctx := context.Background()

	err = d.Save(ctx, "session-1", []byte("cart=3"), time.Now().Add(time.Hour))
	fmt.Println("save:", err)
	data, err := d.Load(ctx, "session-1")
	fmt.Printf("load: %s %v\n", data, err)

	// A second Directory on the same directory is refused.
	_, err = storage.NewDirectory(dir, storage.DirectoryOptions{})
	fmt.Println("locked:", errors.Is(err, storage.ErrLocked))

	_ = d.Delete(ctx, "session-1")
	_, err = d.Load(ctx, "session-1")
	fmt.Println("not found:", errors.Is(err, storage.ErrNotFound))
	// Output:
	// save: <nil>
	// load: cart=3 <nil>
	// locked: true
	// not found: true
}
