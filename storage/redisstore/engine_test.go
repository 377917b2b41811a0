package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/internal/redistest"
	"github.com/steward-sessions/steward/storage/redisstore"
)

// instances starts n engines, as n application servers would be, each with
// its own Store on srv under one prefix, and registers the kind "counter"
// on each. The engines are closed when t ends.
func instances(t testing.TB, srv *redistest.Server, n int, opts engine.KindOptions, sopts redisstore.Options) []*engine.RawKind {
	t.Helper()
	kinds, _ := instanceStores(t, srv, n, opts, sopts)
	return kinds
}

// instanceStores is instances, and also returns the engines' Stores.
func instanceStores(t testing.TB, srv *redistest.Server, n int, opts engine.KindOptions, sopts redisstore.Options) ([]*engine.RawKind, []*redisstore.Store) {
	t.Helper()
	if sopts.Prefix == "" {
		sopts.Prefix = prefixFor(t)
	}
	kinds := make([]*engine.RawKind, n)
	stores := make([]*redisstore.Store, n)
	for i := range kinds {
		o := opts
		stores[i] = newStore(t, srv, sopts) // closed by the engine, or at the end
		o.Storage = stores[i]
		e, err := engine.New(engine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := e.Close(ctx); err != nil {
				t.Errorf("closing engine %d: %v", i, err)
			}
		})
		if kinds[i], err = engine.RegisterRaw(e, "counter", o); err != nil {
			t.Fatal(err)
		}
	}
	return kinds, stores
}

// increment is an update function: the value is a decimal counter.
func increment(old []byte) ([]byte, error) {
	n, err := strconv.Atoi(string(old))
	if err != nil {
		return nil, fmt.Errorf("bad counter %q: %w", old, err)
	}
	return strconv.AppendInt(nil, int64(n+1), 10), nil
}

// count returns the counter of session id as k sees it.
func count(t *testing.T, k *engine.RawKind, id string) int {
	t.Helper()
	v, err := k.Load(t.Context(), id)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		t.Fatalf("counter %q: %v", v, err)
	}
	return n
}

// TestInstancesNoLostUpdates: three engine instances share one Redis; 64
// clients increment one session 200 times each, spread round-robin over
// the instances. Not one increment is lost.
func TestInstancesNoLostUpdates(t *testing.T) {
	srv := redistest.Start(t)
	kinds := instances(t, srv, 3, engine.KindOptions{}, redisstore.Options{})
	ctx := t.Context()
	id, err := kinds[0].Create(ctx, []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	const clients, increments = 64, 200
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Go(func() {
			for i := range increments {
				if _, err := kinds[(c+i)%len(kinds)].Update(ctx, id, increment); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Update: %v", err)
	}
	for i, k := range kinds {
		if n := count(t, k, id); n != clients*increments {
			t.Errorf("instance %d counts %d, want %d (%d lost)", i, n, clients*increments, clients*increments-n)
		}
	}
}

// regInput is an operation on one of the counters of the linearizability
// test.
type regInput struct {
	session int
	incr    bool // else a get
}

// counterModel is the sequential specification: one counter per session,
// read by get and incremented by incr (which returns the new count).
var counterModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[int][]porcupine.Operation{}
		for _, op := range history {
			s := op.Input.(regInput).session
			by[s] = append(by[s], op)
		}
		var parts [][]porcupine.Operation
		for _, p := range by {
			parts = append(parts, p)
		}
		return parts
	},
	Init: func() any { return 0 },
	Step: func(state, input, output any) (bool, any) {
		n, in, out := state.(int), input.(regInput), output.(int)
		if in.incr {
			return out == n+1, n + 1
		}
		return out == n, n
	},
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		if in.incr {
			return fmt.Sprintf("incr(s%d) -> %d", in.session, output)
		}
		return fmt.Sprintf("get(s%d) -> %d", in.session, output)
	},
	DescribeState: func(state any) string { return strconv.Itoa(state.(int)) },
}

