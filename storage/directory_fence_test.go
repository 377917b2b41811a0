package storage_test

import (
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/steward-sessions/steward/storage"
)

// goneChanges are the ways a Directory's directory or lock file can be
// taken from it while it runs, each leaving root free for a new Directory.
var goneChanges = []struct {
	name   string
	change func(t *testing.T, root string)
}{
	{"removed and made again", func(t *testing.T, root string) {
		if err := os.RemoveAll(root); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(root, 0o700); err != nil {
			t.Fatal(err)
		}
	}},
	{"renamed away and replaced", func(t *testing.T, root string) {
		if err := os.Rename(root, root+".old"); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(root, 0o700); err != nil {
			t.Fatal(err)
		}
	}},
	{"lock file replaced", func(t *testing.T, root string) {
		lock := filepath.Join(root, "lock")
		if err := os.WriteFile(lock+".new", nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(lock+".new", lock); err != nil {
			t.Fatal(err)
		}
	}},
	{"lock file removed", func(t *testing.T, root string) {
		if err := os.Remove(filepath.Join(root, "lock")); err != nil {
			t.Fatal(err)
		}
	}},
}

// wantGone fails t unless err wraps storage.ErrDirectoryGone.
func wantGone(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, storage.ErrDirectoryGone) {
		t.Errorf("%s = %v, want storage.ErrDirectoryGone", what, err)
	}
}

// waitGone waits until a Load on d fails with storage.ErrDirectoryGone,
// which only the background check can cause: loads do not check.
func waitGone(t *testing.T, d *storage.Directory, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := d.Load(t.Context(), id)
		if errors.Is(err, storage.ErrDirectoryGone) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the background check did not find the change within 10s; Load = %v", err)
		}
		time.Sleep(time.Millisecond)
	}
}

// wantAllGone checks that every operation of d fails with
// storage.ErrDirectoryGone.
func wantAllGone(t *testing.T, d *storage.Directory, id string) {
	t.Helper()
	ctx := t.Context()
	wantGone(t, "Save", d.Save(ctx, id, []byte("late"), time.Time{}))
	wantGone(t, "Save of an expired value", d.Save(ctx, id, []byte("late"), time.Unix(1, 0)))
	_, err := d.Load(ctx, id)
	wantGone(t, "Load", err)
	wantGone(t, "Delete", d.Delete(ctx, id))
	_, err = d.Sweep(ctx)
	wantGone(t, "Sweep", err)
	wantGone(t, "Write", d.Write(ctx, id, time.Time{}, func(w io.Writer) error {
		_, err := w.Write([]byte("late"))
		return err
	}))
	wantGone(t, "Read", d.Read(ctx, id, func(io.Reader) error { return nil }))
	wantGone(t, "Invalidate", d.Invalidate(ctx, id))
}

// TestDirectoryGone: a Directory A whose directory is taken from it (see
// goneChanges) lets a new Directory B lock the path, then fails every
// operation with ErrDirectoryGone, found by the check before its next
// write or by the background check, and never writes over B's sessions
// nor into the directory it had.
func TestDirectoryGone(t *testing.T) {
	ids := []string{"sessionQ0", "sessionQ1", "sessionQ2", "sessionQ3", "sessionQ4", "sessionQ5", "sessionQ6", "sessionQ7"}
	for _, c := range goneChanges {
		for _, found := range []string{"by a write", "in the background"} {
			t.Run(c.name+"/"+found, func(t *testing.T) {
				root := filepath.Join(t.TempDir(), "sessions")
				var logs logBuffer
				opts := storage.DirectoryOptions{
					CheckInterval: -1,
					Logger:        slog.New(slog.NewTextHandler(&logs, nil)),
				}
				if found == "in the background" {
					opts.CheckInterval = time.Millisecond
				}
				a := openDir(t, root, opts)
				for _, id := range ids {
					dirSave(t, a, id, "A1", time.Time{})
				}

				c.change(t, root)
				b := openDir(t, root, storage.DirectoryOptions{}) // the lock is free
				for _, id := range ids {
					dirSave(t, b, id, "B1", time.Time{})
				}
				before := snapshot(t, filepath.Dir(root))

				if found == "in the background" {
					// The loads before the check found the change read
					// the files of the directory A locked (now renamed):
					// compare what happens from the check on.
					waitGone(t, a, ids[0])
					before = snapshot(t, filepath.Dir(root))
				} else {
					err := a.Save(t.Context(), ids[0], []byte("A2"), time.Time{})
					wantGone(t, "the first Save after the change", err)
					if err != nil && !strings.Contains(err.Error(), root) {
						t.Errorf("the error %q does not name the directory", err)
					}
				}
				for _, id := range ids {
					wantAllGone(t, a, id)
				}
				// The checks look at the paths, and the operations
				// refused touch no file.
				wantSameTree(t, before, snapshot(t, filepath.Dir(root)))
				if err := a.Close(); err != nil {
					t.Errorf("Close after the change: %v", err)
				}

				// B's values are on disk, as B acknowledged them.
				if err := b.Close(); err != nil {
					t.Fatal(err)
				}
				again := openDir(t, root, storage.DirectoryOptions{})
				for _, id := range ids {
					dirWantLoad(t, again, id, "B1")
				}

				out := logs.String()
				if n := strings.Count(out, "level=ERROR"); n != 1 {
					t.Errorf("the change was logged %d times, want once:\n%s", n, out)
				}
				if !strings.Contains(out, root) {
					t.Errorf("the log does not name the directory:\n%s", out)
				}
				for _, id := range ids {
					if strings.Contains(out, id) {
						t.Errorf("the log names session %s:\n%s", id, out)
					}
				}
			})
		}
	}
}

