package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// loadConfig is one run of the load client against the servers of one
// system.
type loadConfig struct {
	// bases are the servers, http://127.0.0.1:PORT each: connection i
	// sends all its requests to bases[i%len(bases)], as a load balancer
	// that keeps each connection to one instance.
	bases       []string
	shape       loadShape
	connections int
	warmup      time.Duration
	duration    time.Duration
	// requests, when positive, replaces warm-up and duration: each
	// connection sends exactly this many requests, all measured.
	requests  int
	realistic realisticConfig // the population shape only
}

// base is the server connection i uses.
func (cfg loadConfig) base(i int) string { return cfg.bases[i%len(cfg.bases)] }

// loadResult is what one run measured.
type loadResult struct {
	measured  int64         // requests answered inside the measured window
	elapsed   time.Duration // the measured window
	latencies []int64       // ns, one per measured request
	// increments counts every successful increment, warm-up included;
	// final is the sum of the counters read at the end; lost is their
	// difference (negative would mean increments we did not see succeed).
	// The realistic scenario counts per user instead: lost sums the
	// users' shortfalls, surplus their excesses (see realistic.go).
	increments, final, lost int64
	surplus                 int64
	errors                  int64 // failed requests (transport errors, non-200 answers)
	total                   int64 // requests sent, warm-up included
	firstErr                error
}

// Phases of a timed run, read by every connection before and after each
// request: only requests that start and end in phaseMeasure count.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// jar holds the one session cookie of a client: a "name=value" pair sent
// back as the Cookie header. Connections of the hot-session scenario share
// one jar, as the connections of a browser share its cookies. A jar is one
// string and a mutex, so that the realistic scenario's 100,000 users are
// cheap to hold.
type jar struct {
	mu     sync.Mutex // protects cookie
	cookie string
}

func (j *jar) get() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.cookie
}

