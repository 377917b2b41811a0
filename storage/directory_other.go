//go:build !unix

package storage

import "os"

// lockFile does nothing where there is no flock: the caller must make sure
// that a single Directory uses a directory at a time.
func lockFile(f *os.File) error { return nil }

// removeFile removes a file.
func removeFile(path string) error { return os.Remove(path) }

// openFile opens a file.
func openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(path, flag, perm)
}
