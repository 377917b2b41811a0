//go:build unix

package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// lockFile takes an exclusive, non-blocking flock on f. It returns
// errWouldBlock if another open file holds it, in this process or another.
// The kernel drops the lock when f is closed or the process dies.
func lockFile(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lockErr error
	err = rc.Control(func(fd uintptr) {
		for {
			lockErr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
			if lockErr != syscall.EINTR {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	if errors.Is(lockErr, syscall.EWOULDBLOCK) {
		return errWouldBlock
	}
	return lockErr
}

// fileID identifies a file: its device and inode numbers. While a file is
// open its inode number is not reused, so a path whose fileID is the one of
// an open file names that file.
type fileID struct{ dev, ino uint64 }

// same reports whether a and b are the same file.
func (a fileID) same(b fileID) bool { return a == b }

// statID returns the identity of the file at path, following symbolic
// links, without allocating a FileInfo.
func statID(path string) (fileID, error) {
	var st syscall.Stat_t
	for {
		err := syscall.Stat(path, &st)
		if err == nil {
			return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, nil
		}
		if err != syscall.EINTR {
			return fileID{}, &fs.PathError{Op: "stat", Path: path, Err: err}
		}
	}
}

// fileIDOf returns the identity of an open file.
func fileIDOf(f *os.File) (fileID, error) {
	fi, err := f.Stat()
	if err != nil {
		return fileID{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, fmt.Errorf("stat %s: no device and inode numbers", f.Name())
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, nil
}

// notExist reports whether err says that a path names no file: it is
// missing, or one of its directories is not a directory.
func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// removeFile unlinks a file with a single system call (os.Remove also
// tries rmdir when unlink fails, which a missing slot would pay for).
func removeFile(path string) error {
	for {
		err := syscall.Unlink(path)
		if err == nil {
			return nil
		}
		if err != syscall.EINTR {
			return &fs.PathError{Op: "unlink", Path: path, Err: err}
		}
	}
}

// openFile opens a file like os.OpenFile, in fewer system calls: os.OpenFile
// tries to register every file with the network poller, which a regular
// file refuses after four fcntl calls; os.NewFile checks the flags once and
// does not try.
func openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	for {
		fd, err := syscall.Open(path, flag|syscall.O_CLOEXEC, uint32(perm.Perm()))
		if err == nil {
			return os.NewFile(uintptr(fd), path), nil
		}
		if err != syscall.EINTR {
			return nil, &fs.PathError{Op: "open", Path: path, Err: err}
		}
	}
}