// TestInstancesLinearizable records concurrent gets and increments of three
// sessions through three engine instances and checks the history for
// linearizability: every operation appears to take effect at one instant
// between its call and its return, whichever instance served it. It runs
// with local reads (many gets answered from each instance's memory) and
// with every read asking Redis (the default).
func TestInstancesLinearizable(t *testing.T) {
	srv := redistest.Start(t)
	for _, tc := range readModes {
		t.Run(tc.name, func(t *testing.T) {
			kinds, stores := instanceStores(t, srv, 3, engine.KindOptions{}, tc.opts)
			checkLinearizable(t, kinds)
			var hits int64
			for _, s := range stores {
				h, _, _ := redisstore.LocalReadStats(s)
				hits += h
			}
			t.Logf("%d gets answered from memory", hits)
			if tc.opts.LocalReads != (hits > 0) {
				t.Fatalf("%d gets answered from memory, with Options.LocalReads %v", hits, tc.opts.LocalReads)
			}
		})
	}
}

// checkLinearizable has clients get and increment three sessions through
// kinds, at random, and checks the recorded history with porcupine.
func checkLinearizable(t *testing.T, kinds []*engine.RawKind) {
	t.Helper()
	ctx := t.Context()
	const sessions, clients, ops = 3, 12, 100
	ids := make([]string, sessions)
	for i := range ids {
		var err error
		if ids[i], err = kinds[i%len(kinds)].Create(ctx, []byte("0")); err != nil {
			t.Fatal(err)
		}
	}

	start := time.Now()
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		wg      sync.WaitGroup
	)
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			for range ops {
				in := regInput{session: rng.IntN(sessions), incr: rng.IntN(3) == 0}
				k := kinds[rng.IntN(len(kinds))]
				call := int64(time.Since(start))
				var v []byte
				var err error
				if in.incr {
					v, err = k.Update(ctx, ids[in.session], increment)
				} else {
					v, err = k.Load(ctx, ids[in.session])
				}
				ret := int64(time.Since(start))
				if err != nil {
					// Every operation must succeed here: one that failed
					// might or might not have taken effect.
					t.Errorf("client %d: %v", c, err)
					return
				}
				out, err := strconv.Atoi(string(v))
				if err != nil {
					t.Errorf("client %d: counter %q", c, v)
					return
				}
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	res, info := porcupine.CheckOperationsVerbose(counterModel, history, time.Minute)
	if res != porcupine.Ok {
		dir, err := os.MkdirTemp("", "redisstore-porcupine-")
		if err == nil {
			path := filepath.Join(dir, "history.html")
			if err := porcupine.VisualizePath(counterModel, info, path); err == nil {
				t.Logf("visualization: %s", path)
			}
		}
		t.Fatalf("the history of %d operations is %s, want %s", len(history), res, porcupine.Ok)
	}
	t.Logf("%d operations on %d sessions through %d instances: linearizable", len(history), sessions, len(kinds))
}

