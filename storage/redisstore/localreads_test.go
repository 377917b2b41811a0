package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/internal/redistest"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/storage/redisstore"
)

// commandCalls returns how many times srv has run each of the commands
// named (lower case), from INFO commandstats.

// readModes are the two ways a Store reads: from its own memory (local
// reads) and from Redis (the default).
var readModes = []struct {
	name string
	opts redisstore.Options
}{
	{"LocalReads", redisstore.Options{LocalReads: true}},
	{"RemoteReads", redisstore.Options{}},
}

func commandCalls(t *testing.T, srv *redistest.Server, names ...string) map[string]int {
	t.Helper()
	info, err := srv.Do(context.Background(), "INFO", "commandstats").ToString()
	if err != nil {
		t.Fatal(err)
	}
	calls := make(map[string]int, len(names))
	for _, name := range names {
		m := regexp.MustCompile(`(?m)^cmdstat_` + name + `:calls=(\d+)`).FindStringSubmatch(info)
		if m != nil {
			calls[name], _ = strconv.Atoi(m[1])
		}
	}
	return calls
}

// TestLocalReadsServedLocally: rereading an unchanged session does not run
// a GET in Redis each time; the reads share barrier PINGs instead. With
// local reads off (the default) every read is a GET.
func TestLocalReadsServedLocally(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	for _, tc := range readModes {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Prefix = prefixFor(t)
			s := newStore(t, srv, tc.opts)
			if s.LocalReads() != tc.opts.LocalReads {
				t.Fatalf("LocalReads() = %v with Options.LocalReads %v", s.LocalReads(), tc.opts.LocalReads)
			}
			if _, _, _, err := s.SaveIf(ctx, "s", []byte("v"), time.Now().Add(time.Hour), 0); err != nil {
				t.Fatal(err)
			}
			if err := srv.Do(ctx, "CONFIG", "RESETSTAT").Error(); err != nil {
				t.Fatal(err)
			}
			const reads = 200
			// Sequential reads and concurrent ones: the latter share
			// barriers.
			for range reads / 2 {
				if data, _, err := s.LoadVersioned(ctx, "s"); err != nil || string(data) != "v" {
					t.Fatalf("LoadVersioned = %q, %v", data, err)
				}
			}
			var wg sync.WaitGroup
			for range reads / 2 {
				wg.Go(func() {
					if data, _, err := s.LoadVersioned(ctx, "s"); err != nil || string(data) != "v" {
						t.Errorf("LoadVersioned = %q, %v", data, err)
					}
				})
			}
			wg.Wait()
			calls := commandCalls(t, srv, "get", "ping")
			hits, misses, rounds := redisstore.LocalReadStats(s)
			t.Logf("%d reads: %d GET, %d PING in Redis; %d hits, %d misses, %d barriers",
				reads, calls["get"], calls["ping"], hits, misses, rounds)
			if !s.LocalReads() {
				if calls["get"] != reads {
					t.Fatalf("%d GETs for %d reads without local reads", calls["get"], reads)
				}
				return
			}
			if calls["get"] > 1 {
				t.Fatalf("%d GETs for %d reads of an unchanged session: not served locally", calls["get"], reads)
			}
			if hits < reads-1 || calls["ping"] > reads || rounds > reads {
				t.Fatalf("%d hits, %d PINGs, %d barriers for %d reads", hits, calls["ping"], rounds, reads)
			}
		})
	}
}

