//go:build !unix

package storage

import (
	"errors"
	"io/fs"
	"os"
)

// lockFile does nothing where there is no flock: the caller must make sure
// that a single Directory uses a directory at a time.
func lockFile(f *os.File) error { return nil }

// fileID identifies a file as os.SameFile does.
type fileID struct{ fi fs.FileInfo }

// same reports whether a and b are the same file.
func (a fileID) same(b fileID) bool { return os.SameFile(a.fi, b.fi) }

// statID returns the identity of the file at path.
func statID(path string) (fileID, error) {
	fi, err := os.Stat(path)
	return fileID{fi}, err
}

// fileIDOf returns the identity of an open file.
func fileIDOf(f *os.File) (fileID, error) {
	fi, err := f.Stat()
	return fileID{fi}, err
}

// notExist reports whether err says that a path names no file.
func notExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// rootDir is the session directory, held open as an os.Root: every file
// operation of a Directory names its file relative to it, so it reaches
// the directory that was opened and never one made at its path since,
// where the system allows.
type rootDir struct{ r *os.Root }

// openRoot opens the directory at path.
func openRoot(path string) (rootDir, error) {
	r, err := os.OpenRoot(path)
	return rootDir{r}, err
}

// close closes the directory.
func (r rootDir) close() error { return r.r.Close() }

// id returns the identity of the directory.
func (r rootDir) id() (fileID, error) {
	fi, err := r.r.Stat(".")
	return fileID{fi}, err
}

// open opens the file at the relative path rel.
func (r rootDir) open(rel string, flag int, perm os.FileMode) (*os.File, error) {
	return r.r.OpenFile(rel, flag, perm)
}

// remove removes the file at rel.
func (r rootDir) remove(rel string) error { return r.r.Remove(rel) }

// rmdir removes the empty directory at rel.
func (r rootDir) rmdir(rel string) error { return r.r.Remove(rel) }

// mkdir makes the directory rel.
func (r rootDir) mkdir(rel string, perm os.FileMode) error { return r.r.Mkdir(rel, perm) }

// list returns the names in the directory rel ("." for the directory
// itself).
func (r rootDir) list(rel string) ([]string, error) {
	f, err := r.r.Open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}
