// Package storagetest checks that a session storage keeps the contract of
// package storage, as testing/slogtest does for slog handlers.
//
// A storage's own test calls Run with a constructor:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Storage {
//			return mystorage.New(t.TempDir())
//		})
//	}
//
// The suite uses the wall clock for expiries (an hour in the past or ahead),
// so the storage under test must use the real time or one close to it. Every
// ID it uses is random, so a storage that shares a backend between subtests
// (one Redis database) still passes; the counts are kept moderate so that
// slow storages run the whole suite in seconds.
package storagetest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steward-sessions/steward/storage"
)

// Run runs the conformance suite against the storages newStorage returns,
// one named subtest (t.Run) per rule of the contract, each with a fresh
// storage. newStorage may register cleanups with its t. Run fails t if the
// storage breaks the contract.
func Run(t *testing.T, newStorage func(t *testing.T) storage.Storage) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Storage)
	}{
		{"NotFound", testNotFound},
		{"WriteRead", testWriteRead},
		{"EmptyValue", testEmptyValue},
		{"Overwrite", testOverwrite},
		{"IDAlphabet", testIDAlphabet},
		{"WriteError", testWriteError},
		{"ReadError", testReadError},
		{"Invalidate", testInvalidate},
		{"Expiry", testExpiry},
		{"InvalidIDs", testInvalidIDs},
		{"LargeValue", testLargeValue},
		{"Concurrent", testConcurrent},
		{"Bytes", testBytes},
		{"VersionedNotHidden", testVersionedNotHidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStorage(t)
			if s == nil {
				t.Fatal("newStorage returned nil")
			}
			tt.fn(t, s)
		})
	}
}

// newID returns a random valid ID that no other test uses.
func newID(t *testing.T) string {
	t.Helper()
	id := "st-" + strings.ToLower(rand.Text())
	if !storage.ValidID(id) {
		t.Fatalf("storagetest: generated an invalid ID %q", id)
	}
	return id
}

// write stores data under id with the given expiry, writing it in two
// pieces to exercise the stream, and fails t on error.
func write(t *testing.T, s storage.Storage, id string, expires time.Time, data []byte) {
	t.Helper()
	calls := 0
	err := s.Write(t.Context(), id, expires, func(w io.Writer) error {
		calls++
		half := len(data) / 2
		if _, err := w.Write(data[:half]); err != nil {
			return err
		}
		_, err := w.Write(data[half:])
		return err
	})
	if err != nil {
		t.Fatalf("Write(%q): %v", id, err)
	}
	if calls != 1 {
		t.Fatalf("Write(%q) called fn %d times, want 1", id, calls)
	}
}

// read returns the value stored under id and fails t on error.
func read(t *testing.T, s storage.Storage, id string) []byte {
	t.Helper()
	var data []byte
	calls := 0
	err := s.Read(t.Context(), id, func(r io.Reader) error {
		calls++
		var err error
		data, err = io.ReadAll(r)
		return err
	})
	if err != nil {
		t.Fatalf("Read(%q): %v", id, err)
	}
	if calls != 1 {
		t.Fatalf("Read(%q) called fn %d times, want 1", id, calls)
	}
	return data
}

// wantValue fails t unless id reads as want.
func wantValue(t *testing.T, s storage.Storage, id string, want []byte) {
	t.Helper()
	if got := read(t, s, id); !bytes.Equal(got, want) {
		t.Fatalf("Read(%q) = %s, want %s", id, abbrev(got), abbrev(want))
	}
}

// wantNotFound fails t unless reading id returns ErrNotFound without
// calling fn.
func wantNotFound(t *testing.T, s storage.Storage, id string) {
	t.Helper()
	err := s.Read(t.Context(), id, func(io.Reader) error {
		t.Errorf("Read(%q) called fn for a missing value", id)
		return nil
	})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Read(%q) = %v, want an error wrapping storage.ErrNotFound", id, err)
	}
}

