package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

// Systems of the scale scenario.
const (
	scaleMemoryStorage    = "memory-storage"
	scaleDirectoryStorage = "directory-storage"
	scaleActors           = "engine-actors"
)

// scaleKinds lists the scale measurements in the order they run; missing,
// when not empty, says why one cannot be made yet.
var scaleKinds = []struct{ name, missing string }{
	{scaleMemoryStorage, ""},
	{scaleDirectoryStorage, directoryMissing},
	{scaleActors, ""},
	{scaleJunkFlood, ""},
	{scaleFreshFlood, ""},
}

// scalePassivateAfter is the default engine idle timeout of the actor
// scale measurement (-scale-passivate): longer than creating the actors
// takes, short enough to wait for.
const scalePassivateAfter = 5 * time.Second

// scaleDirectoryBudget bounds the time the directory storage measurement
// spends writing files: creating a million files takes minutes on a busy
// disk, and the scale scenario is meant to finish in about two.
const scaleDirectoryBudget = 15 * time.Second

// scaleInfo is one scale measurement, made in a fresh process.
type scaleInfo struct {
	// Sessions stored or created; for junk-flood, the sessions its
	// requests made (none is expected).
	Sessions        int     `json:"sessions"`
	Requests        int     `json:"requests,omitempty"` // junk-flood: requests measured
	Seconds         float64 `json:"seconds"`
	RSSBaseMB       float64 `json:"rss_base_mb"` // before storing anything
	RSSMB           float64 `json:"rss_mb"`      // right after
	HeapMB          float64 `json:"heap_mb"`     // live heap after a GC
	BytesPerSession float64 `json:"bytes_per_session"`
	// Actors only: live actors right after creating them, then after
	// waiting for idle ones to passivate.
	LiveActors      *int64  `json:"live_actors,omitempty"`
	LiveActorsAfter *int64  `json:"live_actors_after,omitempty"`
	Passivated      int64   `json:"passivated,omitempty"`
	PassivateAfterS float64 `json:"passivate_after_s,omitempty"`
	WaitS           float64 `json:"passivation_wait_s,omitempty"`
	RSSAfterMB      float64 `json:"rss_after_mb,omitempty"`      // after passivation
	RSSAfterFreeMB  float64 `json:"rss_after_free_mb,omitempty"` // then after debug.FreeOSMemory
	HeapAfterMB     float64 `json:"heap_after_mb,omitempty"`     // live heap after passivation and a GC

	// Floods only: the highest resident size sampled while it ran (never
	// below RSSBaseMB and RSSMB), the live actors then and at most (LiveActors
	// is at the end), and the engine's counters over the flood (Evicted
	// is null for an engine that does not count it).
	PeakRSSMB           float64 `json:"peak_rss_mb,omitempty"`
	RSSSamples          int     `json:"rss_samples,omitempty"`
	LiveActorsAtPeakRSS *int64  `json:"live_actors_at_peak_rss,omitempty"`
	LiveActorsPeak      *int64  `json:"live_actors_peak,omitempty"`
	Spawned             int64   `json:"spawned,omitempty"`
	Evicted             *int64  `json:"evicted,omitempty"`

	Note string `json:"note,omitempty"`
}

// runScale runs each scale measurement in a process of its own, so that
// each resident size is its own.
func runScale(o options, stderr io.Writer) []record {
	var recs []record
	for _, k := range scaleKinds {
		r := record{Scenario: scenarioScale, System: k.name, Missing: k.missing}
		if k.missing == "" {
			began := time.Now()
			info, err := scaleChild(k.name, o, stderr)
			if err != nil {
				r.Error = err.Error()
				fmt.Fprintf(stderr, "[scale %5.1fs] %-18s FAILED: %v\n", time.Since(began).Seconds(), k.name, err)
			} else {
				r.Scale = &info
				if info.Seconds > 0 {
					r.ReqPerS = ptr(float64(info.count()) / info.Seconds)
				}
				fmt.Fprintf(stderr, "[scale %5.1fs] %-18s %s\n", time.Since(began).Seconds(), k.name, info.line())
			}
		}
		recs = append(recs, r)
	}
	return recs
}

// count is what the measurement's rate counts: requests for junk-flood,
// sessions otherwise.
func (s scaleInfo) count() int {
	if s.Requests > 0 {
		return s.Requests
	}
	return s.Sessions
}

// line is the measurement's progress line.
func (s scaleInfo) line() string {
	if s.Requests > 0 || s.LiveActorsPeak != nil {
		made := ""
		if s.Requests > 0 {
			made = fmt.Sprintf("%s requests made %s sessions", thousands(float64(s.Requests)), thousands(float64(s.Sessions)))
		} else {
			made = thousands(float64(s.Sessions)) + " sessions"
		}
		evicted := "–"
		if s.Evicted != nil {
			evicted = thousands(float64(*s.Evicted))
		}
		return fmt.Sprintf("%s in %.2f s, RSS %.0f MB before, %.0f MB after, %.0f MB at the peak; live actors %s at the end, %s at most; evicted %s",
			made, s.Seconds, s.RSSBaseMB, s.RSSMB, s.PeakRSSMB, thousands(float64(*s.LiveActors)), thousands(float64(*s.LiveActorsPeak)), evicted)
	}
	return fmt.Sprintf("%s sessions in %.2f s, RSS %.0f MB (%.0f B/session)%s",
		thousands(float64(s.Sessions)), s.Seconds, s.RSSMB, s.BytesPerSession, actorsLine(s))
}

