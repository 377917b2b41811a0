package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// sweepCursor is the position of the last session a Sweep finished, as its
// fan-out directory names and file base name; positions compare as tuples.
// The zero value is the start of the tree.
type sweepCursor struct{ top, sub, base string }

// sweepPast sorts after every fan-out directory and file name; a cursor
// whose base (or sub) is sweepPast is past its whole leaf (or top).
const sweepPast = "\xff"

// after reports whether the position (top, sub, base) comes after c.
func (c sweepCursor) after(top, sub, base string) bool {
	if top != c.top {
		return top > c.top
	}
	if sub != c.sub {
		return sub > c.sub
	}
	return base > c.base
}

// sweepStop says why a walk of the tree stopped.
type sweepStop uint8

const (
	sweepEnd   sweepStop = iota // the end of the tree
	sweepLimit                  // the budget or the limit
)

// sweepPass is the state of one Sweep.
type sweepPass struct {
	d        *Directory
	ctx      context.Context
	now      int64
	examined int   // session files examined
	dirs     int   // directory listings left
	removed  int   // files removed
	err      error // the first error met on a single file or directory
}

// Sweep runs one bounded pass of the sweeper: the background goroutine
// calls it every DirectoryOptions.SweepInterval, and tests or tools can
// call it directly. It continues where the previous pass stopped, walking
// the fan-out directories in order and wrapping around at the end, and
// examines at most DirectoryOptions.SweepBatch session files (two if the
// batch is one and the first session has two files). It removes the files
// of expired sessions, damaged files (a write cut short by a crash leaves
// one), and empty fan-out directories; it keeps the older slot of a live
// session, which the next write overwrites, and touches no other file. It
// returns the number of files removed.
//
// Cancelling ctx stops the pass between two sessions and returns ctx's
// error. An error on a single file or directory does not stop the pass;
// the first one is returned. Passes run one at a time.
func (d *Directory) Sweep(ctx context.Context) (removed int, err error) {
	if d.closed.Load() {
		return 0, d.errClosed
	}
	d.sweepMu.Lock()
	defer d.sweepMu.Unlock()
	p := &sweepPass{d: d, ctx: ctx, now: d.nowNanos(), dirs: 2*d.batch + 3}
	start := d.cursor
	stop, err := p.walk(nil)
	if err == nil && stop == sweepEnd {
		d.cursor = sweepCursor{}
		if start != (sweepCursor{}) {
			// Budget left: go on from the start, up to where this pass
			// began, so that no file is examined twice in one pass.
			stop, err = p.walk(&start)
			if err == nil && stop == sweepEnd {
				d.cursor = sweepCursor{}
			}
		}
	}
	if err == nil {
		err = p.err
	}
	return p.removed, err
}

// sweepLoop runs Sweep every interval until Close.
func (d *Directory) sweepLoop(interval time.Duration) {
	defer close(d.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-d.stopCtx.Done():
			return
		case <-t.C:
		}
		removed, err := d.Sweep(d.stopCtx)
		switch {
		case err != nil && !d.closed.Load():
			d.log.Warn("storage: sweeping the session directory", "dir", d.root, "removed", removed, "error", err)
		case removed > 0:
			d.log.Debug("storage: swept the session directory", "dir", d.root, "removed", removed)
		}
	}
}

// fail records the first error met on a single file or directory.
func (p *sweepPass) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

// interrupted returns the error that ends the pass at once, if any.
func (p *sweepPass) interrupted() error {
	if err := p.ctx.Err(); err != nil {
		return err
	}
	if p.d.closed.Load() {
		return p.d.errClosed
	}
	return nil
}

// list returns the sorted names in dir, counting one listing against the
// budget; ok is false when the budget is spent. A missing dir has no names.
func (p *sweepPass) list(dir string) (names []string, ok bool, err error) {
	if p.dirs <= 0 {
		return nil, false, nil
	}
	p.dirs--
	f, err := openFile(dir, os.O_RDONLY, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, true, nil
		}
		return nil, true, fmt.Errorf("storage: %w", err)
	}
	names, err = f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, true, fmt.Errorf("storage: %w", err)
	}
	slices.Sort(names)
	return names, true, nil
}

