package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// ErrLocked is returned by NewDirectory when another Directory, in this
// process or another, already uses the directory. Check it with errors.Is.
var ErrLocked = errors.New("storage: session directory is in use by another Directory")

const (
	// dirLockName is the lock file inside the root.
	dirLockName = "lock"
	// dirStripes is the number of lock stripes (and cache shards).
	dirStripes = 256
	// dirCacheEntries bounds the IDs whose current slot is remembered.
	dirCacheEntries = 1 << 16
	// dirBufSize is the size of the scratch buffers: a session file up to
	// this size is read or written with a single system call.
	dirBufSize = 4096
	// dirCreateAttempts bounds the retries of a slot creation that races
	// with the sweeper removing its fan-out directories.
	dirCreateAttempts = 8

	defaultSweepInterval = 10 * time.Second
	defaultSweepBatch    = 1000
)

// errWouldBlock is returned by lockFile when the lock is held elsewhere.
var errWouldBlock = errors.New("lock held elsewhere")

// DirectoryOptions configures a Directory. The zero value is ready to use.
type DirectoryOptions struct {
	// Sync makes every acknowledged write and removal durable across a
	// power loss or an operating system crash: Save and Write fsync the
	// file they wrote (and its directory when they created it) before
	// returning, Delete and Invalidate fsync the directory. It costs a
	// disk flush per operation (milliseconds on most disks).
	//
	// Default false: a value is acknowledged once it is in the kernel's
	// page cache. That survives any crash or kill of the process
	// (SIGKILL, a panic, the OOM killer) at any instant, but not a power
	// loss or a kernel crash, after which the writes of the last seconds
	// may be lost: a session may hold an older value, lose its value, or
	// come back after it was invalidated.
	Sync bool

	// Now returns the current time and decides which values have expired.
	// Default (nil): time.Now.
	Now func() time.Time

	// SweepInterval is the longest the background sweeper rests between
	// two passes (see Sweep); it adapts the rest to what the last pass
	// found:
	//   - the passes go round the directory from its start to its end,
	//     and the pass that reaches the end is followed by a rest of
	//     SweepInterval: the sweeper has caught up;
	//   - a pass that spent its SweepBatch and found expired or damaged
	//     files in at least one in eight of the files it examined (a
	//     backlog) is followed by a rest as long as it took, so that the
	//     sweeper catches up as fast as half the time of one goroutine
	//     allows, and leaves the rest of the machine to the requests;
	//   - a pass that spent its SweepBatch on mostly live files is followed
	//     by a rest nineteen times as long as it took: a large directory
	//     is gone through with a twentieth of one goroutine.
	//
	// A rest is never shorter than 10ms, or SweepInterval if that is
	// shorter. The first pass runs 10ms after NewDirectory, so that a
	// restart finds a backlog at once. Default (zero): 10 seconds, so that
	// a backlog is found within 10 seconds and, at 1,000 files a batch,
	// the sweeper may remove up to 100,000 files a second (on ext4 here it
	// removes tens of thousands; see BenchmarkDirectorySweep). Negative: no
	// background sweeper; call Sweep yourself.
	SweepInterval time.Duration

	// SweepBatch bounds the work of one pass: the most session files it
	// examines (and, separately, twice as many directories it lists). The
	// background sweeper rests between passes, so it is also how much
	// work runs between two rests. Default (zero or negative): 1000.
	SweepBatch int

	// CheckInterval is how often a background goroutine checks that the
	// directory and its lock file are still the ones NewDirectory locked
	// (see "Removal and replacement" in Directory): a Directory that only
	// reads finds a change within CheckInterval. Every write, removal and
	// sweep checks anyway before it touches a file. Default (zero): 1
	// second. Negative: no background check.
	CheckInterval time.Duration

	// Logger receives warnings about corrupt files and failed sweeps, and
	// an error when the directory is found removed or replaced. Default
	// (nil): nothing is logged.
	Logger *slog.Logger
}