func actorsLine(s scaleInfo) string {
	if s.LiveActors == nil || s.LiveActorsAfter == nil {
		return ""
	}
	return fmt.Sprintf("; heap %.0f MB; live actors %s, after %.1f s idle %s, RSS %.0f MB (%.0f MB after FreeOSMemory), heap %.0f MB",
		s.HeapMB, thousands(float64(*s.LiveActors)), s.WaitS, thousands(float64(*s.LiveActorsAfter)), s.RSSAfterMB, s.RSSAfterFreeMB, s.HeapAfterMB)
}

// scaleChild re-executes the bench in -scale-child mode and reads the one
// JSON line it prints.
func scaleChild(name string, o options, stderr io.Writer) (scaleInfo, error) {
	exe, err := os.Executable()
	if err != nil {
		return scaleInfo{}, err
	}
	// The parent owns the child's directory, so that it is removed even
	// if the child is killed.
	dir, err := os.MkdirTemp("", "steward-bench-scale-")
	if err != nil {
		return scaleInfo{}, err
	}
	defer removeTree(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-scale-child", name, "-scale-dir", dir,
		"-scale-sessions", strconv.Itoa(o.scaleN), "-scale-actors", strconv.Itoa(o.scaleActors),
		"-scale-passivate", o.scalePassivate.String(),
		"-scale-junk", strconv.Itoa(o.scaleJunk), "-scale-fresh", strconv.Itoa(o.scaleFresh))
	cmd.Stderr = stderr
	cmd.Env = childEnv()
	out, err := cmd.Output()
	if err != nil {
		return scaleInfo{}, err
	}
	var info scaleInfo
	sc := bufio.NewScanner(bytes.NewReader(out))
	var last string
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			last = l
		}
	}
	if err := json.Unmarshal([]byte(last), &info); err != nil {
		return scaleInfo{}, fmt.Errorf("reading the child's result %q: %w", last, err)
	}
	return info, nil
}

