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
	sweepEnd    sweepStop = iota // the end of the tree
	sweepLimit                   // the limit: where the pass began
	sweepBudget                  // the budget of the pass is spent
)

// The background sweeper's schedule (see DirectoryOptions.SweepInterval).
// The pauses are measured on the real clock, never on DirectoryOptions.Now,
// which only decides expiry.
const (
	// sweepMinPause is the shortest rest between two passes: the sweeper
	// yields at least this long after every batch.
	sweepMinPause = 10 * time.Millisecond
	// sweepBacklogShare: a pass that found expired files in at least one
	// of this many of the files it examined means a backlog.
	sweepBacklogShare = 8
	// sweepScanRest: a pass that went through mostly live files is
	// followed by a rest this many times as long as it took.
	sweepScanRest = 19
)

// sweepPass is the state of one Sweep.
type sweepPass struct {
	d        *Directory
	ctx      context.Context
	now      int64
	prune    bool  // remove empty fan-out directories
	examined int   // session files examined
	dirs     int   // directory listings left
	removed  int   // files removed
	err      error // the first error met on a single file or directory
}

// sweepResult is what a pass did.
type sweepResult struct {
	removed  int  // files removed
	examined int  // session files examined
	more     bool // the pass spent its budget before the end of its round
}

// Sweep runs one bounded pass of the sweeper: the background goroutine
// runs such passes on the schedule DirectoryOptions.SweepInterval
// describes, and tests or tools can call it directly. It continues where
// the previous pass stopped, walking
// the fan-out directories in order and wrapping around at the end, and
// examines at most DirectoryOptions.SweepBatch session files (two if the
// batch is one and the first session has two files). It removes the files
// of expired sessions, damaged files (a write cut short by a crash leaves
// one), and empty fan-out directories; it keeps the older slot of a live
// session, which the next write overwrites, and touches no other file. It
// returns the number of files removed. (The background sweeper removes
// empty directories only in a pass that follows one that found little to
// remove: on ext4, removing a directory costs ten times as much as
// removing a file, and a backlog is cleared faster without it.)
//
// Cancelling ctx stops the pass between two sessions and returns ctx's
// error. An error on a single file or directory does not stop the pass;
// the first one is returned. A pass checks first that the directory is
// still the one locked, and returns an error wrapping ErrDirectoryGone if
// not. Passes run one at a time.
func (d *Directory) Sweep(ctx context.Context) (removed int, err error) {
	res, err := d.sweep(ctx, true, true)
	return res.removed, err
}