// walk sweeps the sessions after the cursor, up to limit when it is not
// nil, within the budget. It returns a non-nil error only when the pass
// must end at once.
func (p *sweepPass) walk(limit *sweepCursor) (sweepStop, error) {
	d := p.d
	tops, ok, err := p.list(d.root)
	if err != nil || !ok {
		return sweepLimit, err
	}
	for _, top := range tops {
		if !isFanoutName(top) || top < d.cursor.top {
			continue
		}
		if limit != nil && top > limit.top {
			return sweepLimit, nil
		}
		topPath := filepath.Join(d.root, top)
		subs, ok, err := p.list(topPath)
		if !ok {
			return sweepLimit, nil
		}
		if err != nil {
			p.fail(err)
			d.cursor = sweepCursor{top: top, sub: sweepPast}
			continue
		}
		left := 0 // leaves that remain in top
		for _, sub := range subs {
			if !isFanoutName(sub) {
				left++
				continue
			}
			if !d.cursor.after(top, sub, sweepPast) {
				left++
				continue
			}
			if limit != nil && limit.after(top, sub, "") {
				return sweepLimit, nil
			}
			stop, gone, err := p.leaf(top, sub, limit)
			if err != nil || stop == sweepLimit {
				return sweepLimit, err
			}
			if !gone {
				left++
			}
		}
		if left == 0 {
			// Fails harmlessly if a write just made a leaf in it; the
			// write retries if it removes the leaf's parent under it.
			_ = os.Remove(topPath)
		}
		d.cursor = sweepCursor{top: top, sub: sweepPast}
	}
	return sweepEnd, nil
}

// leaf sweeps the sessions of the leaf directory top/sub after the cursor.
// gone reports that the leaf was empty and is removed.
func (p *sweepPass) leaf(top, sub string, limit *sweepCursor) (stop sweepStop, gone bool, err error) {
	d := p.d
	leafPath := filepath.Join(d.root, top, sub)
	names, ok, err := p.list(leafPath)
	if !ok {
		return sweepLimit, false, nil
	}
	if err != nil {
		p.fail(err)
		d.cursor = sweepCursor{top: top, sub: sub, base: sweepPast}
		return sweepEnd, false, nil
	}

	// Group the slot files by session; names are sorted, so the groups
	// are in base name order.
	type session struct {
		base, id string
		files    int
	}
	var sessions []session
	for _, name := range names {
		id, _, ok := parseSlotName(top, sub, name)
		if !ok {
			continue
		}
		base := name[:len(name)-2]
		if n := len(sessions); n > 0 && sessions[n-1].base == base {
			sessions[n-1].files++
			continue
		}
		sessions = append(sessions, session{base: base, id: id, files: 1})
	}

	left := len(names)
	for _, s := range sessions {
		if !d.cursor.after(top, sub, s.base) {
			continue
		}
		if limit != nil && limit.after(top, sub, s.base) {
			return sweepLimit, false, nil
		}
		if p.examined > 0 && p.examined+s.files > d.batch {
			return sweepLimit, false, nil
		}
		if err := p.interrupted(); err != nil {
			return sweepLimit, false, err
		}
		removed, err := d.sweepSession(s.id, p.now)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return sweepLimit, false, err
			}
			p.fail(err)
		}
		p.examined += s.files
		p.removed += removed
		left -= removed
		d.cursor = sweepCursor{top: top, sub: sub, base: s.base}
	}
	if left == 0 {
		// Fails harmlessly if a write just created a file; a write that
		// finds the leaf gone makes it again.
		gone = os.Remove(leafPath) == nil
	}
	d.cursor = sweepCursor{top: top, sub: sub, base: sweepPast}
	return sweepEnd, gone, nil
}

// sweepSession checks both slots of the valid id. It removes damaged files,
// and all the files of an expired session, the older first; an older valid
// slot beside a live newer one is the spare the next write goes to, and
// stays.
func (d *Directory) sweepSession(id string, now int64) (removed int, err error) {
	h := dirHash(id)
	s, _, _, err := d.begin(id, h)
	if err != nil {
		return 0, err
	}
	op := cacheKeep // the sweeper never adds IDs to the cache
	defer func() { d.end(s, id, op, slotState{}) }()

	p := pathsFor(d.root, id, h)
	bp := d.getBuf()
	defer d.putBuf(bp)
	var infos [2]slotInfo
	for i := range infos {
		if infos[i], _, err = readSlot(p.slot[i], *bp, false, 0); err != nil {
			return 0, err
		}
	}
	n := newest(&infos)
	expired := n >= 0 && !infos[n].live(now)
	var doomed []int
	for i := range infos {
		if infos[i].bad != nil || (expired && infos[i].valid && i != n) {
			doomed = append(doomed, i) // damaged, or older than an expired n
		}
	}
	if expired {
		doomed = append(doomed, n) // last: removing it first could bring an older one back
		op = cacheDrop
	}
	for _, i := range doomed {
		if bad := infos[i].bad; bad != nil {
			d.log.Warn("storage: removing a damaged session file", "path", p.slot[i], "error", bad)
		}
		switch err := removeFile(p.slot[i]); {
		case err == nil:
			removed++
		case !errors.Is(err, fs.ErrNotExist):
			op = cacheDrop
			return removed, fmt.Errorf("storage: %w", err)
		}
	}
	return removed, nil
}