// TestDirectoryGoneKeepsOldFiles: a Directory whose directory was renamed
// away does not go on writing there either, and leaves its sessions there
// as they were: they are not lost, they can be moved back.
func TestDirectoryGoneKeepsOldFiles(t *testing.T) {
	root := filepath.Join(t.TempDir(), "sessions")
	a := openDir(t, root, storage.DirectoryOptions{CheckInterval: -1})
	dirSave(t, a, "kept", "A1", time.Time{})
	if err := os.Rename(root, root+".old"); err != nil {
		t.Fatal(err)
	}
	wantGone(t, "Save after the rename", a.Save(t.Context(), "kept", []byte("A2"), time.Time{}))
	wantGone(t, "Save of a new session after the rename", a.Save(t.Context(), "new", []byte("A2"), time.Time{}))
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after the rename, %s exists (%v): the Directory made it again", root, err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(root+".old", root); err != nil {
		t.Fatal(err)
	}
	back := openDir(t, root, storage.DirectoryOptions{})
	dirWantLoad(t, back, "kept", "A1")
	dirWantMissing(t, back, "new")
}

// TestDirectoryGoneClose: Close of a Directory whose directory is gone
// returns nil, twice, and stops its goroutines, sweeper and check alike.
func TestDirectoryGoneClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, opts := range []storage.DirectoryOptions{
		{},                                     // the defaults: sweeper and check
		{CheckInterval: time.Millisecond},      // the check finds it
		{SweepInterval: -1, CheckInterval: -1}, // no goroutine
	} {
		root := filepath.Join(t.TempDir(), "sessions")
		d, err := storage.NewDirectory(root, opts)
		if err != nil {
			t.Fatal(err)
		}
		dirSave(t, d, "s", "v", time.Time{})
		if err := os.RemoveAll(root); err != nil {
			t.Fatal(err)
		}
		if opts.CheckInterval > 0 {
			waitGone(t, d, "s")
		} else {
			wantGone(t, "Save", d.Save(t.Context(), "s", []byte("v"), time.Time{}))
		}
		for range 2 {
			if err := d.Close(); err != nil {
				t.Errorf("Close after the directory was removed: %v", err)
			}
		}
		if _, err := d.Load(t.Context(), "s"); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Load after Close = %v, want os.ErrClosed", err)
		}
		if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after Close, %s exists (%v): the Directory made it again", root, err)
		}
	}
}

// TestDirectoryNotGone: the check does not mistake another spelling of the
// same directory, or a change of the lock file's content, for a change.
func TestDirectoryNotGone(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "sessions")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(parent, "link")
	if err := os.Symlink(root, link); err != nil {
		t.Skip("no symbolic links here:", err)
	}
	d := openDir(t, link+string(filepath.Separator)+".", storage.DirectoryOptions{CheckInterval: time.Millisecond})
	if err := os.WriteFile(filepath.Join(root, "lock"), []byte("something else\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 50 { // each write checks
		dirSave(t, d, fmt.Sprint("s", i), "v", time.Time{})
	}
	if _, err := d.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	dirWantLoad(t, d, "s49", "v")
	if n := len(slotFiles(t, root)); n != 50 {
		t.Errorf("%d session files, want 50", n)
	}
}

