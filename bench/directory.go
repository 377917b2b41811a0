package main

import (
	"context"
	"time"

	"github.com/steward-sessions/steward/storage"
)

// directoryMissing is why steward-directory cannot be measured; empty now
// that storage.NewDirectory has landed.
const directoryMissing = ""

// buildStewardDirectory serves the counter from a Steward engine whose
// values live in a directory storage in so.dir behind the 60 s cache, as
// Ktor's directorySessionStorage(dir, cached = true).
func buildStewardDirectory(so serverOptions) (built, error) {
	d, err := storage.NewDirectory(so.dir, storage.DirectoryOptions{})
	if err != nil {
		return built{}, err
	}
	// The engine closes the Cache, which closes the Directory.
	return stewardBuilt(so, storage.NewCache(d, storage.CacheOptions{}))
}

// scaleDirectory stores up to n sessions of 100 bytes in a directory
// storage in dir (no cache: every value goes to a file), for budget at
// most.
func scaleDirectory(n int, dir string, budget time.Duration) (scaleInfo, error) {
	d, err := storage.NewDirectory(dir, storage.DirectoryOptions{SweepInterval: -1})
	if err != nil {
		return scaleInfo{}, err
	}
	defer d.Close()
	info, err := scaleStore(n, budget, func(ctx context.Context, id string, v []byte, exp time.Time) error {
		return d.Save(ctx, id, v, exp)
	})
	if err != nil {
		return info, err
	}
	if _, err := d.Load(context.Background(), scaleID(0)); err != nil {
		return info, err
	}
	info.Note += "one file per session; the process's RSS (the kernel's page cache is not counted)"
	return info, nil
}