// scaleOne is the hidden -scale-child mode: one measurement, its result
// printed as one JSON line.
func scaleOne(name string, o options, dir string, stdout io.Writer) error {
	var info scaleInfo
	var err error
	switch name {
	case scaleMemoryStorage:
		info, err = scaleMemory(o.scaleN)
	case scaleDirectoryStorage:
		info, err = scaleDirectory(o.scaleN, dir, scaleDirectoryBudget)
	case scaleActors:
		info, err = scaleEngine(o.scaleActors, o.scalePassivate)
	case scaleJunkFlood:
		info, err = scaleJunk(o.scaleJunk, junkConnections)
	case scaleFreshFlood:
		info, err = scaleFresh(o.scaleFresh, scaleWorkers, engine.Options{}) // the defaults
	default:
		err = fmt.Errorf("unknown scale measurement")
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(info)
}

// scaleMemory stores n sessions of 100 bytes in a storage.Memory directly,
// from GOMAXPROCS goroutines.
func scaleMemory(n int) (scaleInfo, error) {
	m := storage.NewMemory(storage.MemoryOptions{MaxEntries: max(n, storage.DefaultMaxEntries)})
	info, err := scaleStore(n, 0, func(ctx context.Context, id string, v []byte, exp time.Time) error {
		return m.Save(ctx, id, v, exp)
	})
	if err != nil {
		return info, err
	}
	for _, i := range []int{0, n / 2, n - 1} {
		if _, err := m.Load(context.Background(), scaleID(i)); err != nil {
			return info, fmt.Errorf("session %d of %d is not there: %w", i, n, err)
		}
	}
	info.Note += "IDs of 36 bytes (UUID form), one 100-byte slice per value, made inside the timed loop"
	runtime.KeepAlive(m)
	return info, nil
}

// scaleStore times save over n fresh 100-byte values from GOMAXPROCS
// goroutines and reads the resident size before and after. With a
// positive budget it stops when the budget is spent, and reports how many
// it stored.
func scaleStore(n int, budget time.Duration, save func(ctx context.Context, id string, v []byte, exp time.Time) error) (scaleInfo, error) {
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	runtime.GC()
	base := rssMB()
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	var stored atomic.Int64
	start := time.Now()
	deadline := start.Add(budget)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := w * n / workers
			for i := first; i < (w+1)*n/workers; i++ {
				if budget > 0 && (i-first)%256 == 0 && time.Now().After(deadline) {
					stored.Add(int64(i - first))
					return
				}
				v := make([]byte, 100)
				for j := range v {
					v[j] = byte('a' + (i+j)%26)
				}
				if err := save(ctx, scaleID(i), v, exp); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
			stored.Add(int64((w+1)*n/workers - first))
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if e := failed.Load(); e != nil {
		return scaleInfo{}, *e
	}
	done := int(stored.Load())
	info := scaleInfo{Sessions: done, Seconds: elapsed.Seconds(), RSSBaseMB: base, RSSMB: rssMB()}
	if done < n {
		info.Note = fmt.Sprintf("stopped by the %v budget after %s of %s sessions; ", budget, thousands(float64(done)), thousands(float64(n)))
	}
	info.BytesPerSession = (info.RSSMB - base) * (1 << 20) / float64(max(done, 1))
	info.HeapMB = heapMB()
	return info, nil
}

// scaleWorkers is the goroutines calling Create in the engine
// measurements.
const scaleWorkers = 64

// scaleEngine creates n sessions of 100 bytes through the engine's
// RawKind.Create (n live session actors over a memory storage), then waits
// for the idle actors to passivate.
func scaleEngine(n int, passivateAfter time.Duration) (scaleInfo, error) {
	eng, err := engine.New(withMaxLive(engine.Options{PassivateAfter: passivateAfter}, scaleActorsBound(n)))
	if err != nil {
		return scaleInfo{}, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = eng.Close(ctx)
	}()
	k, err := engine.RegisterRaw(eng, "SCALE", engine.KindOptions{
		Storage: storage.NewMemory(storage.MemoryOptions{MaxEntries: max(n, storage.DefaultMaxEntries)}),
	})
	if err != nil {
		return scaleInfo{}, err
	}
	ctx := context.Background()
	payload := bytes.Repeat([]byte("x"), 100)
	runtime.GC()
	base := rssMB()
	const workers = scaleWorkers
	start := time.Now()
	err = parallel(n, workers, func(int) error {
		_, err := k.Create(ctx, payload)
		return err
	})
	elapsed := time.Since(start)
	if err != nil {
		return scaleInfo{}, err
	}
	live := eng.Stats().LiveActors
	info := scaleInfo{
		Sessions:        n,
		Seconds:         elapsed.Seconds(),
		RSSBaseMB:       base,
		RSSMB:           rssMB(),
		LiveActors:      &live,
		PassivateAfterS: passivateAfter.Seconds(),
	}
	info.BytesPerSession = (info.RSSMB - base) * (1 << 20) / float64(n)
	info.HeapMB = heapMB()

	// Idle actors passivate after passivateAfter; the janitor looks every
	// quarter of it. Wait for (near) zero, a minute at most.
	waitStart := time.Now()
	deadline := waitStart.Add(passivateAfter + time.Minute)
	for eng.Stats().LiveActors > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	st := eng.Stats()
	info.WaitS = time.Since(waitStart).Seconds()
	info.LiveActorsAfter = &st.LiveActors
	info.Passivated = st.Passivated
	info.RSSAfterMB = rssMB()
	info.HeapAfterMB = heapMB()
	debug.FreeOSMemory()
	info.RSSAfterFreeMB = rssMB()
	info.Note = fmt.Sprintf("%d goroutines calling Create; PassivateAfter %v, MaxLiveActors %s; per-session bytes include the stored record",
		workers, passivateAfter, boundLabel(scaleActorsBound(n)))
	return info, nil
}

// scaleActorsBound is the bound on live actors of the engine-actors
// measurement, which is about n live actors, not the bound: twice n (or
// the default if higher), since the engine shares its bound out among its
// dispatcher shards and a shard that gets more than its share evicts.
func scaleActorsBound(n int) int { return max(2*n, defaultMaxLive()) }

// scaleID returns a distinct ID of the UUID form for i.
func scaleID(i int) string {
	a, b := splitmix(uint64(i)), splitmix(uint64(i)^0x9e3779b97f4a7c15)
	var raw [16]byte
	for j := range 8 {
		raw[j] = byte(a >> (8 * j))
		raw[8+j] = byte(b >> (8 * j))
	}
	// Keep i recoverable in the first 8 bytes so that IDs never collide.
	for j := range 4 {
		raw[j] = byte(uint32(i) >> (8 * j))
	}
	return formatUUID(raw)
}

// formatUUID writes raw in the UUID form: 36 bytes, hex digits and dashes.
func formatUUID(raw [16]byte) string {
	const hexDigits = "0123456789abcdef"
	var out [36]byte
	o := 0
	for j, c := range raw {
		if j == 4 || j == 6 || j == 8 || j == 10 {
			out[o] = '-'
			o++
		}
		out[o], out[o+1] = hexDigits[c>>4], hexDigits[c&15]
		o += 2
	}
	return string(out[:])
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// rssMB returns this process's resident set (VmRSS) in MiB, 0 where
// /proc/self/status cannot be read.
func rssMB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "123456 kB"
			if len(f) >= 1 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// heapMB returns the live heap after a collection, in MiB.
func heapMB() float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20)
}

// removeTree removes dir and everything under it, its top-level entries
// in parallel: hundreds of thousands of session files take a while.
func removeTree(dir string) {
	entries, _ := os.ReadDir(dir)
	work := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				_ = os.RemoveAll(p)
			}
		}()
	}
	for _, e := range entries {
		work <- filepath.Join(dir, e.Name())
	}
	close(work)
	wg.Wait()
	_ = os.RemoveAll(dir)
}