// sweep runs one pass; prune says whether it removes empty fan-out
// directories, wrap whether it goes on from the start of the tree when it
// reaches the end with budget left. The background sweeper does not wrap:
// a pass that reaches the end ends the round.
func (d *Directory) sweep(ctx context.Context, prune, wrap bool) (sweepResult, error) {
	if d.closed.Load() {
		return sweepResult{}, d.errClosed
	}
	d.sweepMu.Lock()
	defer d.sweepMu.Unlock()
	if d.closed.Load() {
		return sweepResult{}, d.errClosed
	}
	if err := d.checkFence(true); err != nil {
		return sweepResult{}, err
	}
	p := &sweepPass{d: d, ctx: ctx, now: d.nowNanos(), prune: prune, dirs: 2*d.batch + 3}
	start := d.cursor
	stop, err := p.walk(nil)
	if err == nil && stop == sweepEnd {
		d.cursor = sweepCursor{}
		if wrap && start != (sweepCursor{}) {
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
	return sweepResult{removed: p.removed, examined: p.examined, more: stop == sweepBudget}, err
}

// sweepLoop runs sweep passes until Close, resting between them as
// sweepRest says. The first pass comes soon after NewDirectory, so that a
// restart finds a backlog at once.
func (d *Directory) sweepLoop(interval time.Duration) {
	defer close(d.done)
	t := time.NewTimer(min(sweepMinPause, interval))
	defer t.Stop()
	behind := true // no pruning before a pass has found little to remove
	for {
		select {
		case <-d.stopCtx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		res, err := d.sweep(d.stopCtx, !behind, false)
		took := time.Since(start)
		switch {
		case errors.Is(err, ErrDirectoryGone):
			return // final, and logged by checkFence
		case err != nil && !d.closed.Load():
			d.log.Warn("storage: sweeping the session directory", "dir", d.root, "removed", res.removed, "error", err)
		case res.removed > 0:
			d.log.Debug("storage: swept the session directory", "dir", d.root, "removed", res.removed, "examined", res.examined)
		}
		var rest time.Duration
		rest, behind = sweepRest(res, took, interval)
		t.Reset(rest)
	}
}

// sweepRest returns how long the background sweeper rests after a pass
// that took took, and whether the pass found a backlog:
//   - after a pass that reached the end of the tree, interval: a round
//     over the whole directory is over;
//   - after a pass that spent its budget and found expired files in at
//     least one in sweepBacklogShare of the files it examined (a backlog),
//     as long as the pass took, so that the sweeper takes at most half the
//     time of one goroutine while it catches up;
//   - after a pass that spent its budget on mostly live files,
//     sweepScanRest times as long as it took, so that going through a
//     large directory takes a twentieth of one goroutine's time;
//
// never less than sweepMinPause, never more than interval.
func sweepRest(res sweepResult, took, interval time.Duration) (rest time.Duration, backlog bool) {
	switch {
	case !res.more:
		return interval, false
	case res.removed > 0 && res.removed*sweepBacklogShare >= res.examined:
		rest, backlog = took, true
	default:
		rest = took * sweepScanRest
	}
	return min(max(rest, sweepMinPause), interval), backlog
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
	names, err = p.d.dir.list(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, true, nil
		}
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
	tops, ok, err := p.list(".")
	if err != nil || !ok {
		return sweepBudget, err
	}
	for _, top := range tops {
		if !isFanoutName(top) || top < d.cursor.top {
			continue
		}
		if limit != nil && top > limit.top {
			return sweepLimit, nil
		}
		topPath := top
		subs, ok, err := p.list(topPath)
		if !ok {
			return sweepBudget, nil
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
			if err != nil {
				return sweepBudget, err
			}
			if stop != sweepEnd {
				return stop, nil
			}
			if !gone {
				left++
			}
		}
		if left == 0 && p.prune {
			// Fails harmlessly if a write just made a leaf in it; the
			// write retries if it removes the leaf's parent under it.
			_ = d.dir.rmdir(topPath)
		}
		d.cursor = sweepCursor{top: top, sub: sweepPast}
	}
	return sweepEnd, nil
}

// leaf sweeps the sessions of the leaf directory top/sub after the cursor.
// gone reports that the leaf was empty and is removed.
func (p *sweepPass) leaf(top, sub string, limit *sweepCursor) (stop sweepStop, gone bool, err error) {
	d := p.d
	leafPath := top + string(os.PathSeparator) + sub
	names, ok, err := p.list(leafPath)
	if !ok {
		return sweepBudget, false, nil
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
			return sweepBudget, false, nil
		}
		if err := p.interrupted(); err != nil {
			return sweepBudget, false, err
		}
		removed, err := d.sweepSession(s.id, p.now)
		if err != nil {
			if errors.Is(err, os.ErrClosed) || errors.Is(err, ErrDirectoryGone) {
				return sweepBudget, false, err
			}
			p.fail(err)
		}
		p.examined += s.files
		p.removed += removed
		left -= removed
		d.cursor = sweepCursor{top: top, sub: sub, base: s.base}
	}
	if left == 0 && p.prune {
		// Fails harmlessly if a write just created a file; a write that
		// finds the leaf gone makes it again.
		gone = d.dir.rmdir(leafPath) == nil
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
	var expiredValue []byte // reported once the session is removed, outside its turn
	defer func() {
		if expiredValue != nil {
			d.expiry.report(id, expiredValue)
		}
	}()
	op := cacheKeep // the sweeper never adds IDs to the cache
	defer func() { d.end(s, id, op, slotState{}) }()

	p := pathsFor(id, h)
	bp := d.getBuf()
	defer d.putBuf(bp)
	var infos [2]slotInfo
	for i := range infos {
		if infos[i], _, err = readSlot(d.dir, p.slot[i], *bp, false, 0); err != nil {
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
	var value []byte
	if expired {
		doomed = append(doomed, n) // last: removing it first could bring an older one back
		op = cacheDrop
		if d.expiry.active() {
			info, payload, err := readSlot(d.dir, p.slot[n], *bp, true, 0)
			if err != nil {
				return 0, err
			}
			if !info.valid || info.seq != infos[n].seq {
				return 0, nil // changed meanwhile: the next pass sees it
			}
			value = payload
		}
	}
	for _, i := range doomed {
		if bad := infos[i].bad; bad != nil {
			d.log.Warn("storage: removing a damaged session file", "path", filepath.Join(d.root, p.slot[i]), "error", bad)
		}
		switch err := d.dir.remove(p.slot[i]); {
		case err == nil:
			removed++
			if expired && i == n && value == nil {
				value = []byte{} // reported, although nobody wants the value
			}
			if expired && i == n {
				expiredValue = value
			}
		case !errors.Is(err, fs.ErrNotExist):
			op = cacheDrop
			return removed, fmt.Errorf("storage: %w", err)
		}
	}
	return removed, nil
}