// abbrev formats a value for a failure message.
func abbrev(b []byte) string {
	if len(b) > 64 {
		return fmt.Sprintf("%q... (%d bytes)", b[:64], len(b))
	}
	return fmt.Sprintf("%q", b)
}

func testNotFound(t *testing.T, s storage.Storage) {
	id := newID(t)
	wantNotFound(t, s, id)
	// Reading must not have created anything.
	wantNotFound(t, s, id)
}

func testWriteRead(t *testing.T, s storage.Storage) {
	id := newID(t)
	want := []byte("hello, \x00 session\n\xff")
	write(t, s, id, time.Time{}, want)
	wantValue(t, s, id, want)
	// Reading does not consume the value.
	wantValue(t, s, id, want)
	// Other IDs are unaffected.
	wantNotFound(t, s, newID(t))
}

func testEmptyValue(t *testing.T, s storage.Storage) {
	id := newID(t)
	write(t, s, id, time.Time{}, nil)
	if got := read(t, s, id); len(got) != 0 {
		t.Fatalf("Read(%q) = %s, want an empty value", id, abbrev(got))
	}
}

func testOverwrite(t *testing.T, s storage.Storage) {
	id := newID(t)
	write(t, s, id, time.Time{}, []byte("a much longer first value"))
	write(t, s, id, time.Time{}, []byte("second"))
	wantValue(t, s, id, []byte("second"))
	write(t, s, id, time.Time{}, []byte("third, longer than the second"))
	wantValue(t, s, id, []byte("third, longer than the second"))
}

func testIDAlphabet(t *testing.T, s storage.Storage) {
	base := newID(t)
	ids := []string{
		"a",
		"Z",
		"0",
		"-",
		"_",
		strings.Repeat("x", storage.MaxIDLen),
		base,
		strings.ToUpper(base), // IDs are case-sensitive
		base + "_A-z_9",
	}
	for i, id := range ids {
		if !storage.ValidID(id) {
			t.Fatalf("storagetest: %q should be valid", id)
		}
		write(t, s, id, time.Time{}, fmt.Appendf(nil, "value %d", i))
	}
	for i, id := range ids {
		wantValue(t, s, id, fmt.Appendf(nil, "value %d", i))
	}
	for _, id := range ids[:6] {
		// These fixed IDs may be shared with other runs on the backend.
		if err := s.Invalidate(t.Context(), id); err != nil {
			t.Fatalf("Invalidate(%q): %v", id, err)
		}
	}
}

func testWriteError(t *testing.T, s storage.Storage) {
	errFn := errors.New("storagetest: fn failed")
	failing := func(w io.Writer) error {
		if _, err := w.Write([]byte("partial")); err != nil {
			return err
		}
		return errFn
	}

	// A failed first write creates nothing.
	id := newID(t)
	if err := s.Write(t.Context(), id, time.Time{}, failing); !errors.Is(err, errFn) {
		t.Fatalf("Write with a failing fn = %v, want %v", err, errFn)
	}
	wantNotFound(t, s, id)

	// A failed overwrite keeps the previous value.
	write(t, s, id, time.Time{}, []byte("previous"))
	if err := s.Write(t.Context(), id, time.Time{}, failing); !errors.Is(err, errFn) {
		t.Fatalf("Write with a failing fn = %v, want %v", err, errFn)
	}
	wantValue(t, s, id, []byte("previous"))
}

func testReadError(t *testing.T, s storage.Storage) {
	errFn := errors.New("storagetest: fn failed")
	id := newID(t)
	write(t, s, id, time.Time{}, []byte("value"))
	err := s.Read(t.Context(), id, func(r io.Reader) error {
		if _, err := io.ReadAll(r); err != nil {
			return err
		}
		return errFn
	})
	if !errors.Is(err, errFn) {
		t.Fatalf("Read with a failing fn = %v, want %v", err, errFn)
	}
	// The failure leaves the value in place.
	wantValue(t, s, id, []byte("value"))
}