// Directory is a Storage and BytesStorage that keeps each session in files
// under a directory, so sessions survive restarts: the counterpart of Ktor's
// directorySessionStorage. Wrap it in a cache when reads dominate.
//
// # Layout
//
// A session lives under root/ab/cd/, where ab and cd come from a hash of
// its ID, so a million sessions spread over 65,536 directories. Its file
// name is the ID in lowercase base32, which no case-insensitive file
// system confuses with another ID, with the suffix .0 or .1: a session has
// two slots, and once written twice, two files. Each file starts with a
// header holding a magic, the format version, a sequence number, the
// expiry, the payload length and a CRC-32C over header and payload. The
// directory also holds the lock file, named lock; other files are left
// alone. Files are created with mode 0600, directories with 0700.
//
// # Crash safety
//
// A write never touches the slot holding the current value: it overwrites
// the other slot in place, payload first and header last, with the next
// sequence number. A reader takes the valid slot with the highest sequence
// number, so a write cut short anywhere leaves the previous value
// readable: a slot that is partial or damaged fails its CRC and is
// ignored. A value is never read torn; a session whose every file is
// damaged reads as ErrNotFound and is logged. Writing in place creates and
// removes no file, which matters on ext4: replacing a file by rename makes
// ext4 flush it, and without a journal, ext4 spends longer and longer
// allocating inodes while many were freed in the last minutes. See
// DirectoryOptions.Sync for what survives a power loss.
//
// # Concurrency and locking
//
// A Directory takes an exclusive lock (flock) on its lock file, so a second
// Directory on the same directory, in this process or another, fails with
// ErrLocked; the lock dies with the process, so a crash never blocks a
// restart. On systems without flock no lock is taken. Calls for one ID run
// one at a time, calls for different IDs run in parallel. The Directory
// remembers the current slot of up to 65,536 IDs, so that a write does not
// have to read both slots first.
//
// # Removal and replacement
//
// A lock protects only while its file is the one at the path: once the
// directory is removed or renamed and another made at its path, or the
// lock file alone is removed or replaced, a second Directory can lock the
// new lock file, and the two would overwrite each other's sessions. So a
// Directory checks that the directory and the lock file at their paths are
// still the ones it locked (their device and inode numbers; os.SameFile
// where there are none): before every write and removal (one stat of the
// lock file's path: a directory removed, renamed or replaced has no lock
// file there, or another one; a stat that fails otherwise, such as for
// permissions, is left to the full check), before every sweep pass, and every DirectoryOptions.CheckInterval (1 second) in the
// background. Once it finds a change, every operation, reads included,
// returns an error wrapping ErrDirectoryGone that says what changed, the
// change is logged once (at level Error), and the Directory never makes
// the directory again nor takes a new lock: its sessions are not lost in
// silence.
//
// Nor does it ever write in a directory made at the path since, even with
// an operation already past its check when the change happens: the
// Directory keeps its directory open and names every file relative to it
// (openat, mkdirat and unlinkat on Unix, os.Root elsewhere, which on a
// few systems such as plan9 and js falls back to paths), so its files go
// to the directory it locked, wherever that was renamed, and a removed
// directory takes no new file. Such an operation may complete in the
// renamed directory, or fail; the next one fails with ErrDirectoryGone.
//
// # Expiry and sweeping
//
// A value past its expiry reads as ErrNotFound; the expiry is in the
// header, so an expired file is recognised without reading its value. A
// background goroutine sweeps the directories a bounded batch at a time
// (see Sweep), removing the files of expired sessions and damaged files;
// it rests between batches, long when it has caught up and briefly while it
// finds a backlog (see DirectoryOptions.SweepInterval), so that it removes
// expired files much faster than one client can create sessions, and
// reports each expired session it removes, with its value, to the
// functions registered with OnExpired (the engine's expired events).
// Close stops it.
//
// Read, Write and Invalidate come from the embedded Streams: Read loads the
// whole value into memory before calling its function, and Write collects
// its function's output in memory before saving it. The contexts are not
// consulted: each call is a few system calls. A Directory is safe for
// concurrent use.
type Directory struct {
	Streams // Read, Write and Invalidate over Load, Save and Delete

	root  string
	sync  bool
	now   func() time.Time
	log   *slog.Logger
	batch int

	dir       rootDir               // the directory, held open: every file operation goes through it
	lock      *os.File              // the locked lock file, kept open
	fence     dirFence              // what the lock protects, checked by checkFence
	gone      atomic.Pointer[error] // the ErrDirectoryGone error once a change is found
	errClosed error                 // returned by operations after Close

	stripes []dirStripe
	bufs    sync.Pool   // *[]byte scratch buffers of dirBufSize
	expiry  expiryHooks // see OnExpired

	sweepMu sync.Mutex  // serializes Sweep passes, protects cursor
	cursor  sweepCursor // where the next Sweep starts

	closed    atomic.Bool
	stopCtx   context.Context // cancelled by Close: stops the sweeper and watchLoop
	stop      context.CancelFunc
	done      chan struct{} // closed when the sweeper has returned; nil without one
	watchDone chan struct{} // closed when watchLoop has returned; nil without it
	closeOnce sync.Once
	closeErr  error
}

