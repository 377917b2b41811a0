package storage

import (
	"bytes"
	"context"
	"io"
	"time"
)

// Streams gives a BytesStorage the streaming methods of Storage: Read,
// Write and Invalidate over its Load, Save and Delete. A storage type that
// implements BytesStorage embeds a Streams made by NewStreams of itself,
// and is a Storage too, as Memory, Directory, Cache and redisstore.Store
// are. FromBytes does the same for a BytesStorage that does not.
//
// Read calls Load and then its function with a reader over the value,
// holding nothing while the function runs. Write collects what its
// function writes in a fresh buffer and hands that to Save, which may keep
// it; when the function fails, Write returns its error and calls nothing.
// Invalidate calls Delete. All three return ErrInvalidID for an invalid ID
// before calling anything.
//
// The zero Streams has no storage to call; use NewStreams.
type Streams struct{ b BytesStorage }

// NewStreams returns the streaming methods of Storage over b. It panics if
// b is nil.
func NewStreams(b BytesStorage) Streams {
	if b == nil {
		panic("storage: NewStreams(nil)")
	}
	return Streams{b}
}

// Read implements Storage.Read over BytesStorage.Load.
func (s Streams) Read(ctx context.Context, id string, fn func(r io.Reader) error) error {
	if !ValidID(id) {
		return ErrInvalidID
	}
	data, err := s.b.Load(ctx, id)
	if err != nil {
		return err
	}
	return fn(bytes.NewReader(data))
}

// Write implements Storage.Write over BytesStorage.Save.
func (s Streams) Write(ctx context.Context, id string, expires time.Time, fn func(w io.Writer) error) error {
	if !ValidID(id) {
		return ErrInvalidID
	}
	var buf bytes.Buffer
	if err := fn(&buf); err != nil {
		return err
	}
	data := buf.Bytes()
	if cap(data)-len(data) > len(data)/8 {
		// bytes.Buffer grows by doubling; a storage that keeps the slice
		// should not keep the slack for the value's whole life.
		data = bytes.Clone(data)
	}
	return s.b.Save(ctx, id, data, expires)
}

// Invalidate implements Storage.Invalidate over BytesStorage.Delete.
func (s Streams) Invalidate(ctx context.Context, id string) error {
	if !ValidID(id) {
		return ErrInvalidID
	}
	return s.b.Delete(ctx, id)
}

// FromBytes turns a BytesStorage into a Storage: b itself if it is one (as
// the storages of this package are), else b with the methods of Streams.
// The returned value also implements BytesStorage, which the engine uses
// directly to skip the stream copies, and reports b's capabilities
// (NonBlocking, VersionedOf, KeeperOf) and closes b.
func FromBytes(b BytesStorage) Storage {
	if b == nil {
		panic("storage: FromBytes(nil)")
	}
	if s, ok := b.(Storage); ok {
		return s
	}
	return bytesAdapter{b, NewStreams(b)}
}

type bytesAdapter struct {
	BytesStorage
	Streams
}

// NonBlocking implements NonBlocking for what the adapter wraps.
func (a bytesAdapter) NonBlocking() bool { return nonBlocking(a.BytesStorage) }

// Versioned reports the compare-and-set capability of what the adapter
// wraps (see VersionedOf).
func (a bytesAdapter) Versioned() Versioned { return VersionedOf(a.BytesStorage) }

// Keeper reports the Keeper capability of what the adapter wraps (see
// KeeperOf).
func (a bytesAdapter) Keeper() Keeper { return KeeperOf(a.BytesStorage) }

// ExpiryReporter reports the ExpiryReporter capability of what the adapter
// wraps (see ExpiryReporterOf).
func (a bytesAdapter) ExpiryReporter() ExpiryReporter { return ExpiryReporterOf(a.BytesStorage) }

// Close closes the wrapped storage when it has a Close method.
func (a bytesAdapter) Close() error { return closeIfCloser(a.BytesStorage) }

// AsBytes returns a byte-slice view of s: s itself when it implements
// BytesStorage, otherwise an adapter that buffers the streams: its Load
// reads the whole value into a fresh slice, its Save writes the slice in
// one piece. The adapter reports s's capabilities as FromBytes does.
func AsBytes(s Storage) BytesStorage {
	if b, ok := s.(BytesStorage); ok {
		return b
	}
	return streamAdapter{s}
}

type streamAdapter struct{ s Storage }

func (a streamAdapter) Load(ctx context.Context, id string) ([]byte, error) {
	var data []byte
	err := a.s.Read(ctx, id, func(r io.Reader) error {
		var err error
		data, err = io.ReadAll(r)
		return err
	})
	if err != nil {
		return nil, err
	}
	return data, nil
}

func (a streamAdapter) Save(ctx context.Context, id string, data []byte, expires time.Time) error {
	return a.s.Write(ctx, id, expires, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

func (a streamAdapter) Delete(ctx context.Context, id string) error {
	return a.s.Invalidate(ctx, id)
}

// NonBlocking implements NonBlocking for what the adapter wraps.
func (a streamAdapter) NonBlocking() bool { return nonBlocking(a.s) }

// Versioned reports the compare-and-set capability of what the adapter
// wraps (see VersionedOf).
func (a streamAdapter) Versioned() Versioned { return VersionedOf(a.s) }

// Keeper reports the Keeper capability of what the adapter wraps (see
// KeeperOf).
func (a streamAdapter) Keeper() Keeper { return KeeperOf(a.s) }

// ExpiryReporter reports the ExpiryReporter capability of what the adapter
// wraps (see ExpiryReporterOf).
func (a streamAdapter) ExpiryReporter() ExpiryReporter { return ExpiryReporterOf(a.s) }

// Close closes the wrapped storage when it has a Close method.
func (a streamAdapter) Close() error { return closeIfCloser(a.s) }

// Lister reports the Lister capability of the wrapped storage (see
// ListerOf).
func (a streamAdapter) Lister() Lister { return ListerOf(a.s) }

// closeIfCloser closes s if it has a Close method.
func closeIfCloser(s any) error {
	if c, ok := s.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Lister reports the Lister capability of the BytesStorage s streams over,
// nil without one. (Only the BytesStorage itself is asked: a type that
// embeds Streams over itself must not ask itself again.)
func (s Streams) Lister() Lister {
	l, _ := s.b.(Lister)
	return l
}

// ExpiryReporter reports the ExpiryReporter capability of the BytesStorage
// s streams over, nil without one (only the BytesStorage itself is asked,
// as for Lister).
func (s Streams) ExpiryReporter() ExpiryReporter {
	r, _ := s.b.(ExpiryReporter)
	return r
}
