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

// removeFile removes a file.
func removeFile(path string) error { return os.Remove(path) }

// openFile opens a file.
func openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(path, flag, perm)
}

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