func testInvalidate(t *testing.T, s storage.Storage) {
	id, other := newID(t), newID(t)
	write(t, s, id, time.Time{}, []byte("doomed"))
	write(t, s, other, time.Time{}, []byte("kept"))
	if err := s.Invalidate(t.Context(), id); err != nil {
		t.Fatalf("Invalidate(%q): %v", id, err)
	}
	wantNotFound(t, s, id)
	wantValue(t, s, other, []byte("kept"))

	// Invalidating again, or an ID never written, is not an error.
	if err := s.Invalidate(t.Context(), id); err != nil {
		t.Fatalf("Invalidate(%q) again: %v", id, err)
	}
	unknown := newID(t)
	if err := s.Invalidate(t.Context(), unknown); err != nil {
		t.Fatalf("Invalidate(%q) of an unknown ID: %v", unknown, err)
	}
	wantNotFound(t, s, unknown)

	// An invalidated ID can be written again.
	write(t, s, id, time.Time{}, []byte("reborn"))
	wantValue(t, s, id, []byte("reborn"))
}

func testExpiry(t *testing.T, s storage.Storage) {
	now := time.Now()

	t.Run("Past", func(t *testing.T) {
		id := newID(t)
		write(t, s, id, now.Add(-time.Hour), []byte("stale"))
		wantNotFound(t, s, id)
	})
	t.Run("PastOverwritesLive", func(t *testing.T) {
		id := newID(t)
		write(t, s, id, time.Time{}, []byte("live"))
		write(t, s, id, now.Add(-time.Hour), []byte("stale"))
		wantNotFound(t, s, id)
	})
	t.Run("Never", func(t *testing.T) {
		id := newID(t)
		write(t, s, id, time.Time{}, []byte("forever"))
		wantValue(t, s, id, []byte("forever"))
	})
	t.Run("Future", func(t *testing.T) {
		id := newID(t)
		write(t, s, id, now.Add(time.Hour), []byte("fresh"))
		wantValue(t, s, id, []byte("fresh"))
	})
	t.Run("LiveOverwritesPast", func(t *testing.T) {
		id := newID(t)
		write(t, s, id, now.Add(-time.Hour), []byte("stale"))
		write(t, s, id, now.Add(time.Hour), []byte("fresh"))
		wantValue(t, s, id, []byte("fresh"))
	})
}

// invalidIDs are IDs that no storage may accept: path tricks, separators,
// control bytes, non-ASCII, and the wrong lengths.
func invalidIDs() []struct{ name, id string } {
	return []struct{ name, id string }{
		{"Empty", ""},
		{"Dot", "."},
		{"DotDot", ".."},
		{"ParentPath", "../x"},
		{"DeepParentPath", "../../../../etc/passwd"},
		{"AbsolutePath", "/etc/passwd"},
		{"Slash", "a/b"},
		{"Backslash", `a\b`},
		{"WindowsPath", `..\..\x`},
		{"DriveLetter", "C:"},
		{"NUL", "a\x00b"},
		{"OnlyNUL", "\x00"},
		{"Newline", "a\nb"},
		{"CRLF", "a\r\nSET x y"},
		{"Tab", "a\tb"},
		{"Space", " "},
		{"Spaces", "a b"},
		{"LeadingSpace", " a"},
		{"TrailingSpace", "a "},
		{"Unicode", "séssion"},
		{"CJK", "セッション"},
		{"Emoji", "id\U0001F600"},
		{"InvalidUTF8", "a\xffb"},
		{"Percent", "%2e%2e%2fx"},
		{"Glob", "a*"},
		{"RedisPattern", "a?[b]"},
		{"Colon", "a:b"},
		{"TooLong", strings.Repeat("a", storage.MaxIDLen+1)},
		{"TenKB", strings.Repeat("a", 10<<10)},
	}
}