// TestInstancesRedisRestart stops Redis in the middle of a run and starts
// it again, empty, on the same port: meanwhile every operation fails fast
// with engine.ErrStorage, without piling up goroutines; afterwards the same
// engines count exactly again.
func TestInstancesRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = time.Second
	kinds := instances(t, srv, 3, engine.KindOptions{}, redisstore.Options{Timeout: timeout, DialTimeout: timeout})
	ctx := t.Context()

	// run has clients increment id round-robin over the instances and
	// returns the errors.
	run := func(id string, clients, increments int) []error {
		var mu sync.Mutex
		var errs []error
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				for i := range increments {
					if _, err := kinds[(c+i)%len(kinds)].Update(ctx, id, increment); err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		return errs
	}

	id, err := kinds[0].Create(ctx, []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	if errs := run(id, 8, 50); len(errs) > 0 {
		t.Fatalf("before the restart: %d errors, the first: %v", len(errs), errs[0])
	}
	if n := count(t, kinds[1], id); n != 400 {
		t.Fatalf("count before the restart = %d, want 400", n)
	}
	baseline := runtime.NumGoroutine()

	// Redis goes down while clients are incrementing.
	var down sync.WaitGroup
	down.Go(func() {
		time.Sleep(20 * time.Millisecond)
		srv.Stop()
	})
	run(id, 8, 50) // some succeed, the rest fail
	down.Wait()

	// While it is down, every operation fails, fast, with ErrStorage.
	var slowest time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := range 32 {
		wg.Go(func() {
			k := kinds[c%len(kinds)]
			for i := range 10 {
				start := time.Now()
				var err error
				switch i % 3 {
				case 0:
					_, err = k.Update(ctx, id, increment)
				case 1:
					_, err = k.Load(ctx, id)
				default:
					_, err = k.Create(ctx, []byte("0"))
				}
				d := time.Since(start)
				mu.Lock()
				slowest = max(slowest, d)
				mu.Unlock()
				if !errors.Is(err, engine.ErrStorage) {
					t.Errorf("with Redis down: %v, want an error wrapping engine.ErrStorage", err)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("with Redis down: 320 operations failed, the slowest after %v", slowest.Round(time.Millisecond))
	if slowest > 5*timeout {
		t.Errorf("an operation took %v to fail with Redis down (client timeout %v)", slowest, timeout)
	}
	// No goroutine pile-up: the count settles back near where it was.
	var n int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if n = runtime.NumGoroutine(); n <= baseline+10 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("goroutines: %d with Redis up, %d after the failures", baseline, n)
	if n > baseline+10 {
		t.Errorf("%d goroutines after the failures, %d before", n, baseline)
	}

	// Back up, empty (persistence is off): the same engines recover.
	srv.Restart()
	var id2 string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if id2, err = kinds[2].Create(ctx, []byte("0")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Create still fails 10 s after Redis restarted: %v", err)
		}
	}
	// Each engine learns on its own that Redis is back: while it knew it
	// was down it failed fast, trying one call at a time (the first may
	// meet the connection the restart broke).
	for i, k := range kinds {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			_, err = k.Load(ctx, id)
			if !errors.Is(err, engine.ErrStorage) || time.Now().After(deadline) {
				break
			}
		}
		if !errors.Is(err, engine.ErrNoSession) {
			t.Errorf("instance %d: Load of a session Redis lost = %v, want engine.ErrNoSession", i, err)
		}
	}
	if errs := run(id2, 8, 50); len(errs) > 0 {
		t.Fatalf("after the restart: %d errors, the first: %v", len(errs), errs[0])
	}
	for i, k := range kinds {
		if n := count(t, k, id2); n != 400 {
			t.Errorf("instance %d counts %d after the restart, want 400", i, n)
		}
	}
}

// TestInstancesTTL: with an idle timeout of one second, Redis drops an idle
// session by itself, while one used every 300 ms stays, through whichever
// instance uses it.
func TestInstancesTTL(t *testing.T) {
	srv := redistest.Start(t)
	kinds := instances(t, srv, 3, engine.KindOptions{IdleTimeout: time.Second}, redisstore.Options{})
	ctx := t.Context()
	idle, err := kinds[0].Create(ctx, []byte("idle"))
	if err != nil {
		t.Fatal(err)
	}
	busy, err := kinds[1].Create(ctx, []byte("busy"))
	if err != nil {
		t.Fatal(err)
	}
	prefix := prefixFor(t)
	if ms := srv.PTTL(prefix + engine.StorageKey(idle)); ms <= 0 || ms > 1000 {
		t.Fatalf("PTTL of a new session = %d ms, want at most the idle timeout", ms)
	}

	// Use busy every 300 ms until idle is gone from Redis, and for a few
	// idle timeouts more.
	var gone time.Time
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		time.Sleep(300 * time.Millisecond)
		if _, err := kinds[i%len(kinds)].Load(ctx, busy); err != nil {
			t.Fatalf("Load of the busy session, round %d: %v", i, err)
		}
		if !srv.Exists(prefix + engine.StorageKey(busy)) {
			t.Fatalf("round %d: the busy session is gone from Redis", i)
		}
		if gone.IsZero() && !srv.Exists(prefix+engine.StorageKey(idle)) {
			gone = time.Now()
		}
		if !gone.IsZero() && time.Since(gone) > 3*time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the idle session is still in Redis after 30 s")
		}
	}
	if _, err := kinds[2].Load(ctx, idle); !errors.Is(err, engine.ErrNoSession) {
		t.Fatalf("Load of the idle session = %v, want engine.ErrNoSession", err)
	}
}

// TestInstancesRedisFrozen freezes Redis with its connections open (a hung
// server, or a network that drops packets): operations fail with
// engine.ErrStorage after about the client timeout instead of hanging,
// goroutines do not pile up, and the engines work again once it thaws.
func TestInstancesRedisFrozen(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 300 * time.Millisecond
	kinds := instances(t, srv, 3, engine.KindOptions{}, redisstore.Options{Timeout: timeout})
	ctx := t.Context()
	id, err := kinds[0].Create(ctx, []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	baseline := runtime.NumGoroutine()

	srv.Signal(syscall.SIGSTOP)
	thawed := false
	defer func() {
		if !thawed {
			srv.Signal(syscall.SIGCONT)
		}
	}()
	var slowest time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	const clients, ops = 12, 2
	for c := range clients {
		wg.Go(func() {
			k := kinds[c%len(kinds)]
			for i := range ops {
				start := time.Now()
				var err error
				if i%2 == 0 {
					_, err = k.Update(ctx, id, increment)
				} else {
					_, err = k.Load(ctx, id)
				}
				d := time.Since(start)
				mu.Lock()
				slowest = max(slowest, d)
				mu.Unlock()
				if !errors.Is(err, engine.ErrStorage) {
					t.Errorf("with Redis frozen: %v, want an error wrapping engine.ErrStorage", err)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("with Redis frozen: %d operations failed, the slowest after %v", clients*ops, slowest.Round(time.Millisecond))
	if slowest > 20*timeout {
		// Operations on one session queue behind each other in its
		// actor, each waiting up to the timeout: with 8 operations per
		// instance, the last one fails after about 8 timeouts.
		t.Errorf("an operation took %v to fail with Redis frozen (client timeout %v)", slowest, timeout)
	}
	var n int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if n = runtime.NumGoroutine(); n <= baseline+10 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("goroutines: %d before, %d after the failures", baseline, n)
	if n > baseline+10 {
		t.Errorf("%d goroutines after the failures, %d before", n, baseline)
	}

	srv.Signal(syscall.SIGCONT)
	thawed = true
	thaw := time.Now()
	// Each engine learns on its own that Redis is back: its connection
	// noticed the freeze at its own moment (by its own keep-alive PING),
	// and it fails fast for a while after its last failure.
	for i, k := range kinds {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if _, err = k.Update(ctx, id, increment); err == nil {
				t.Logf("instance %d working again %v after thawing", i, time.Since(thaw).Round(time.Millisecond))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("instance %d: Update still fails 10 s after Redis thawed: %v", i, err)
			}
		}
	}
	for _, k := range kinds {
		if _, err := k.Update(ctx, id, increment); err != nil {
			t.Fatalf("Update after Redis thawed: %v", err)
		}
	}
}

type visits struct{ N int }

// TestInstancesGetOrSetFresh: GetOrSet on an existing session returns the
// value another instance wrote last, not the copy its own actor holds.
func TestInstancesGetOrSetFresh(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	kinds := make([]*engine.Kind[visits], 2)
	for i := range kinds {
		st := newStore(t, srv, redisstore.Options{Prefix: prefixFor(t)})
		e, err := engine.New(engine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Close(context.Background()) })
		if kinds[i], err = engine.Register[visits](e, "visits", engine.KindOptions{Storage: st}); err != nil {
			t.Fatal(err)
		}
	}
	id, err := kinds[0].Raw().Create(ctx, []byte(`{"N":0}`))
	if err != nil {
		t.Fatal(err)
	}
	// request returns the context of a request to instance i that
	// carries the session's ID.
	request := func(i int) context.Context {
		return engine.WithBindings(ctx, kinds[i].Raw().Bind(id))
	}
	v, err := kinds[0].GetOrSet(request(0), func() visits { return visits{N: -1} })
	if err != nil || v.N != 0 {
		t.Fatalf("GetOrSet on A = %+v, %v; want N=0", v, err)
	}
	if _, err := kinds[1].Update(request(1), func(v *visits) error { v.N++; return nil }); err != nil {
		t.Fatal(err)
	}
	v, err = kinds[0].GetOrSet(request(0), func() visits { return visits{N: -1} })
	if err != nil || v.N != 1 {
		t.Fatalf("GetOrSet on A after B's acknowledged update = %+v, %v; want N=1", v, err)
	}
}
