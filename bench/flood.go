package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

// Floods of the scale scenario: how far memory grows when traffic, not
// configuration, decides how many sessions the server sees.
const (
	// scaleJunkFlood sends requests carrying well-formed session IDs the
	// server never issued (random UUIDs) to the steward-memory server.
	scaleJunkFlood = "junk-flood"
	// scaleFreshFlood creates sessions in memory storage through an engine
	// with its default options.
	scaleFreshFlood = "fresh-flood"
)

// junkConnections is the keep-alive connections of the junk flood's
// client.
const junkConnections = 32

// peakEvery is how often the floods sample the resident size.
const peakEvery = 5 * time.Millisecond

// scaleJunk runs the steward-memory server (engine, cookie transport and
// middleware, memory storage, the counter handler) on a loopback port in
// this process and sends it n GET /count requests, each with a cookie
// holding a fresh random session ID that was never issued, from
// connections keep-alive connections. It reports the resident size before
// and after, its peak, and the engine's actors.
func scaleJunk(n, connections int) (scaleInfo, error) {
	h, eng, closeEng, err := stewardServer(engine.Options{}, newStewardMemory())
	if err != nil {
		return scaleInfo{}, err
	}
	defer closeEng()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return scaleInfo{}, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String()
	c := newClient(connections)
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var made, cleared atomic.Int64
	bufs := make([]bytes.Buffer, connections)
	junk := func(w int) error {
		id, err := randomID()
		if err != nil {
			return err
		}
		cookie := stewardCookie + "=" + id
		j := &jar{cookie: cookie}
		v, err := c.do(ctx, url, http.MethodGet, "/count", j, &bufs[w])
		if err != nil {
			return err
		}
		if v != 0 {
			return fmt.Errorf("the never-issued ID %s has the count %d", id, v)
		}
		switch got := j.get(); {
		case got == "":
			cleared.Add(1)
		case got != cookie:
			made.Add(1) // a Set-Cookie with another ID: a session was made
		}
		return nil
	}
	// One request per connection first, so that opening the connections
	// is not counted.
	if err := parallel(connections, connections, junk); err != nil {
		return scaleInfo{}, fmt.Errorf("warm-up: %w", err)
	}
	made.Store(0)
	cleared.Store(0)
	before := eng.Stats()

	runtime.GC()
	base := rssMB()
	p := startPeak(func() int64 { return eng.Stats().LiveActors })
	start := time.Now()
	err = parallel(n, connections, junk)
	elapsed := time.Since(start)
	p.stop()
	if err != nil {
		return scaleInfo{}, err
	}
	st := eng.Stats()
	info := scaleInfo{
		Sessions:  int(made.Load()),
		Requests:  n,
		Seconds:   elapsed.Seconds(),
		RSSBaseMB: base,
		RSSMB:     rssMB(),
	}
	p.fill(&info, st, before)
	info.BytesPerSession = (info.RSSMB - base) * (1 << 20) / float64(n)
	info.HeapMB = heapMB()
	info.Note = fmt.Sprintf("GET /count on steward-memory (engine defaults: MaxLiveActors %s, PassivateAfter 1m) over 127.0.0.1, %d keep-alive connections, "+
		"each request a new random UUID in the %s cookie (after %d warm-up requests); %s answers set a session cookie, %s cleared it; %s",
		boundLabel(defaultMaxLive()), connections, stewardCookie, connections, thousands(float64(made.Load())), thousands(float64(cleared.Load())), p.summary(&info))
	return info, nil
}

// scaleFresh creates n sessions of 100 bytes with RawKind.Create from
// workers goroutines, through an engine made with opts over a memory
// storage, and reports the resident size before, after and at its peak,
// and the engine's actors.
func scaleFresh(n, workers int, opts engine.Options) (scaleInfo, error) {
	eng, err := engine.New(opts)
	if err != nil {
		return scaleInfo{}, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = eng.Close(ctx)
	}()
	k, err := engine.RegisterRaw(eng, "FRESH", engine.KindOptions{
		Storage: storage.NewMemory(storage.MemoryOptions{MaxEntries: max(n, storage.DefaultMaxEntries)}),
	})
	if err != nil {
		return scaleInfo{}, err
	}
	ctx := context.Background()
	payload := bytes.Repeat([]byte("x"), 100)
	last := make([]string, workers) // each worker's last session

	runtime.GC()
	base := rssMB()
	before := eng.Stats()
	p := startPeak(func() int64 { return eng.Stats().LiveActors })
	start := time.Now()
	err = parallel(n, workers, func(w int) error {
		id, err := k.Create(ctx, payload)
		last[w] = id
		return err
	})
	elapsed := time.Since(start)
	p.stop()
	if err != nil {
		return scaleInfo{}, err
	}
	st := eng.Stats()
	info := scaleInfo{
		Sessions:  n,
		Seconds:   elapsed.Seconds(),
		RSSBaseMB: base,
		RSSMB:     rssMB(),
	}
	p.fill(&info, st, before)
	info.BytesPerSession = (info.RSSMB - base) * (1 << 20) / float64(n)
	info.HeapMB = heapMB()
	for _, id := range last {
		if id == "" {
			continue
		}
		if v, err := k.Load(ctx, id); err != nil || !bytes.Equal(v, payload) {
			return info, fmt.Errorf("session %s is not stored (%v)", id, err)
		}
	}
	bound := maxLiveOf(opts)
	if bound == 0 {
		bound = defaultMaxLive()
	}
	passivate := opts.PassivateAfter
	if passivate == 0 {
		passivate = time.Minute
	}
	info.Note = fmt.Sprintf("%d goroutines calling RawKind.Create with 100-byte values on storage.NewMemory; MaxLiveActors %s, PassivateAfter %v; %s; per-session bytes include the stored record",
		workers, boundLabel(bound), passivate, p.summary(&info))
	return info, nil
}