func testInvalidIDs(t *testing.T, s storage.Storage) {
	b := storage.AsBytes(s)
	for _, tt := range invalidIDs() {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.id
			if storage.ValidID(id) {
				t.Fatalf("storagetest: %q should be invalid", id)
			}
			ctx := t.Context()
			wantInvalid := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, storage.ErrInvalidID) {
					t.Errorf("%s(%s) = %v, want an error wrapping storage.ErrInvalidID", op, tt.name, err)
				}
			}
			wantInvalid("Write", s.Write(ctx, id, time.Time{}, func(io.Writer) error {
				t.Errorf("Write(%s) called fn", tt.name)
				return nil
			}))
			wantInvalid("Read", s.Read(ctx, id, func(io.Reader) error {
				t.Errorf("Read(%s) called fn", tt.name)
				return nil
			}))
			wantInvalid("Invalidate", s.Invalidate(ctx, id))
			wantInvalid("Save", b.Save(ctx, id, []byte("x"), time.Time{}))
			data, err := b.Load(ctx, id)
			wantInvalid("Load", err)
			if data != nil {
				t.Errorf("Load(%s) returned data %s", tt.name, abbrev(data))
			}
			wantInvalid("Delete", b.Delete(ctx, id))
		})
	}
}

func testLargeValue(t *testing.T, s storage.Storage) {
	want := make([]byte, 1<<20)
	for i := range want {
		// Every byte value, in an order that shows shifted or dropped
		// chunks.
		want[i] = byte(i*7 + i>>8)
	}
	id := newID(t)
	err := s.Write(t.Context(), id, time.Time{}, func(w io.Writer) error {
		// Uneven chunks, as an encoder would write them.
		for rest := want; len(rest) > 0; {
			n := min(len(rest), 4093)
			if _, err := w.Write(rest[:n]); err != nil {
				return err
			}
			rest = rest[n:]
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Write(%q) of 1 MiB: %v", id, err)
	}
	var got []byte
	err = s.Read(t.Context(), id, func(r io.Reader) error {
		// Small reads, as a decoder would make them.
		buf := make([]byte, 1000)
		for {
			n, err := r.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
	if err != nil {
		t.Fatalf("Read(%q) of 1 MiB: %v", id, err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Fatalf("1 MiB value read back as %d bytes, first difference at offset %d", len(got), i)
	}
}

// concurrentValue is the value goroutine g writes in round i: about 1 KB,
// so a torn value shows, and self-describing, so a read can be checked
// against the one write it must come from.
func concurrentValue(g, i int) []byte {
	head := fmt.Sprintf("g%02d-i%03d|", g, i)
	return []byte(strings.Repeat(head, 100))
}

// checkConcurrentValue reports whether b is exactly one of the values
// concurrentValue returns, and which.
func checkConcurrentValue(b []byte) (g, i int, ok bool) {
	if _, err := fmt.Sscanf(string(b), "g%2d-i%3d|", &g, &i); err != nil {
		return 0, 0, false
	}
	return g, i, bytes.Equal(b, concurrentValue(g, i))
}

func testConcurrent(t *testing.T, s storage.Storage) {
	const (
		goroutines = 32
		rounds     = 20
	)
	prefix := newID(t)
	shared := prefix + "-shared"
	write(t, s, shared, time.Time{}, concurrentValue(0, 0))

	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			ctx := t.Context()
			own := fmt.Sprintf("%s-%02d", prefix, g)
			readOne := func(id string) ([]byte, error) {
				var data []byte
				err := s.Read(ctx, id, func(r io.Reader) error {
					var err error
					data, err = io.ReadAll(r)
					return err
				})
				return data, err
			}
			writeOne := func(id string, data []byte) error {
				return s.Write(ctx, id, time.Now().Add(time.Hour), func(w io.Writer) error {
					_, err := w.Write(data)
					return err
				})
			}
			for i := range rounds {
				want := concurrentValue(g, i)
				if err := writeOne(own, want); err != nil {
					errs <- fmt.Errorf("Write(%q): %w", own, err)
					return
				}
				got, err := readOne(own)
				if err != nil {
					errs <- fmt.Errorf("Read(%q) after a write: %w", own, err)
					return
				}
				if !bytes.Equal(got, want) {
					errs <- fmt.Errorf("Read(%q) = %s right after writing %s", own, abbrev(got), abbrev(want))
					return
				}

				if err := writeOne(shared, concurrentValue(g, i)); err != nil {
					errs <- fmt.Errorf("Write(%q): %w", shared, err)
					return
				}
				got, err = readOne(shared)
				if err != nil {
					errs <- fmt.Errorf("Read(%q): %w", shared, err)
					return
				}
				if _, _, ok := checkConcurrentValue(got); !ok {
					errs <- fmt.Errorf("Read(%q) = %s, a torn or foreign value", shared, abbrev(got))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	for g := range goroutines {
		wantValue(t, s, fmt.Sprintf("%s-%02d", prefix, g), concurrentValue(g, rounds-1))
	}
	got := read(t, s, shared)
	if _, i, ok := checkConcurrentValue(got); !ok || i != rounds-1 {
		// Every goroutine's last write is its round rounds-1, and the
		// final value is one goroutine's last write.
		t.Fatalf("final Read(%q) = %s, want one goroutine's last write", shared, abbrev(got))
	}
}

// testVersionedNotHidden fails a wrapper that holds a storage with
// compare-and-set but does not report it (see storage.CheckVersioned).
func testVersionedNotHidden(t *testing.T, s storage.Storage) {
	if err := storage.CheckVersioned(s); err != nil {
		t.Fatal(err)
	}
}

func testBytes(t *testing.T, s storage.Storage) {
	b := storage.AsBytes(s)
	ctx := t.Context()

	id := newID(t)
	if data, err := b.Load(ctx, id); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Load(%q) of an unknown ID = %s, %v; want storage.ErrNotFound", id, abbrev(data), err)
	}

	// Save, then Load and Read.
	if err := b.Save(ctx, id, []byte("saved"), time.Time{}); err != nil {
		t.Fatalf("Save(%q): %v", id, err)
	}
	if data, err := b.Load(ctx, id); err != nil || string(data) != "saved" {
		t.Fatalf("Load(%q) = %s, %v; want \"saved\"", id, abbrev(data), err)
	}
	wantValue(t, s, id, []byte("saved"))

	// Write, then Load.
	write(t, s, id, time.Now().Add(time.Hour), []byte("written"))
	if data, err := b.Load(ctx, id); err != nil || string(data) != "written" {
		t.Fatalf("Load(%q) = %s, %v; want \"written\"", id, abbrev(data), err)
	}

	// Expiry and Delete.
	if err := b.Save(ctx, id, []byte("stale"), time.Now().Add(-time.Hour)); err != nil {
		t.Fatalf("Save(%q) with a past expiry: %v", id, err)
	}
	if _, err := b.Load(ctx, id); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Load(%q) of an expired value = %v, want storage.ErrNotFound", id, err)
	}
	if err := b.Save(ctx, id, []byte("again"), time.Time{}); err != nil {
		t.Fatalf("Save(%q): %v", id, err)
	}
	if err := b.Delete(ctx, id); err != nil {
		t.Fatalf("Delete(%q): %v", id, err)
	}
	if _, err := b.Load(ctx, id); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Load(%q) after Delete = %v, want storage.ErrNotFound", id, err)
	}
	if err := b.Delete(ctx, id); err != nil {
		t.Fatalf("Delete(%q) of a deleted ID: %v", id, err)
	}

	// FromBytes of the view is a Storage again.
	s2 := storage.FromBytes(b)
	id2 := newID(t)
	write(t, s2, id2, time.Time{}, []byte("round trip"))
	wantValue(t, s, id2, []byte("round trip"))
}