// TestLocalReadsSeeOtherWrites: store A has the session in its memory
// (its last read was a hit); store B writes it; A's next read returns B's
// write. Many times over, on several sessions at once.
func TestLocalReadsSeeOtherWrites(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	opts := redisstore.Options{Prefix: prefixFor(t), LocalReads: true}
	a, b := newStore(t, srv, opts), newStore(t, srv, opts)
	if !a.LocalReads() || !b.LocalReads() {
		t.Fatal("local reads are off")
	}
	rounds := 1000
	if testing.Short() {
		rounds = 100
	}
	const sessions = 4
	var wg sync.WaitGroup
	for g := range sessions {
		wg.Go(func() {
			id := fmt.Sprintf("s%d", g)
			v, _, _, err := b.SaveIf(ctx, id, []byte("0"), time.Time{}, 0)
			if err != nil {
				t.Error(err)
				return
			}
			for i := range rounds {
				// Two reads on A: the second is a hit, or a miss if a
				// concurrent invalidation of the whole cache got in.
				for range 2 {
					if _, got, err := a.LoadVersioned(ctx, id); err != nil || got != v {
						t.Errorf("round %d: A reads version %d, %v; want %d", i, got, err, v)
						return
					}
				}
				want := strconv.Itoa(i + 1)
				nv, _, _, err := b.SaveIf(ctx, id, []byte(want), time.Time{}, v)
				if err != nil {
					t.Error(err)
					return
				}
				data, got, err := a.LoadVersioned(ctx, id)
				if err != nil || got != nv || string(data) != want {
					t.Errorf("round %d: after B wrote %q (version %d), A reads %q (version %d), %v",
						i, want, nv, data, got, err)
					return
				}
				v = nv
			}
		})
	}
	wg.Wait()
	hits, misses, _ := redisstore.LocalReadStats(a)
	t.Logf("A: %d hits, %d misses", hits, misses)
	if hits < int64(sessions*rounds/2) {
		t.Fatalf("A served %d reads from memory, want most of the %d rereads", hits, sessions*rounds)
	}
}

// TestLocalReadsOwnWrites: a Store's own writes (SaveIf, Save, Delete, a
// past expiry) are seen by its next read of a session it has cached.
func TestLocalReadsOwnWrites(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	s := newStore(t, srv, redisstore.Options{Prefix: prefixFor(t), LocalReads: true})
	const id = "s"
	// cached reads id twice (the second from memory) and checks it.
	cached := func(want string) uint64 {
		t.Helper()
		var v uint64
		for range 2 {
			data, version, err := s.LoadVersioned(ctx, id)
			if want == "" {
				if !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("LoadVersioned = %q, %v; want storage.ErrNotFound", data, err)
				}
				continue
			}
			if err != nil || string(data) != want {
				t.Fatalf("LoadVersioned = %q, %v; want %q", data, err, want)
			}
			v = version
		}
		return v
	}
	for i := range 200 {
		cached("") // nothing stored: "not found" is cached too
		v, _, _, err := s.SaveIf(ctx, id, []byte("a"), time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := cached("a"); got != v {
			t.Fatalf("round %d: version %d after SaveIf wrote %d", i, got, v)
		}
		if err := s.Save(ctx, id, []byte("b"), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		v = cached("b")
		if _, _, _, err := s.SaveIf(ctx, id, []byte("c"), time.Now().Add(-time.Second), v); err != nil {
			t.Fatal(err)
		}
		cached("")
		if err := s.Save(ctx, id, []byte("d"), time.Time{}); err != nil {
			t.Fatal(err)
		}
		cached("d")
		if err := s.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if hits, _, _ := redisstore.LocalReadStats(s); hits == 0 {
		t.Fatal("no read was served from memory")
	}
}

// clientIDs returns the IDs of srv's client connections named name.
func clientIDs(t *testing.T, srv *redistest.Server, name string) []string {
	t.Helper()
	list, err := srv.Do(context.Background(), "CLIENT", "LIST").ToString()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " name="+name+" ") {
			if m := regexp.MustCompile(`\bid=(\d+)`).FindStringSubmatch(line); m != nil {
				ids = append(ids, m[1])
			}
		}
	}
	return ids
}

