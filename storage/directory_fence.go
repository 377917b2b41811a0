package storage

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// ErrDirectoryGone is returned, wrapped with what changed, by every
// operation of a Directory that has found its directory or the lock file
// in it removed, renamed or replaced: the lock it holds then protects
// nothing (a second Directory, in this process or another, can lock the
// new lock file), so it stops writing rather than share the directory, and
// stops reading rather than serve values the directory no longer holds.
// The state is final: the Directory never creates the directory again nor
// takes a new lock; close it and open a new one once the directory is
// where it should be. Check it with errors.Is; through the engine, the
// error also wraps engine.ErrStorage.
var ErrDirectoryGone = errors.New("storage: session directory removed or replaced")

// defaultCheckInterval is the default of DirectoryOptions.CheckInterval.
const defaultCheckInterval = time.Second

// dirFence is what a Directory checks to know that its directory and lock
// file are still the ones it locked. It is not modified after NewDirectory.
type dirFence struct {
	root     string // the directory's absolute path
	lockPath string // the lock file's path
	rootID   fileID // the directory's identity when it was locked
	lockID   fileID // the locked lock file's identity
}

// newFence returns the fence of root, opened as dir, whose lock file lf at
// lockPath is locked, or an error wrapping ErrDirectoryGone if the
// directory or the lock file at their paths are no longer dir and lf: they
// were removed or replaced while NewDirectory opened and locked them.
func newFence(root, lockPath string, dir rootDir, lf *os.File) (dirFence, error) {
	rootID, err := dir.id()
	if err != nil {
		return dirFence{}, fmt.Errorf("storage: %w", err)
	}
	lockID, err := fileIDOf(lf)
	if err != nil {
		return dirFence{}, fmt.Errorf("storage: %w", err)
	}
	f := dirFence{root: root, lockPath: lockPath, rootID: rootID, lockID: lockID}
	if change := f.change(true); change != "" {
		return dirFence{}, fmt.Errorf("%w while it was being locked: %s", ErrDirectoryGone, change)
	}
	return f, nil
}

// change says how the directory or the lock file at its path differ from
// the ones locked, or returns "" if they are the same. A failure to look
// that is not a missing file (permissions, I/O) proves nothing and gives
// "": the operations report such failures themselves.
//
// Without full, it looks at the lock file's path alone (one stat): a
// directory removed, renamed or replaced at its path has no lock file
// there, or another one, since the locked lock file is open and its inode
// cannot be reused; the full check then says which changed.
func (f *dirFence) change(full bool) string {
	if !full {
		id, err := statID(f.lockPath)
		if err == nil && id.same(f.lockID) || err != nil && !notExist(err) {
			return ""
		}
	}
	id, err := statID(f.root)
	switch {
	case err != nil && notExist(err):
		return f.root + " is gone (removed or renamed)"
	case err != nil:
		return ""
	case !id.same(f.rootID):
		return f.root + " is another directory (the one locked was removed or renamed)"
	}
	id, err = statID(f.lockPath)
	switch {
	case err != nil && notExist(err):
		return "the lock file " + f.lockPath + " is gone (removed or renamed)"
	case err != nil:
		return ""
	case !id.same(f.lockID):
		return "the lock file " + f.lockPath + " was replaced by another file"
	}
	return ""
}

// goneErr returns the error of a Directory that found its directory or
// lock file changed, or nil.
func (d *Directory) goneErr() error {
	if p := d.gone.Load(); p != nil {
		return *p
	}
	return nil
}

// checkFence returns an error wrapping ErrDirectoryGone if the directory
// or the lock file changed, now or at an earlier check; full is passed to
// dirFence.change. The first check that finds a change logs it.
func (d *Directory) checkFence(full bool) error {
	if err := d.goneErr(); err != nil {
		return err
	}
	change := d.fence.change(full)
	if change == "" {
		return nil
	}
	err := fmt.Errorf("%w: %s; this Directory refuses every operation", ErrDirectoryGone, change)
	if !d.gone.CompareAndSwap(nil, &err) {
		return d.goneErr() // another check was first
	}
	d.log.Error("storage: the session directory was removed or replaced; every operation now fails", "dir", d.root, "change", change)
	return err
}

// watchLoop checks the fence every interval until Close, or until it finds
// a change, which is final.
func (d *Directory) watchLoop(interval time.Duration) {
	defer close(d.watchDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-d.stopCtx.Done():
			return
		case <-t.C:
		}
		if d.checkFence(true) != nil {
			return
		}
	}
}