func boundLabel(n int) string {
	if n <= 0 {
		return "none (engine without the bound)"
	}
	return thousands(float64(n))
}

// parallel calls f n times from workers goroutines (f gets the worker's
// number) and returns the first error, after which no new call starts.
func parallel(n, workers int, f func(w int) error) error {
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for failed.Load() == nil && next.Add(1) <= int64(n) {
				if err := f(w); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if e := failed.Load(); e != nil {
		return *e
	}
	return nil
}

// peakSampler reads the resident size and the live actors every peakEvery
// while a flood runs, and keeps the highest.
type peakSampler struct {
	live       func() int64
	stopc      chan struct{}
	done       chan struct{}
	samples    int
	peakMB     float64
	liveAtPeak int64 // live actors when the resident size peaked
	liveMax    int64
}

// startPeak takes a first sample and starts sampling.
func startPeak(live func() int64) *peakSampler {
	p := &peakSampler{live: live, stopc: make(chan struct{}), done: make(chan struct{})}
	p.sample()
	go func() {
		defer close(p.done)
		t := time.NewTicker(peakEvery)
		defer t.Stop()
		for {
			select {
			case <-p.stopc:
				return
			case <-t.C:
				p.sample()
			}
		}
	}()
	return p
}

func (p *peakSampler) sample() {
	rss, live := statmMB(), p.live()
	p.samples++
	if rss > p.peakMB {
		p.peakMB, p.liveAtPeak = rss, live
	}
	p.liveMax = max(p.liveMax, live)
}

// stop ends the sampling with a last sample; the fields are the
// caller's afterwards.
func (p *peakSampler) stop() {
	close(p.stopc)
	<-p.done
	p.sample()
}

// fill sets the flood's figures of info: the peak (never below the
// resident sizes read before and after), and the engine's counters since
// before.
func (p *peakSampler) fill(info *scaleInfo, st, before engine.Stats) {
	info.PeakRSSMB = max(p.peakMB, info.RSSBaseMB, info.RSSMB)
	info.RSSSamples = p.samples
	info.LiveActors = ptr(st.LiveActors)
	info.LiveActorsPeak = ptr(max(p.liveMax, st.LiveActors))
	info.LiveActorsAtPeakRSS = ptr(p.liveAtPeak)
	info.Spawned = st.Spawned - before.Spawned
	info.Passivated = st.Passivated - before.Passivated
	if e, e0 := evictedOf(st), evictedOf(before); e != nil && e0 != nil {
		info.Evicted = ptr(*e - *e0)
	}
}

// summary describes the engine's counters and the sampling for a note.
func (p *peakSampler) summary(info *scaleInfo) string {
	evicted := "not counted by this engine"
	if info.Evicted != nil {
		evicted = thousands(float64(*info.Evicted))
	}
	return fmt.Sprintf("actors spawned %s, passivated %s, evicted %s; live actors %s at the peak of RSS; RSS sampled every %v (%d samples)",
		thousands(float64(info.Spawned)), thousands(float64(info.Passivated)), evicted,
		thousands(float64(*info.LiveActorsAtPeakRSS)), peakEvery, info.RSSSamples)
}

// statmMB returns this process's resident size from /proc/self/statm (a
// cheaper read than /proc/self/status, for sampling), in MiB; rssMB where
// it cannot be read.
func statmMB() float64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return rssMB()
	}
	f := strings.Fields(string(data)) // size resident shared text lib data dt, in pages
	if len(f) < 2 {
		return rssMB()
	}
	pages, err := strconv.ParseFloat(f[1], 64)
	if err != nil {
		return rssMB()
	}
	return pages * float64(os.Getpagesize()) / (1 << 20)
}

// randomID returns a random session ID of the engine's form (a version 4
// UUID) that the server never issued.
func randomID() (string, error) {
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	raw[6] = raw[6]&0x0f | 0x40 // version 4
	raw[8] = raw[8]&0x3f | 0x80 // RFC 4122 variant
	return formatUUID(raw), nil
}
