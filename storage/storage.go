package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned by Storage.Read and BytesStorage.Load when no live
// value is stored under the ID: never written, invalidated, or expired.
// Check it with errors.Is.
var ErrNotFound = errors.New("storage: session not found")

// ErrUnavailable is wrapped by a storage's errors that say the storage
// itself could not be reached or did not answer in time (a timeout, a lost
// connection), as opposed to an answer about one session. A write or
// delete that fails with it may have been applied: the request may have
// reached the storage and only its answer been lost. The engine answers
// such a write with engine.ErrMaybeApplied, and for a short while after
// such an error fails the kind's operations at once instead of letting
// each wait for the storage's timeout, trying the storage again with one
// call at a time until one succeeds. Check it with errors.Is.
var ErrUnavailable = errors.New("storage: unavailable")

// Lister is implemented by a storage that can list the IDs it holds, for
// admin tools (engine.RawKind.Each). Keys calls fn with each ID that holds
// a live value, in no particular order, until fn returns false or ctx
// ends; IDs written or removed while it runs may or may not be seen. It
// holds a bounded number of IDs at a time, however many are stored, and
// never calls fn under a lock that the storage's other methods need.
type Lister interface {
	Keys(ctx context.Context, fn func(id string) bool) error
}

// ListerOf returns s's Lister capability: s itself if it implements
// Lister, else what a wrapper reports through a method `Lister() Lister`
// (FromBytes's adapter and Cache do, for what they wrap), else nil.
func ListerOf(s any) Lister {
	switch v := s.(type) {
	case Lister:
		return v
	case interface{ Lister() Lister }:
		return v.Lister()
	}
	return nil
}

// ErrInvalidID is returned when an ID is not made of the engine's alphabet
// (see ValidID). Storages return it before touching any resource.
var ErrInvalidID = errors.New("storage: invalid session ID")

// Storage is the streaming contract every session storage implements, the Go
// counterpart of Ktor's SessionStorage plus expiry.
//
// The engine serializes all calls for one ID (one session actor owns it), but
// calls for different IDs arrive concurrently, so an implementation must be
// safe for concurrent use. The byte streams are opaque to the storage: the
// engine frames its own metadata inside them.
type Storage interface {
	// Read finds the value stored under id and calls fn with a reader over
	// it. The reader is only valid until fn returns. If no live value exists
	// (never written, invalidated, or past the expiry given to Write), Read
	// returns an error wrapping ErrNotFound and does not call fn. An error
	// returned by fn is returned by Read. Read must not create anything for
	// an unknown id.
	Read(ctx context.Context, id string, fn func(r io.Reader) error) error

	// Write replaces the value stored under id with what fn writes. If fn
	// returns an error, the previous value must stay in place. expires is
	// the instant after which the value may be dropped; the zero time means
	// it never expires on its own; a value whose expiry is already past may be
	// dropped instead of stored. A nil return acknowledges the write: a
	// later Read must see it.
	Write(ctx context.Context, id string, expires time.Time, fn func(w io.Writer) error) error

	// Invalidate removes the value stored under id. Removing an unknown id
	// is not an error.
	Invalidate(ctx context.Context, id string) error
}

// BytesStorage is the byte-slice contract, the counterpart of Ktor's
// SimplifiedSessionStorage: a custom backend that holds whole values in
// memory anyway implements these three methods and wraps itself with
// FromBytes. The rules of Storage apply (ErrNotFound, concurrency, expiry).
//
// The slice passed to Save belongs to the storage from then on; the slice
// returned by Load belongs to the caller, who must not modify it (the
// storage may share it).
type BytesStorage interface {
	// Load returns the value stored under id, or an error wrapping
	// ErrNotFound.
	Load(ctx context.Context, id string) ([]byte, error)
	// Save replaces the value stored under id. A value whose expires is
	// already past may be dropped instead of stored.
	Save(ctx context.Context, id string, data []byte, expires time.Time) error
	// Delete removes the value stored under id; an unknown id is not an
	// error.
	Delete(ctx context.Context, id string) error
}

// ErrConflict is returned, wrapped, by Versioned.SaveIf when the stored
// version is no longer the one the writer expected: another engine
// instance wrote the session in between. Check it with errors.Is.
var ErrConflict = errors.New("storage: version conflict")

