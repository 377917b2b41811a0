//go:build unix

package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
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

// openFile opens a file like os.OpenFile, in fewer system calls: os.OpenFile
// tries to register every file with the network poller, which a regular
// file refuses after four fcntl calls; os.NewFile checks the flags once and
// does not try.
func openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	return openAt(unix.AT_FDCWD, path, flag, perm)
}

// openAt opens the file at path relative to the directory dirfd, as
// openFile does.
func openAt(dirfd int, path string, flag int, perm os.FileMode) (*os.File, error) {
	for {
		fd, err := unix.Openat(dirfd, path, flag|unix.O_CLOEXEC, uint32(perm.Perm()))
		if err == nil {
			return os.NewFile(uintptr(fd), path), nil
		}
		if err != unix.EINTR {
			return nil, &fs.PathError{Op: "open", Path: path, Err: err}
		}
	}
}

// rootDir is the session directory, held open: every file operation of a
// Directory names its file relative to it (openat, mkdirat, unlinkat), so
// it reaches the directory that was locked wherever that is now, and never
// one made at its path since. Removed, the directory takes no new file:
// the kernel refuses to create one in it.
//
// The methods other than list use the descriptor without holding a
// reference to it: the caller must make sure that close is not called
// before they return (the Directory closes it once its operations ended).
type rootDir struct {
	f  *os.File
	fd int
}

// openRoot opens the directory at path.
func openRoot(path string) (rootDir, error) {
	f, err := openFile(path, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return rootDir{}, err
	}
	return rootDir{f: f, fd: int(f.Fd())}, nil
}

// close closes the directory.
func (r rootDir) close() error { return r.f.Close() }

// id returns the identity of the directory.
func (r rootDir) id() (fileID, error) { return fileIDOf(r.f) }

// open opens the file at the relative path rel.
func (r rootDir) open(rel string, flag int, perm os.FileMode) (*os.File, error) {
	return openAt(r.fd, rel, flag, perm)
}

// remove unlinks the file at rel with a single system call (os.Remove also
// tries rmdir when unlink fails, which a missing slot would pay for).
func (r rootDir) remove(rel string) error { return r.unlinkat(rel, 0) }

// rmdir removes the empty directory at rel.
func (r rootDir) rmdir(rel string) error { return r.unlinkat(rel, unix.AT_REMOVEDIR) }

func (r rootDir) unlinkat(rel string, flags int) error {
	for {
		err := unix.Unlinkat(r.fd, rel, flags)
		if err == nil {
			return nil
		}
		if err != unix.EINTR {
			return &fs.PathError{Op: "unlinkat", Path: rel, Err: err}
		}
	}
}

// mkdir makes the directory rel.
func (r rootDir) mkdir(rel string, perm os.FileMode) error {
	for {
		err := unix.Mkdirat(r.fd, rel, uint32(perm.Perm()))
		if err == nil {
			return nil
		}
		if err != unix.EINTR {
			return &fs.PathError{Op: "mkdirat", Path: rel, Err: err}
		}
	}
}

// list returns the names in the directory rel ("." for the directory
// itself). It holds a reference to the descriptor while it opens rel, so
// that it fails cleanly, rather than open something else, if close is
// called meanwhile.
func (r rootDir) list(rel string) ([]string, error) {
	rc, err := r.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var f *os.File
	var openErr error
	if err := rc.Control(func(fd uintptr) {
		f, openErr = openAt(int(fd), rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	}); err != nil {
		return nil, err
	}
	if openErr != nil {
		return nil, openErr
	}
	defer f.Close()
	return f.Readdirnames(-1)
}