// update keeps the first cookie set by resp, as a browser would.
func (j *jar) update(resp *http.Response) {
	lines := resp.Header["Set-Cookie"]
	if len(lines) == 0 {
		return
	}
	pair, _, _ := strings.Cut(lines[0], ";")
	name, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
	if !ok || name == "" {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if value == "" {
		j.cookie = "" // cleared
		return
	}
	j.cookie = pair
}

// client is one keep-alive HTTP client for one run, to one server or
// several.
type client struct {
	tr *http.Transport
}

func newClient(connections int) *client {
	return &client{
		tr: &http.Transport{
			MaxIdleConns:        connections,
			MaxIdleConnsPerHost: connections,
			MaxConnsPerHost:     connections,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

func (c *client) close() { c.tr.CloseIdleConnections() }

var errStatus = errors.New("non-200 answer")

// do sends one request to the server at base with j's cookie, updates j
// from the answer and returns the number the server replied with. buf is
// reused for the body.
func (c *client) do(ctx context.Context, base, method, path string, j *jar, buf *bytes.Buffer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
	if err != nil {
		return 0, err
	}
	if ck := j.get(); ck != "" {
		req.Header["Cookie"] = []string{ck}
	}
	resp, err := c.tr.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	buf.Reset()
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%w: %s %s: %s: %.200s", errStatus, method, path, resp.Status, buf.Bytes())
	}
	j.update(resp)
	n, err := strconv.ParseInt(string(bytes.TrimSpace(buf.Bytes())), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %s: reply %q is not a number", method, path, buf.Bytes())
	}
	return n, nil
}

// connStats is what one connection's goroutine counted: increments are
// the successful ones.
type connStats struct {
	measured, increments, errors, total int64
	latencies                           []int64
	firstErr                            error
}

// runLoad runs one scenario against the servers of one system, closed
// loop: each connection's goroutine sends its next request when the
// previous one is answered.
func runLoad(ctx context.Context, cfg loadConfig) (loadResult, error) {
	c := newClient(cfg.connections)
	defer c.close()
	if cfg.shape == manyUsers {
		return runRealistic(ctx, c, cfg)
	}
	var buf bytes.Buffer

	// perConnection: one jar per connection, each starting without a
	// session. sharedSession: one shared jar, whose session is made first.
	jars := make([]*jar, cfg.connections)
	var shared *jar
	var res loadResult
	if cfg.shape == sharedSession {
		shared = &jar{}
		if _, err := c.do(ctx, cfg.base(0), http.MethodPost, "/increment", shared, &buf); err != nil {
			return res, fmt.Errorf("making the shared session: %w", err)
		}
		// A server that sets no cookie (no-session) is driven all the same:
		// the final read then shows whether its counter kept every update.
		res.increments, res.total = 1, 1
	}
	for i := range jars {
		jars[i] = shared
		if jars[i] == nil {
			jars[i] = &jar{}
		}
	}

	stats := drive(ctx, cfg, func(i int) request {
		j, base := jars[i], cfg.base(i)
		return func(ctx context.Context, buf *bytes.Buffer) (bool, error) {
			_, err := c.do(ctx, base, http.MethodPost, "/increment", j, buf)
			return true, err
		}
	}, &res)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	for i := range stats {
		res.increments += stats[i].increments
	}

	// Read the counters back: lost = successful increments - final values.
	if shared != nil {
		v, err := c.do(ctx, cfg.base(0), http.MethodGet, "/count", shared, &buf)
		if err != nil {
			return res, fmt.Errorf("reading the shared session: %w", err)
		}
		res.final = v
	} else {
		cookies := 0
		for i, j := range jars {
			if j.get() == "" {
				continue // never got a session: its counter is 0
			}
			cookies++
			v, err := c.do(ctx, cfg.base(i), http.MethodGet, "/count", j, &buf)
			if err != nil {
				return res, fmt.Errorf("reading the session of connection %d: %w", i, err)
			}
			res.final += v
		}
		if cookies == 0 {
			// No session at all (no-session): the one global counter.
			v, err := c.do(ctx, cfg.base(0), http.MethodGet, "/count", &jar{}, &buf)
			if err != nil {
				return res, fmt.Errorf("reading the counter: %w", err)
			}
			res.final = v
		}
	}
	res.lost = res.increments - res.final
	return res, nil
}

// A request sends one request of a connection and reports whether it was
// an increment; a connection's requests run one after another.
type request func(ctx context.Context, buf *bytes.Buffer) (increment bool, err error)

// drive runs the closed loop: one goroutine per connection sending the
// requests next(i) makes for connection i, timed (warm-up, then the
// measured window) or counted (cfg.requests each). It adds what was
// measured, the errors and the requests sent to res and returns each
// connection's counts.
func drive(ctx context.Context, cfg loadConfig, next func(i int) request, res *loadResult) []connStats {
	var phase atomic.Int32
	if cfg.requests > 0 {
		phase.Store(phaseMeasure)
	}
	stats := make([]connStats, cfg.connections)
	var wg sync.WaitGroup
	for i := range stats {
		wg.Add(1)
		go func(st *connStats, send request) {
			defer wg.Done()
			var buf bytes.Buffer
			st.latencies = make([]int64, 0, 1024)
			for n := 0; cfg.requests <= 0 || n < cfg.requests; n++ {
				p := phase.Load()
				if p == phaseStop {
					return
				}
				start := time.Now()
				incr, err := send(ctx, &buf)
				lat := time.Since(start)
				st.total++
				if err != nil {
					st.errors++
					if st.firstErr == nil {
						st.firstErr = err
					}
					if ctx.Err() != nil {
						return
					}
					continue
				}
				if incr {
					st.increments++
				}
				if p == phaseMeasure && phase.Load() == phaseMeasure {
					st.measured++
					st.latencies = append(st.latencies, int64(lat))
				}
			}
		}(&stats[i], next(i))
	}

	start := time.Now()
	if cfg.requests <= 0 {
		sleep(ctx, cfg.warmup)
		phase.Store(phaseMeasure)
		start = time.Now()
		sleep(ctx, cfg.duration)
		phase.Store(phaseStop)
		res.elapsed = time.Since(start)
	}
	wg.Wait()
	if cfg.requests > 0 {
		res.elapsed = time.Since(start)
	}

	n := 0
	for i := range stats {
		n += len(stats[i].latencies)
	}
	res.latencies = make([]int64, 0, n)
	for i := range stats {
		st := &stats[i]
		res.measured += st.measured
		res.errors += st.errors
		res.total += st.total
		res.latencies = append(res.latencies, st.latencies...)
		if res.firstErr == nil {
			res.firstErr = st.firstErr
		}
	}
	return stats
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