// TestDirectoryGoneUnderWriters hammers the window between a write's check
// and its file operations: 16 goroutines create sessions in A while its
// directory is removed (or renamed away) and made again, and B opens the
// new one at once and writes its own sessions. None of A's writes may land
// in B's directory, whether its check came before the change or not, B's
// sessions are all intact, and A refuses every write once it looked.
func TestDirectoryGoneUnderWriters(t *testing.T) {
	changes := []struct {
		name   string
		change func(root string) error
	}{
		{"removed and made again", func(root string) error {
			// The writers may create files while RemoveAll runs, until
			// they find the directory gone: try again.
			var err error
			for range 1000 {
				if err = os.RemoveAll(root); err == nil {
					return os.Mkdir(root, 0o700)
				}
			}
			return err
		}},
		{"renamed away and replaced", func(root string) error {
			if err := os.Rename(root, root+".old"); err != nil {
				return err
			}
			return os.Mkdir(root, 0o700)
		}},
	}
	rounds := 5
	if testing.Short() {
		rounds = 2
	}
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			for round := range rounds {
				hammerGone(t, round, c.change)
			}
		})
	}
}

// hammerGone runs one round of TestDirectoryGoneUnderWriters.
func hammerGone(t *testing.T, round int, change func(root string) error) {
	ctx := t.Context()
	root := filepath.Join(t.TempDir(), "sessions")
	a := openDir(t, root, storage.DirectoryOptions{SweepInterval: -1, CheckInterval: -1})
	const writers = 16
	var (
		wg      sync.WaitGroup
		stop    atomic.Bool
		started sync.WaitGroup
	)
	started.Add(writers)
	for g := range writers {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				// Once the directory is removed, each write creates its
				// files, and often the fan-out directories: the
				// operations that could land in a directory made at
				// the path. A bounded set of IDs keeps the directory
				// small enough for RemoveAll to catch up.
				_ = a.Save(ctx, fmt.Sprintf("a%dx%d", g, i%8), []byte("A"), time.Time{})
				if i == 4 {
					started.Done()
				}
			}
		})
	}
	started.Wait()
	if err := change(root); err != nil {
		stop.Store(true)
		wg.Wait()
		t.Fatalf("round %d: %v", round, err)
	}
	b, err := storage.NewDirectory(root, storage.DirectoryOptions{SweepInterval: -1, CheckInterval: -1})
	if err != nil {
		stop.Store(true)
		wg.Wait()
		t.Fatalf("round %d: B could not open the new directory: %v", round, err)
	}
	defer b.Close()
	const bSessions = 20
	for i := range bSessions {
		dirSave(t, b, fmt.Sprint("b", i), fmt.Sprint("B", i), time.Time{})
	}
	time.Sleep(5 * time.Millisecond) // A's writers go on meanwhile
	stop.Store(true)
	wg.Wait()

	wantGone(t, "A's Save after the change", a.Save(ctx, "alast", []byte("A"), time.Time{}))
	var foreign []string
	n := 0
	if err := b.Keys(ctx, func(id string) bool {
		if strings.HasPrefix(id, "a") {
			foreign = append(foreign, id)
		} else {
			n++
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(foreign) > 0 {
		t.Errorf("round %d: %d of A's sessions landed in B's directory, e.g. %q", round, len(foreign), foreign[0])
	}
	if n != bSessions {
		t.Errorf("round %d: B lists %d of its sessions, want %d", round, n, bSessions)
	}
	for i := range bSessions {
		dirWantLoad(t, b, fmt.Sprint("b", i), fmt.Sprint("B", i))
	}
	// Files that are not sessions count too: a torn file of A's would be
	// left alone by Keys.
	for _, f := range slotFiles(t, root) {
		id, err := decodeSlotName(filepath.Base(f))
		if err != nil || !strings.HasPrefix(id, "b") {
			t.Errorf("round %d: file %s in B's directory is not one of B's sessions", round, f)
			break
		}
	}
}

// decodeSlotName returns the session ID of a slot file name: the ID in
// lowercase base32 without padding, then .0 or .1.
func decodeSlotName(name string) (string, error) {
	base, ok := strings.CutSuffix(name, ".0")
	if !ok {
		if base, ok = strings.CutSuffix(name, ".1"); !ok {
			return "", fmt.Errorf("%q is not a slot file name", name)
		}
	}
	raw, err := base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding).DecodeString(base)
	return string(raw), err
}