// dirStripe serializes the operations on the IDs that hash to it and
// caches their current slots.
type dirStripe struct {
	mu sync.Mutex // protects busy and cache
	// busy holds the IDs with an operation in progress. The value is nil,
	// or a channel that waiting operations wait on, closed when the
	// operation ends.
	busy  map[string]chan struct{}
	cache *simplelru.LRU[string, slotState]
	idle  sync.Cond // broadcast when busy empties after Close began
}

// slotState is what the cache knows of an ID: which slot holds its current
// value, with which sequence number, and how large each slot file is (-1:
// unknown or missing).
type slotState struct {
	seq  uint64
	size [2]int64
	slot uint8
}

// unknownSizes are the sizes of slot files not measured. It is never
// modified.
var unknownSizes = [2]int64{-1, -1}

// cacheOp says what an operation learned about its ID.
type cacheOp uint8

const (
	cacheKeep cacheOp = iota // nothing new
	cacheSet                 // the given state is current
	cacheDrop                // forget the ID
)

// NewDirectory returns a Directory that keeps sessions under dir, creating
// dir (mode 0700) if needed and locking it; a relative dir is resolved
// against the working directory once, here. It fails with an error
// wrapping ErrLocked if another Directory uses dir. Close the Directory to
// stop its sweeper and release the lock.
func NewDirectory(dir string, opts DirectoryOptions) (*Directory, error) {
	if dir == "" {
		return nil, errors.New("storage: NewDirectory: empty directory path")
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: NewDirectory %q: %w", dir, err)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("storage: creating the session directory: %w", err)
	}
	if opts.Sync {
		if err := syncPath(filepath.Dir(root)); err != nil {
			return nil, err
		}
	}
	rd, err := openRoot(root)
	if err != nil {
		return nil, fmt.Errorf("storage: opening the session directory: %w", err)
	}
	lockPath := filepath.Join(root, dirLockName)
	lf, err := rd.open(dirLockName, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		rd.close()
		return nil, fmt.Errorf("storage: opening the lock file %s: %w", lockPath, err)
	}
	if err := lockFile(lf); err != nil {
		holder := lockHolder(lf)
		lf.Close()
		rd.close()
		if err == errWouldBlock {
			return nil, fmt.Errorf("%w: %s is locked%s", ErrLocked, lockPath, holder)
		}
		return nil, fmt.Errorf("storage: locking %s: %w", lockPath, err)
	}
	// The directory or the lock file may have been replaced since they
	// were made and opened: the lock would protect nothing.
	fence, err := newFence(root, lockPath, rd, lf)
	if err != nil {
		lf.Close()
		rd.close()
		return nil, err
	}
	// Record who holds the lock, for the error of the next one. Only a
	// diagnostic: failing to write it is no reason to fail.
	if lf.Truncate(0) == nil {
		_, _ = lf.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}

	d := &Directory{
		root:      root,
		sync:      opts.Sync,
		now:       opts.Now,
		log:       opts.Logger,
		batch:     opts.SweepBatch,
		dir:       rd,
		lock:      lf,
		fence:     fence,
		errClosed: fmt.Errorf("storage: session directory %s: %w", root, os.ErrClosed),
		stripes:   make([]dirStripe, dirStripes),
	}
	d.Streams = NewStreams(d)
	if d.now == nil {
		d.now = time.Now
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.batch <= 0 {
		d.batch = defaultSweepBatch
	}
	d.bufs.New = func() any {
		b := make([]byte, dirBufSize)
		return &b
	}
	for i := range d.stripes {
		s := &d.stripes[i]
		s.busy = make(map[string]chan struct{})
		s.idle.L = &s.mu
		lru, err := simplelru.NewLRU[string, slotState](dirCacheEntries/dirStripes, nil)
		if err != nil {
			panic("storage: " + err.Error()) // unreachable: the size is positive
		}
		s.cache = lru
	}
	d.stopCtx, d.stop = context.WithCancel(context.Background())
	interval := opts.SweepInterval
	if interval == 0 {
		interval = defaultSweepInterval
	}
	if interval > 0 {
		d.done = make(chan struct{})
		go d.sweepLoop(interval)
	}
	check := opts.CheckInterval
	if check == 0 {
		check = defaultCheckInterval
	}
	if check > 0 {
		d.watchDone = make(chan struct{})
		go d.watchLoop(check)
	}
	return d, nil
}

// lockHolder returns " by process N" from the lock file's content, or "".
func lockHolder(f *os.File) string {
	var b [24]byte
	n, _ := f.ReadAt(b[:], 0)
	pid := strings.TrimSpace(string(b[:n]))
	if _, err := strconv.Atoi(pid); err != nil {
		return ""
	}
	return " by process " + pid
}

// Close stops the background goroutines, waits for the operations in
// progress, and releases the lock. Operations called afterwards return an
// error wrapping os.ErrClosed. Calling Close again returns the result of
// the first call. Closing a Directory whose directory is gone (see
// ErrDirectoryGone) releases what it holds and returns nil.
func (d *Directory) Close() error {
	d.closeOnce.Do(func() {
		d.closed.Store(true)
		d.stop()
		if d.done != nil {
			<-d.done
		}
		if d.watchDone != nil {
			<-d.watchDone
		}
		for i := range d.stripes {
			s := &d.stripes[i]
			s.mu.Lock()
			for len(s.busy) > 0 {
				s.idle.Wait()
			}
			s.mu.Unlock()
		}
		// A Sweep called by the user may still be between two sessions,
		// about to list or prune through the descriptor.
		d.sweepMu.Lock()
		d.sweepMu.Unlock()
		if err := d.lock.Close(); err != nil {
			d.closeErr = fmt.Errorf("storage: releasing the lock: %w", err)
		}
		if err := d.dir.close(); err != nil && d.closeErr == nil {
			d.closeErr = fmt.Errorf("storage: closing the session directory: %w", err)
		}
	})
	return d.closeErr
}

// nowNanos returns the current time in Unix nanoseconds.
func (d *Directory) nowNanos() int64 {
	return d.now().UnixNano()
}

func (d *Directory) getBuf() *[]byte  { return d.bufs.Get().(*[]byte) }
func (d *Directory) putBuf(b *[]byte) { d.bufs.Put(b) }

// begin waits until no other operation on id is in progress and marks id
// busy. It returns id's stripe and what the cache knows of id. Every begin
// that succeeds must be followed by end.
func (d *Directory) begin(id string, h uint64) (s *dirStripe, st slotState, cached bool, err error) {
	s = &d.stripes[h%dirStripes]
	s.mu.Lock()
	for {
		if d.closed.Load() {
			s.mu.Unlock()
			return nil, slotState{}, false, d.errClosed
		}
		if err := d.goneErr(); err != nil {
			s.mu.Unlock()
			return nil, slotState{}, false, err
		}
		ch, ok := s.busy[id]
		if !ok {
			break
		}
		if ch == nil {
			ch = make(chan struct{})
			s.busy[id] = ch
		}
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
	s.busy[id] = nil
	st, cached = s.cache.Get(id)
	s.mu.Unlock()
	return s, st, cached, nil
}

// end records what the operation learned of id and ends it, letting the
// next operation on id start.
func (d *Directory) end(s *dirStripe, id string, op cacheOp, st slotState) {
	s.mu.Lock()
	switch op {
	case cacheSet:
		if s.cache.Contains(id) {
			s.cache.Add(id, st)
		} else {
			// The key outlives the call: do not keep a larger string that
			// id may be sliced from alive.
			s.cache.Add(strings.Clone(id), st)
		}
	case cacheDrop:
		s.cache.Remove(id)
	}
	ch := s.busy[id]
	delete(s.busy, id)
	if len(s.busy) == 0 && d.closed.Load() {
		s.idle.Broadcast()
	}
	s.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// scan reads and checks both slots of an ID, logging the damaged ones.
func (d *Directory) scan(p *slotPaths, buf []byte, wantPayload bool) (infos [2]slotInfo, payloads [2][]byte, err error) {
	for i := range infos {
		infos[i], payloads[i], err = readSlot(d.dir, p.slot[i], buf, wantPayload, 0)
		if err != nil {
			return infos, payloads, err
		}
		if infos[i].bad != nil {
			d.log.Warn("storage: damaged session file ignored", "path", filepath.Join(d.root, p.slot[i]), "error", infos[i].bad)
		}
	}
	return infos, payloads, nil
}

// Load returns the value stored under id, or an error wrapping ErrNotFound
// when there is no live one. A session whose files are all damaged reads
// as ErrNotFound and is logged. The returned slice is the caller's.
func (d *Directory) Load(ctx context.Context, id string) ([]byte, error) {
	if !ValidID(id) {
		return nil, ErrInvalidID
	}
	h := dirHash(id)
	s, st, cached, err := d.begin(id, h)
	if err != nil {
		return nil, err
	}
	op, newSt := cacheKeep, st
	defer func() { d.end(s, id, op, newSt) }()

	p := pathsFor(id, h)
	bp := d.getBuf()
	defer d.putBuf(bp)
	now := d.nowNanos()
	if cached {
		// The cached slot is the current one: read it alone, and judge its
		// expiry from the header.
		info, payload, err := readSlot(d.dir, p.slot[st.slot], *bp, true, now)
		if err != nil {
			return nil, err
		}
		if info.valid && info.seq == st.seq {
			if !info.live(now) {
				return nil, ErrNotFound
			}
			return payload, nil
		}
		// Changed behind our back (removed or damaged by hand): read both.
	}
	infos, payloads, err := d.scan(&p, *bp, true)
	if err != nil {
		op = cacheDrop
		return nil, err
	}
	n := newest(&infos)
	if n < 0 {
		op = cacheDrop
		return nil, ErrNotFound
	}
	op, newSt = cacheSet, slotState{seq: infos[n].seq, size: unknownSizes, slot: uint8(n)}
	if !infos[n].live(now) {
		return nil, ErrNotFound
	}
	return payloads[n], nil
}

// Save stores data under id until expires (the zero time: no expiry),
// replacing any previous value. A value already expired is not stored:
// Save removes the previous one instead. Save does not keep data.
func (d *Directory) Save(ctx context.Context, id string, data []byte, expires time.Time) error {
	if !ValidID(id) {
		return ErrInvalidID
	}
	exp := expiryNanos(expires)
	if exp != 0 && d.nowNanos() > exp {
		_, err := d.removeFound(id)
		return err
	}
	return d.store(id, exp, data)
}

// Delete removes the value stored under id. Deleting an unknown id is not
// an error.
func (d *Directory) Delete(ctx context.Context, id string) error {
	if !ValidID(id) {
		return ErrInvalidID
	}
	_, err := d.removeFound(id)
	return err
}

// DeleteFound implements ExpiryReporter: it is Delete, reporting whether
// it removed a session's files.
func (d *Directory) DeleteFound(ctx context.Context, id string) (bool, error) {
	if !ValidID(id) {
		return false, ErrInvalidID
	}
	return d.removeFound(id)
}

// OnExpired implements ExpiryReporter: the sweeper reports each expired
// session whose files it removes (see Sweep), with the value it held.
func (d *Directory) OnExpired(fn func(id string, value []byte)) (unregister func()) {
	return d.expiry.add(fn)
}

// store writes data as the new value of the valid id over the slot that is
// not current, in place.
func (d *Directory) store(id string, expires int64, data []byte) (err error) {
	h := dirHash(id)
	s, st, cached, err := d.begin(id, h)
	if err != nil {
		return err
	}
	op, newSt := cacheKeep, st
	defer func() { d.end(s, id, op, newSt) }()
	if err := d.checkFence(false); err != nil {
		return err
	}
	defer d.explain(&err)

	p := pathsFor(id, h)
	bp := d.getBuf()
	defer d.putBuf(bp)
	have := cached
	if !cached {
		infos, _, err := d.scan(&p, *bp, false)
		if err != nil {
			return err
		}
		st = slotState{size: unknownSizes}
		switch n := newest(&infos); {
		case n >= 0:
			have, st.seq, st.slot = true, infos[n].seq, uint8(n)
			op, newSt = cacheSet, st
		case infos[1].bad != nil:
			// No valid value: this write goes to slot 0, and a damaged
			// slot 1 would be logged by every read until the next
			// write. Remove it now.
			if err := d.dir.remove(p.slot[1]); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("storage: %w", err)
			}
		}
	}
	target := 0
	if have {
		target = 1 - int(st.slot)
	}
	size, err := d.writeSlot(&p, target, st.seq+1, expires, st.size[target], *bp, data)
	if err != nil {
		return err
	}
	st.seq, st.slot, st.size[target] = st.seq+1, uint8(target), size
	op, newSt = cacheSet, st
	return nil
}

// writeSlot writes the value data over slot target of p, creating the file
// if needed, and returns the file's size. prevSize is the
// file's size if known, else -1. The file is never the current slot, so a
// write cut short leaves the current value alone; on failure the file is
// removed.
func (d *Directory) writeSlot(p *slotPaths, target int, seq uint64, expires int64, prevSize int64, buf []byte, data []byte) (int64, error) {
	path := p.slot[target]
	f, created, err := d.openSlot(p, path)
	if err != nil {
		return 0, err
	}
	w := newSlotWriter(f, buf)
	open, ok := true, false
	defer func() {
		// Leave no partial file behind. A spare that was not written to
		// stays.
		if open {
			f.Close()
		}
		if !ok && (created || w.wrote) {
			_ = d.dir.remove(path)
		}
	}()
	if _, err := w.Write(data); err != nil {
		return 0, err
	}
	if err := w.finish(seq, expires); err != nil {
		return 0, err
	}
	// The header says how long the value is, so bytes of an older, longer
	// value after it are harmless; cut them when that frees space (a
	// truncation to zero would make ext4 flush the file on close).
	size := dirHeaderLen + int64(w.n)
	switch {
	case created:
	case prevSize < 0 || prevSize > size+dirBufSize:
		if err := f.Truncate(size); err != nil {
			return 0, fmt.Errorf("storage: %w", err)
		}
	default:
		size = max(size, prevSize)
	}
	if d.sync {
		if err := f.Sync(); err != nil {
			return 0, fmt.Errorf("storage: %w", err)
		}
	}
	open = false
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("storage: %w", err)
	}
	if created && d.sync {
		if err := d.syncDir(p.leaf); err != nil {
			return 0, err
		}
	}
	ok = true
	return size, nil
}

// openSlot opens the slot file at path for writing, creating it and the
// fan-out directories if they are missing; created reports a new file.
func (d *Directory) openSlot(p *slotPaths, path string) (f *os.File, created bool, err error) {
	for range dirCreateAttempts {
		f, err = d.dir.open(path, os.O_WRONLY, 0)
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			break
		}
		f, err = d.dir.open(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		switch {
		case err == nil:
			return f, true, nil
		case errors.Is(err, fs.ErrExist):
			// Created since the first open: open it again.
		case errors.Is(err, fs.ErrNotExist):
			// The first session in these fan-out directories, or the
			// sweeper just removed them: make them.
			if merr := d.mkdirs(p); merr != nil && !errors.Is(merr, fs.ErrNotExist) {
				return nil, false, merr
			}
		default:
			return nil, false, fmt.Errorf("storage: %w", err)
		}
	}
	if err != nil {
		return nil, false, fmt.Errorf("storage: %w", err)
	}
	return f, false, nil
}

// mkdirs makes the fan-out directories of p, syncing their parents when
// the Directory syncs.
func (d *Directory) mkdirs(p *slotPaths) error {
	for i, dir := range [2]string{p.top, p.leaf} {
		err := d.dir.mkdir(dir, 0o700)
		switch {
		case err == nil:
			if d.sync {
				parent := "."
				if i == 1 {
					parent = p.top
				}
				if err := d.syncDir(parent); err != nil {
					return err
				}
			}
		case errors.Is(err, fs.ErrExist):
		default:
			return fmt.Errorf("storage: %w", err)
		}
	}
	return nil
}

// removeFound removes both slots of the valid id, the older first, so that
// an interruption never leaves an older value to come back. It reports
// whether it removed a file.
func (d *Directory) removeFound(id string) (removed bool, err error) {
	h := dirHash(id)
	s, st, cached, err := d.begin(id, h)
	if err != nil {
		return false, err
	}
	defer d.end(s, id, cacheDrop, slotState{})
	if err := d.checkFence(false); err != nil {
		return false, err
	}
	defer d.explain(&err)

	p := pathsFor(id, h)
	order := [2]int{0, 1}
	if cached {
		order = [2]int{1 - int(st.slot), int(st.slot)}
	} else {
		bp := d.getBuf()
		infos, _, err := d.scan(&p, *bp, false)
		d.putBuf(bp)
		if err != nil {
			return false, err
		}
		if !infos[0].exists && !infos[1].exists {
			return false, nil
		}
		if newest(&infos) == 0 {
			order = [2]int{1, 0}
		}
	}
	for _, i := range order {
		err := d.dir.remove(p.slot[i])
		switch {
		case err == nil:
			removed = true
		case !errors.Is(err, fs.ErrNotExist):
			return removed, fmt.Errorf("storage: %w", err)
		}
	}
	if removed && d.sync {
		return removed, d.syncDir(p.leaf)
	}
	return removed, nil
}

// explain replaces the error *err of a write or removal by the error
// wrapping ErrDirectoryGone when the directory or the lock file changed
// while it ran: the change is the cause, and what the caller must see.
func (d *Directory) explain(err *error) {
	if *err != nil {
		if gone := d.checkFence(true); gone != nil {
			*err = gone
		}
	}
}

// syncDir fsyncs the directory rel of the session directory ("." for
// itself), making the creations and removals of names in it durable.
func (d *Directory) syncDir(rel string) error {
	f, err := d.dir.open(rel, os.O_RDONLY, 0)
	return syncOpened(f, err, filepath.Join(d.root, rel))
}

// syncPath fsyncs the directory at path.
func syncPath(path string) error {
	f, err := os.Open(path)
	return syncOpened(f, err, path)
}

// syncOpened fsyncs and closes f, the directory at path as opened with
// error err.
func syncOpened(f *os.File, err error, path string) error {
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("storage: syncing directory %s: %w", path, err)
	}
	return nil
}

// Interface checks.
var (
	_ Storage        = (*Directory)(nil)
	_ BytesStorage   = (*Directory)(nil)
	_ ExpiryReporter = (*Directory)(nil)
	_ io.Closer      = (*Directory)(nil)
)