// TestLocalReadsConnectionLost: Redis drops store A's connection, and with
// it the tracking of A's keys, while A holds a session in memory; B then
// writes the session. No read on A returns the value from before: each
// either fails or returns B's write.
func TestLocalReadsConnectionLost(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	prefix := prefixFor(t)
	a, err := redisstore.New(ctx, srv.URL()+"?client_name=instance-a", redisstore.Options{Prefix: prefix, LocalReads: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b := newStore(t, srv, redisstore.Options{Prefix: prefix, LocalReads: true})
	for i := range 50 {
		id := fmt.Sprintf("s%d", i)
		v, _, _, err := b.SaveIf(ctx, id, []byte("old"), time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		hits, _, _ := redisstore.LocalReadStats(a)
		for range 2 {
			if data, _, err := a.LoadVersioned(ctx, id); err != nil || string(data) != "old" {
				t.Fatalf("LoadVersioned on A = %q, %v", data, err)
			}
		}
		if h, _, _ := redisstore.LocalReadStats(a); h != hits+1 {
			t.Fatalf("A's reread was not a hit (%d hits, were %d)", h, hits)
		}
		ids := clientIDs(t, srv, "instance-a")
		if len(ids) == 0 {
			t.Fatal("no connection of A in CLIENT LIST")
		}
		for _, cid := range ids {
			if err := srv.Do(ctx, "CLIENT", "KILL", "ID", cid).Error(); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, _, err := b.SaveIf(ctx, id, []byte("new"), time.Time{}, v); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; {
			data, _, err := a.LoadVersioned(ctx, id)
			if err == nil {
				if string(data) != "new" {
					t.Fatalf("round %d: A reads %q after losing its connection; B wrote \"new\"", i, data)
				}
				break
			}
			if !errors.Is(err, storage.ErrUnavailable) || time.Now().After(deadline) {
				t.Fatalf("round %d: LoadVersioned on A: %v", i, err)
			}
		}
	}
}

// TestLocalReadsRedisRestart: Redis restarts, empty, while a Store holds
// sessions in memory: no read returns them afterwards.
func TestLocalReadsRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	s := newStore(t, srv, redisstore.Options{Prefix: prefixFor(t), Timeout: 300 * time.Millisecond, LocalReads: true})
	for round := range 3 {
		for i := range 20 {
			id := fmt.Sprintf("s%d", i)
			if err := s.Save(ctx, id, []byte("v"), time.Time{}); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			for range 2 {
				if _, _, err := s.LoadVersioned(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
		}
		srv.Stop()
		for i := range 20 {
			if data, _, err := s.LoadVersioned(ctx, fmt.Sprintf("s%d", i)); err == nil {
				t.Fatalf("round %d: with Redis down, a read returned %q from memory", round, data)
			}
		}
		srv.Restart()
		for i := range 20 {
			id := fmt.Sprintf("s%d", i)
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				data, _, err := s.LoadVersioned(ctx, id)
				if errors.Is(err, storage.ErrNotFound) {
					break
				}
				if err == nil {
					t.Fatalf("round %d: after a restart that lost every key, a read returned %q", round, data)
				}
				if time.Now().After(deadline) {
					t.Fatalf("round %d: reads still fail 10 s after the restart: %v", round, err)
				}
			}
		}
	}
}

// TestInstancesLocalReadsFresh: three engine instances with local reads;
// each round, one instance increments the session and every instance's
// next Load (the engine reads through its Store on every Get) returns the
// new count, the instances having had the old one in memory.
func TestInstancesLocalReadsFresh(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	prefix := prefixFor(t)
	stores := make([]*redisstore.Store, 3)
	kinds := make([]*engine.RawKind, len(stores))
	for i := range kinds {
		stores[i] = newStore(t, srv, redisstore.Options{Prefix: prefix, LocalReads: true})
		e, err := engine.New(engine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close(context.Background()) })
		if kinds[i], err = engine.RegisterRaw(e, "counter", engine.KindOptions{Storage: stores[i]}); err != nil {
			t.Fatal(err)
		}
	}
	id, err := kinds[0].Create(ctx, []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	rounds := 300
	if testing.Short() {
		rounds = 50
	}
	for i := range rounds {
		for _, k := range kinds {
			for range 2 {
				if n := count(t, k, id); n != i {
					t.Fatalf("round %d: count %d, want %d", i, n, i)
				}
			}
		}
		if _, err := kinds[i%len(kinds)].Update(ctx, id, increment); err != nil {
			t.Fatal(err)
		}
		for j, k := range kinds {
			if n := count(t, k, id); n != i+1 {
				t.Fatalf("round %d: instance %d counts %d after instance %d's acknowledged increment to %d",
					i, j, n, i%len(kinds), i+1)
			}
		}
	}
	for i, s := range stores {
		hits, misses, rounds := redisstore.LocalReadStats(s)
		t.Logf("instance %d: %d hits, %d misses, %d barriers", i, hits, misses, rounds)
		if hits == 0 {
			t.Errorf("instance %d served no read from memory", i)
		}
	}
}
