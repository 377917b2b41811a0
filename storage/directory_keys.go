package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// Keys implements Lister: it walks the fan-out directories one leaf at a
// time and calls fn with the ID of each session file pair that holds a
// live value (read as Load reads it). Memory holds one leaf's names at a
// time.
func (d *Directory) Keys(ctx context.Context, fn func(id string) bool) error {
	tops, err := os.ReadDir(d.root)
	if err != nil {
		return err
	}
	for _, top := range tops {
		if !top.IsDir() || len(top.Name()) != 2 {
			continue
		}
		leaves, err := os.ReadDir(filepath.Join(d.root, top.Name()))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // swept meanwhile
			}
			return err
		}
		for _, leaf := range leaves {
			if !leaf.IsDir() || len(leaf.Name()) != 2 {
				continue
			}
			more, err := d.keysIn(ctx, filepath.Join(d.root, top.Name(), leaf.Name()), fn)
			if err != nil || !more {
				return err
			}
		}
	}
	return nil
}

// keysIn lists the live sessions of one leaf directory; it reports false
// once fn asked to stop.
func (d *Directory) keysIn(ctx context.Context, dir string, fn func(id string) bool) (bool, error) {
	files, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return true, nil
		}
		return false, err
	}
	var last string
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		name := f.Name()
		base, ok := strings.CutSuffix(name, ".0")
		if !ok {
			base, ok = strings.CutSuffix(name, ".1")
		}
		if !ok || base == last { // a session's second slot, or not a slot
			continue
		}
		last = base
		raw, err := dirNameEncoding.DecodeString(base)
		if err != nil || !ValidID(string(raw)) {
			continue
		}
		id := string(raw)
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
