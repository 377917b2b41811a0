package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
)

// Keys implements Lister: it walks the fan-out directories one leaf at a
// time and calls fn with the ID of each session file pair that holds a
// live value (read as Load reads it). Memory holds one leaf's names at a
// time.
func (d *Directory) Keys(ctx context.Context, fn func(id string) bool) error {
	if d.closed.Load() {
		return d.errClosed
	}
	if err := d.goneErr(); err != nil {
		return err
	}
	tops, err := d.listDir(".")
	if err != nil {
		return err
	}
	for _, top := range tops {
		if !isFanoutName(top) {
			continue
		}
		leaves, err := d.listDir(top)
		if err != nil {
			return err
		}
		for _, leaf := range leaves {
			if !isFanoutName(leaf) {
				continue
			}
			more, err := d.keysIn(ctx, top, leaf, fn)
			if err != nil || !more {
				return err
			}
		}
	}
	return nil
}

// listDir returns the sorted names in the directory rel of the session
// directory; a missing one (swept meanwhile) has none.
func (d *Directory) listDir(rel string) ([]string, error) {
	names, err := d.dir.list(rel)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if d.closed.Load() {
			return nil, d.errClosed
		}
		return nil, fmt.Errorf("storage: %w", err)
	}
	slices.Sort(names)
	return names, nil
}

// keysIn lists the live sessions of the leaf directory top/sub; it reports
// false once fn asked to stop.
func (d *Directory) keysIn(ctx context.Context, top, sub string, fn func(id string) bool) (bool, error) {
	names, err := d.listDir(top + string(os.PathSeparator) + sub)
	if err != nil {
		return false, err
	}
	var last string
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		id, _, ok := parseSlotName(top, sub, name)
		if !ok {
			continue
		}
		base := name[:len(name)-2]
		if base == last { // the session's second slot
			continue
		}
		last = base
		if _, err := d.Load(ctx, id); err != nil {
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return false, err
		}
		if !fn(id) {
			return false, nil
		}
	}
	return true, nil
}
