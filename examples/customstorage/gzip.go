package main

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/steward-sessions/steward/storage"
)

// Gzip compresses the values of any inner storage. It is written against
// the streaming interface, which is what makes it cheap: the compressor
// writes straight into the inner storage's writer and the decompressor
// reads straight from its reader, so no stage holds a second copy of the
// value. Large sessions (a cart with hundreds of items, a cached profile)
// shrink several times on disk.
//
// Gzip is for storages of one engine instance (a Memory, a Directory, a
// MapStore). It has no compare-and-set (storage.Versioned), so in front of
// a storage that several instances share, such as redisstore.Store, it
// would turn the engine's conditional writes into last-write-wins and lose
// concurrent updates; storage.CheckVersioned reports that mistake. To
// compress such values, Gzip would need LoadVersioned and SaveIf methods of
// its own that decompress and compress.
type Gzip struct {
	Inner storage.Storage
	Level int // a compress/gzip level; 0 means gzip.DefaultCompression
}

// Read implements storage.Storage. A value that is not a gzip stream reads
// as storage.ErrNotFound.
func (g Gzip) Read(ctx context.Context, id string, fn func(io.Reader) error) error {
	return g.Inner.Read(ctx, id, func(r io.Reader) error {
		zr, err := gzip.NewReader(r)
		if err != nil {
			// Not a gzip stream: the value is unreadable, which for a
			// session means there is none.
			return fmt.Errorf("%w: corrupt gzip value: %v", storage.ErrNotFound, err)
		}
		if err := fn(zr); err != nil {
			return err
		}
		return zr.Close()
	})
}

// Write implements storage.Storage.
func (g Gzip) Write(ctx context.Context, id string, expires time.Time, fn func(io.Writer) error) error {
	level := g.Level
	if level == 0 {
		level = gzip.DefaultCompression
	}
	return g.Inner.Write(ctx, id, expires, func(w io.Writer) error {
		zw, err := gzip.NewWriterLevel(w, level)
		if err != nil {
			return err
		}
		if err := fn(zw); err != nil {
			return err
		}
		return zw.Close()
	})
}

// Invalidate implements storage.Storage.
func (g Gzip) Invalidate(ctx context.Context, id string) error {
	return g.Inner.Invalidate(ctx, id)
}

// Close closes the inner storage if it has a Close method.
func (g Gzip) Close() error {
	if c, ok := g.Inner.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
