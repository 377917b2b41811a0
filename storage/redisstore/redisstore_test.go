package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/steward-sessions/steward/internal/redistest"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/storage/redisstore"
	"github.com/steward-sessions/steward/storage/storagetest"
)

// prefixFor returns a key prefix of t's own, so that tests sharing one
// server never see each other's keys.
func prefixFor(t testing.TB) string { return "test:" + t.Name() + ":" }

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		return newStore(t, srv, redisstore.Options{Prefix: prefixFor(t)})
	})
	t.Run("LocalReads", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) storage.Storage {
			return newStore(t, srv, redisstore.Options{Prefix: prefixFor(t), LocalReads: true})
		})
	})
}

// wantConflict fails t unless err wraps storage.ErrConflict and the
// current value and version are the expected ones.
func wantConflict(t *testing.T, err error, cur []byte, curVersion uint64, wantData []byte, wantVersion uint64) {
	t.Helper()
	if !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("SaveIf = %v, want an error wrapping storage.ErrConflict", err)
	}
	if curVersion != wantVersion || !bytes.Equal(cur, wantData) || (wantData == nil) != (cur == nil) {
		t.Fatalf("SaveIf conflict returned %q at version %d, want %q at version %d", cur, curVersion, wantData, wantVersion)
	}
}

func TestSaveIf(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv, redisstore.Options{Prefix: prefixFor(t)})
	ctx := t.Context()
	const id = "session-1"

	if _, _, err := s.LoadVersioned(ctx, id); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("LoadVersioned of nothing = %v, want storage.ErrNotFound", err)
	}

	// Version 0 means "nothing is stored".
	v1, cur, cv, err := s.SaveIf(ctx, id, []byte("one"), time.Time{}, 0)
	if err != nil || v1 == 0 || cur != nil || cv != 0 {
		t.Fatalf("SaveIf(version 0) on nothing = %d, %q, %d, %v; want a new version", v1, cur, cv, err)
	}
	data, v, err := s.LoadVersioned(ctx, id)
	if err != nil || string(data) != "one" || v != v1 {
		t.Fatalf("LoadVersioned = %q, %d, %v; want \"one\", %d", data, v, err, v1)
	}

	// A create races with a stored value: conflict, with the value.
	nv, cur, cv, err := s.SaveIf(ctx, id, []byte("lost"), time.Time{}, 0)
	if nv != 0 {
		t.Errorf("a conflicting SaveIf returned new version %d, want 0", nv)
	}
	wantConflict(t, err, cur, cv, []byte("one"), v1)

	v2, _, _, err := s.SaveIf(ctx, id, []byte("two"), time.Time{}, v1)
	if err != nil || v2 == 0 || v2 == v1 {
		t.Fatalf("SaveIf(v1) = %d, %v; want a version other than %d", v2, err, v1)
	}
	// A stale version conflicts and gets the current value back.
	_, cur, cv, err = s.SaveIf(ctx, id, []byte("stale"), time.Time{}, v1)
	wantConflict(t, err, cur, cv, []byte("two"), v2)
	if data, _, _ := s.LoadVersioned(ctx, id); string(data) != "two" {
		t.Fatalf("a conflicting SaveIf wrote: the value is %q", data)
	}

	// An unconditional Save also makes a new version.
	if err := s.Save(ctx, id, []byte("saved"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	_, v3, _ := s.LoadVersioned(ctx, id)
	if v3 == v2 || v3 == 0 {
		t.Fatalf("Save kept version %d", v3)
	}
	_, cur, cv, err = s.SaveIf(ctx, id, []byte("stale"), time.Time{}, v2)
	wantConflict(t, err, cur, cv, []byte("saved"), v3)

	// Deleted: a version read before conflicts, with nothing current.
	if err := s.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, cur, cv, err = s.SaveIf(ctx, id, []byte("zombie"), time.Time{}, v3)
	wantConflict(t, err, cur, cv, nil, 0)

	// Created again: a fresh version, so no version from before the
	// deletion is valid again (no ABA).
	v4, _, _, err := s.SaveIf(ctx, id, []byte("reborn"), time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, old := range []uint64{v1, v2, v3} {
		if v4 == old {
			t.Fatalf("the recreated session reused version %d", old)
		}
		_, cur, cv, err = s.SaveIf(ctx, id, []byte("zombie"), time.Time{}, old)
		wantConflict(t, err, cur, cv, []byte("reborn"), v4)
	}

	// Empty values keep their version.
	v5, _, _, err := s.SaveIf(ctx, id, nil, time.Time{}, v4)
	if err != nil {
		t.Fatal(err)
	}
	if data, v, err := s.LoadVersioned(ctx, id); err != nil || len(data) != 0 || v != v5 {
		t.Fatalf("LoadVersioned of an empty value = %q, %d, %v; want \"\", %d", data, v, err, v5)
	}

	// A conflict on a session that was never written.
	_, cur, cv, err = s.SaveIf(ctx, "never-written", []byte("x"), time.Time{}, 12345)
	wantConflict(t, err, cur, cv, nil, 0)
	if srv.Exists(s.Prefix() + "never-written") {
		t.Fatal("a conflicting SaveIf created the key")
	}
}

func TestExpiry(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv, redisstore.Options{Prefix: prefixFor(t)})
	ctx := t.Context()
	key := func(id string) string { return s.Prefix() + id }
	const hour = int64(time.Hour / time.Millisecond)
	// wantTTL fails t unless id's key expires in about an hour.
	wantTTL := func(id string) {
		t.Helper()
		if ms := srv.PTTL(key(id)); ms < hour-60_000 || ms > hour {
			t.Fatalf("PTTL of %s = %d ms, want about %d", id, ms, hour)
		}
	}

	v, _, _, err := s.SaveIf(ctx, "ttl", []byte("x"), time.Now().Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	wantTTL("ttl")

	// The zero time: no expiry, and it clears a previous one.
	if v, _, _, err = s.SaveIf(ctx, "ttl", []byte("x"), time.Time{}, v); err != nil {
		t.Fatal(err)
	}
	if ms := srv.PTTL(key("ttl")); ms != -1 {
		t.Fatalf("PTTL after a write without expiry = %d, want -1 (none)", ms)
	}
	if err := s.Save(ctx, "saved", []byte("x"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantTTL("saved")
	if err := s.Save(ctx, "saved", []byte("x"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if ms := srv.PTTL(key("saved")); ms != -1 {
		t.Fatalf("PTTL after Save without expiry = %d, want -1 (none)", ms)
	}

	// A past expiry deletes, when the version matches.
	_, cur, _, err := s.SaveIf(ctx, "ttl", []byte("x"), time.Now().Add(-time.Second), v+1)
	if !errors.Is(err, storage.ErrConflict) || string(cur) != "x" {
		t.Fatalf("SaveIf with a wrong version and a past expiry = %q, %v; want a conflict", cur, err)
	}
	nv, _, _, err := s.SaveIf(ctx, "ttl", []byte("x"), time.Now().Add(-time.Second), v)
	if err != nil || nv != 0 {
		t.Fatalf("SaveIf with a past expiry = %d, %v; want 0 (nothing stored), nil", nv, err)
	}
	if srv.Exists(key("ttl")) {
		t.Fatal("SaveIf with a past expiry left the key")
	}
	if err := s.Save(ctx, "saved", []byte("x"), time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if srv.Exists(key("saved")) {
		t.Fatal("Save with a past expiry left the key")
	}

	// Redis itself drops the key at its expiry.
	if _, _, _, err := s.SaveIf(ctx, "short", []byte("x"), time.Now().Add(50*time.Millisecond), 0); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); srv.Exists(key("short")); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a key with a 50 ms TTL still exists after 10 s")
		}
	}
	if _, _, err := s.LoadVersioned(ctx, "short"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("LoadVersioned of an expired session = %v, want storage.ErrNotFound", err)
	}
}

func TestVersionedInvalidIDs(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv, redisstore.Options{Prefix: prefixFor(t)})
	for _, id := range []string{"", "a:b", "a b", "../x", "a*", strings.Repeat("a", storage.MaxIDLen+1)} {
		if _, _, err := s.LoadVersioned(t.Context(), id); !errors.Is(err, storage.ErrInvalidID) {
			t.Errorf("LoadVersioned(%q) = %v, want storage.ErrInvalidID", id, err)
		}
		if _, _, _, err := s.SaveIf(t.Context(), id, []byte("x"), time.Time{}, 0); !errors.Is(err, storage.ErrInvalidID) {
			t.Errorf("SaveIf(%q) = %v, want storage.ErrInvalidID", id, err)
		}
	}
	if n, err := srv.Do(t.Context(), "DBSIZE").AsInt64(); err != nil || n != 0 {
		t.Fatalf("DBSIZE = %d, %v; invalid IDs reached Redis", n, err)
	}
}

func TestForeignValue(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv, redisstore.Options{Prefix: prefixFor(t)})
	if err := srv.Do(t.Context(), "SET", s.Prefix()+"foreign", "abc").Error(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.LoadVersioned(t.Context(), "foreign"); err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("LoadVersioned of a value this package did not write = %v, want an error", err)
	}
}

func TestDefaultPrefix(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv, redisstore.Options{})
	if s.Prefix() != redisstore.DefaultPrefix || redisstore.DefaultPrefix != "steward:" {
		t.Fatalf("Prefix() = %q, want %q", s.Prefix(), "steward:")
	}
	if err := s.Save(t.Context(), "abc", []byte("x"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if !srv.Exists("steward:abc") {
		t.Fatal("no key steward:abc")
	}
}

func TestURL(t *testing.T) {
	srv := redistest.Start(t, "--requirepass", "s3cret")
	ctx := t.Context()

	// Password and database from the URL.
	s, err := redisstore.New(ctx, "redis://:s3cret@"+srv.Addr()+"/3", redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Save(ctx, "in-db-3", []byte("x"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, "in-db-3"); err != nil {
		t.Fatal(err)
	}
	raw, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress: []string{srv.Addr()}, Password: "s3cret", SelectDB: 3, DisableCache: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if n, err := raw.Do(ctx, raw.B().Exists().Key(s.Prefix()+"in-db-3").Build()).AsInt64(); err != nil || n != 1 {
		t.Fatalf("EXISTS in database 3 = %d, %v; want 1", n, err)
	}

	if s.LocalReads() {
		t.Fatal("LocalReads() = true by default")
	}

	// A trailing slash means database 0.
	s0, err := redisstore.New(ctx, "redis://:s3cret@"+srv.Addr()+"/", redisstore.Options{})
	if err != nil {
		t.Fatalf("New with a trailing slash: %v", err)
	}
	s0.Close()

	// Options.LocalReads turns them on, client_cache=0 in the URL off.
	on, err := redisstore.New(ctx, "redis://:s3cret@"+srv.Addr()+"/3", redisstore.Options{LocalReads: true})
	if err != nil {
		t.Fatal(err)
	}
	defer on.Close()
	if !on.LocalReads() {
		t.Fatal("LocalReads() = false with Options.LocalReads")
	}
	if data, err := on.Load(ctx, "in-db-3"); err != nil || string(data) != "x" {
		t.Fatalf("Load with local reads = %q, %v", data, err)
	}
	off, err := redisstore.New(ctx, "redis://:s3cret@"+srv.Addr()+"/3?client_cache=0", redisstore.Options{LocalReads: true})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	if off.LocalReads() {
		t.Fatal("LocalReads() with client_cache=0 in the URL")
	}
	if data, err := off.Load(ctx, "in-db-3"); err != nil || string(data) != "x" {
		t.Fatalf("Load without local reads = %q, %v", data, err)
	}

	// A wrong password fails New, without repeating the password.
	_, err = redisstore.New(ctx, "redis://:wrong-pw@"+srv.Addr(), redisstore.Options{})
	if err == nil {
		t.Fatal("New with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "wrong-pw") {
		t.Fatalf("the error repeats the password: %v", err)
	}
	t.Logf("wrong password: %v", err)

	for _, url := range []string{"", "http://localhost", "redis://:pw-in-url@local host:6379/%zz"} {
		_, err := redisstore.New(ctx, url, redisstore.Options{})
		if err == nil {
			t.Fatalf("New(%q) succeeded", url)
		}
		if strings.Contains(err.Error(), "pw-in-url") {
			t.Fatalf("the error repeats the password: %v", err)
		}
	}
}

func TestUnreachable(t *testing.T) {
	redistest.Binary(t) // no server is started, but keep the skip rule of the others
	port := redistest.FreePort(t)
	start := time.Now()
	_, err := redisstore.New(t.Context(), "redis://127.0.0.1:"+strconv.Itoa(port), redisstore.Options{})
	if err == nil {
		t.Fatal("New with nothing listening succeeded")
	}
	if !strings.Contains(err.Error(), "redisstore") || !strings.Contains(err.Error(), strconv.Itoa(port)) {
		t.Fatalf("unclear error: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("New took %v to fail", d)
	}
	t.Logf("%v (after %v)", err, time.Since(start).Round(time.Millisecond))
}

func TestClose(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv, redisstore.Options{Prefix: prefixFor(t)})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := s.Load(t.Context(), "x"); err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Load after Close = %v, want an error", err)
	}
}

// TestFrozen freezes Redis with its connections open: calls fail after
// about the Timeout instead of hanging, and work again once it thaws.
func TestFrozen(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 300 * time.Millisecond
	s := newStore(t, srv, redisstore.Options{Prefix: prefixFor(t), Timeout: timeout})
	ctx := context.Background() // as the engine's storage calls: no deadline
	if err := s.Save(ctx, "x", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	srv.Signal(syscall.SIGSTOP)
	thawed := false
	defer func() {
		if !thawed {
			srv.Signal(syscall.SIGCONT)
		}
	}()
	start := time.Now()
	_, err := s.Load(ctx, "x")
	d := time.Since(start)
	if err == nil {
		t.Fatal("Load from a frozen Redis succeeded")
	}
	t.Logf("frozen: %v after %v", err, d.Round(time.Millisecond))
	if d > 20*timeout {
		t.Fatalf("Load from a frozen Redis took %v to fail, with a %v timeout", d, timeout)
	}
	srv.Signal(syscall.SIGCONT)
	thawed = true
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		data, err := s.Load(ctx, "x")
		if err == nil {
			if string(data) != "v" {
				t.Fatalf("Load after thawing = %q", data)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Load still fails 10 s after Redis thawed: %v", err)
		}
	}
}