// Versioned is the optional capability of a storage that several engine
// instances share (Redis): every value carries a version, and a write
// succeeds only if the stored version is still the one the writer read, so
// that two instances updating one session never lose an update. The engine
// discovers it by type assertion; with it, a session actor re-reads the
// value for every read and writes with SaveIf, re-running the update
// function on the current value after a conflict.
type Versioned interface {
	// LoadVersioned returns the value stored under id and its version, or
	// an error wrapping ErrNotFound. The caller must not modify the slice.
	LoadVersioned(ctx context.Context, id string) (data []byte, version uint64, err error)

	// SaveIf stores data under id if the stored version is version (0:
	// nothing is stored) and returns the new version. Otherwise it stores
	// nothing and returns an error wrapping ErrConflict together with the
	// current value and version (nil and 0 if nothing is stored), so that
	// the caller can retry without another read. An expires already past
	// deletes the value and returns version 0.
	SaveIf(ctx context.Context, id string, data []byte, expires time.Time, version uint64) (newVersion uint64, current []byte, currentVersion uint64, err error)
}

// VersionedOf returns the compare-and-set capability of s: s itself if it
// implements Versioned, else what a wrapper reports through a method
// `Versioned() Versioned` (the adapters of FromBytes and AsBytes and Cache
// do), else nil. The engine uses it, so that wrapping a shared storage never
// silently turns its conditional writes into last-write-wins; write that
// method on your own wrappers.
func VersionedOf(s any) Versioned {
	switch v := s.(type) {
	case Versioned:
		return v
	case interface{ Versioned() Versioned }:
		return v.Versioned()
	}
	return nil
}

// NonBlocking is implemented by storages whose calls never wait for I/O,
// such as Memory. The engine calls such a storage directly from the
// session actor, sparing a goroutine hand-off per call; every other storage
// runs behind the engine's storage actors, which bound the concurrent calls
// and keep slow I/O off the callers' goroutines. NonBlocking reports whether
// that holds; a wrapper answers for what it wraps.
type NonBlocking interface {
	NonBlocking() bool
}

// Keeper is implemented by storages that can keep a value at hand without
// writing it, such as Cache. The engine calls Keep when a session actor
// passivates, with the record the actor holds: exactly the bytes last
// written under id or read from it, and their expiry. A Keeper may keep
// them so that the next Load of id needs no I/O. Keep never blocks and
// never fails.
type Keeper interface {
	Keep(id string, data []byte, expires time.Time)
}

// KeeperOf returns the Keeper capability of s, seeing through wrappers as
// VersionedOf does: what s reports through a method `Keeper() Keeper` if it
// has one (the adapters of FromBytes and AsBytes and Cache do; nil means
// none), else s itself if it implements Keeper, else nil.
func KeeperOf(s any) Keeper {
	switch v := s.(type) {
	case interface{ Keeper() Keeper }:
		return v.Keeper()
	case Keeper:
		return v
	}
	return nil
}

// nonBlocking reports whether s implements NonBlocking and says true.
func nonBlocking(s any) bool {
	nb, ok := s.(NonBlocking)
	return ok && nb.NonBlocking()
}

// MaxIDLen is the longest session ID the engine issues or accepts.
const MaxIDLen = 128

// ValidID reports whether id is made only of the engine's ID alphabet
// (ASCII letters, digits, '-' and '_') and is 1 to MaxIDLen bytes long. Every
// ID the engine issues passes. A valid ID holds no path separator, dot or
// control character, so it cannot leave a directory; IDs differ by case, so
// a storage on a case-insensitive file system must encode them.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !idAlphabet[id[i]] {
			return false
		}
	}
	return true
}

// idAlphabet marks the bytes allowed in a session ID. It is never modified.
var idAlphabet = [256]bool{
	'-': true, '_': true,
	'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true, '8': true, '9': true,
	'A': true, 'B': true, 'C': true, 'D': true, 'E': true, 'F': true, 'G': true, 'H': true, 'I': true, 'J': true,
	'K': true, 'L': true, 'M': true, 'N': true, 'O': true, 'P': true, 'Q': true, 'R': true, 'S': true, 'T': true,
	'U': true, 'V': true, 'W': true, 'X': true, 'Y': true, 'Z': true,
	'a': true, 'b': true, 'c': true, 'd': true, 'e': true, 'f': true, 'g': true, 'h': true, 'i': true, 'j': true,
	'k': true, 'l': true, 'm': true, 'n': true, 'o': true, 'p': true, 'q': true, 'r': true, 's': true, 't': true,
	'u': true, 'v': true, 'w': true, 'x': true, 'y': true, 'z': true,
}
