package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/steward-sessions/steward/engine"
)

// runStat is one measured run of one system in one scenario.
type runStat struct {
	reqPerS, p50ms, p99ms float64
	measured              int64
	increments, lost      int64
	surplus               int64 // realistic: increments applied beyond those acknowledged
	errors                int64
	// actors are the engine's counters at the end of the run, summed over
	// the instances (Steward's server-side systems; nil for the others).
	actors          *engine.Stats
	cpuPerReq       float64 // server CPU µs per request, warm-up included
	clientCPUPerReq float64 // the load client's CPU µs per request
	err             error   // the run failed: nothing above counts
}

// runAll runs every selected HTTP scenario on every selected system,
// alternating the systems within each round, then the scale scenario if
// it was asked for.
func runAll(o options, stderr io.Writer) *report {
	rep := &report{
		Started:     time.Now().UTC().Format(time.RFC3339),
		Machine:     machine(),
		Rounds:      o.rounds,
		DurationS:   o.duration.Seconds(),
		WarmupS:     o.warmup.Seconds(),
		Connections: o.connections,
		Requests:    o.requests,
		LoadStart:   loadAvg(),
	}
	for _, sc := range o.scenarios {
		switch {
		case multiInstance(sc):
			rep.Instances = o.multiInstances
		case sc == scenarioRealistic:
			rc := o.realistic
			rep.Realistic = &realisticShape{Users: rc.users, ZipfS: rc.zipfS, Writes: rc.writes,
				Newcomers: rc.newcomers, PassivateAfterS: rc.passivateAfter.Seconds()}
		}
	}
	var scenarios []string
	for _, s := range o.scenarios {
		if s != scenarioScale {
			scenarios = append(scenarios, s)
		}
	}
	var present []system
	for _, name := range o.systems {
		if s, _ := findSystem(name); s.missing == "" {
			present = append(present, s)
		}
	}

	type key struct{ scenario, system string }
	runs := make(map[key][]runStat)
	total := 0
	for _, sc := range scenarios {
		for _, sys := range present {
			if applies(sc, sys) {
				total += o.rounds
			}
		}
	}
	n := 0
	began := time.Now()
	for round := 1; round <= o.rounds; round++ {
		for _, sc := range scenarios {
			for _, sys := range present {
				if !applies(sc, sys) {
					continue
				}
				n++
				profile := ""
				if o.profileDir != "" {
					profile = filepath.Join(o.profileDir, fmt.Sprintf("%s-%s-round%d", sc, sys.name, round))
				}
				st := runOne(o, sc, sys.name, profile, stderr)
				runs[key{sc, sys.name}] = append(runs[key{sc, sys.name}], st)
				fmt.Fprintf(stderr, "[%d/%d %5.1fs] round %d/%d %-19s %-18s %s\n",
					n, total, time.Since(began).Seconds(), round, o.rounds, sc, sys.name, st)
			}
		}
	}

	for _, sc := range scenarios {
		for _, name := range o.systems {
			sys, _ := findSystem(name)
			if !applies(sc, sys) {
				continue
			}
			r := record{Scenario: sc, System: name, Missing: sys.missing}
			if sys.missing == "" {
				r.fill(runs[key{sc, name}])
			}
			rep.Records = append(rep.Records, r)
		}
	}
	if slices.Contains(o.scenarios, scenarioScale) {
		rep.Records = append(rep.Records, runScale(o, stderr)...)
	}
	rep.ratios()
	rep.ElapsedS = time.Since(began).Seconds()
	rep.LoadEnd = loadAvg()
	return rep
}

// runOne starts fresh servers for sys (one, or o.multiInstances in the
// multi-instance scenarios), drives them with the load client and stops
// them. profile, when not empty, is the CPU profiles' path without its
// extension.
func runOne(o options, scenario, sys, profile string, stderr io.Writer) runStat {
	budget := o.warmup + o.duration + 2*time.Minute
	n := o.instances(scenario)
	var srvs []*serverProc
	stopAll := func() error {
		var err error
		for _, srv := range srvs {
			if serr := srv.stop(); serr != nil && err == nil {
				err = fmt.Errorf("stopping the server: %w", serr)
			}
		}
		return err
	}
	bases := make([]string, 0, n)
	for i := range n {
		prof := ""
		if profile != "" {
			prof = profile + ".cpu.pprof"
			if n > 1 {
				prof = fmt.Sprintf("%s-instance%d.cpu.pprof", profile, i+1)
			}
		}
		srv, err := startServer(serverStart{system: sys, cpuprofile: prof, passivate: o.passivateFor(scenario),
			timeout: budget + time.Minute, redisURL: o.redisURL}, stderr)
		if err != nil {
			_ = stopAll()
			return runStat{err: err}
		}
		srvs = append(srvs, srv)
		bases = append(bases, srv.base)
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	clientCPU := selfCPU()
	res, err := runLoad(ctx, loadConfig{
		bases:       bases,
		shape:       shape(scenario),
		connections: o.connections,
		warmup:      o.warmup,
		duration:    o.duration,
		requests:    o.requests,
		realistic:   o.realistic,
	})
	clientCPU = selfCPU() - clientCPU
	if serr := stopAll(); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		return runStat{err: err}
	}
	st := runStat{
		measured:   res.measured,
		increments: res.increments,
		lost:       res.lost,
		surplus:    res.surplus,
		errors:     res.errors,
	}
	if res.elapsed > 0 {
		st.reqPerS = float64(res.measured) / res.elapsed.Seconds()
	}
	slices.Sort(res.latencies)
	st.p50ms = percentile(res.latencies, 0.50) / 1e6
	st.p99ms = percentile(res.latencies, 0.99) / 1e6
	var serverCPU time.Duration
	for _, srv := range srvs {
		serverCPU += srv.cpu()
		if a := srv.stats; a != nil && a.Spawned > 0 {
			if st.actors == nil {
				st.actors = &engine.Stats{}
			}
			st.actors.LiveActors += a.LiveActors
			st.actors.Spawned += a.Spawned
			st.actors.Passivated += a.Passivated
			st.actors.Evicted += a.Evicted
		}
	}
	if res.total > 0 {
		st.cpuPerReq = float64(serverCPU.Microseconds()) / float64(res.total)
		st.clientCPUPerReq = float64(clientCPU.Microseconds()) / float64(res.total)
	}
	if res.firstErr != nil {
		fmt.Fprintf(stderr, "bench: %s %s: first error: %v\n", scenario, sys, res.firstErr)
	}
	return st
}

func (s runStat) String() string {
	if s.err != nil {
		return "FAILED: " + s.err.Error()
	}
	line := fmt.Sprintf("%9s req/s  p50 %6.2f ms  p99 %6.2f ms  lost %s of %s  errors %d  CPU µs/req server %.0f client %.0f",
		thousands(s.reqPerS), s.p50ms, s.p99ms, thousands(float64(s.lost)), thousands(float64(s.increments)), s.errors, s.cpuPerReq, s.clientCPUPerReq)
	if s.surplus != 0 {
		line += fmt.Sprintf("  surplus %s", thousands(float64(s.surplus)))
	}
	if a := s.actors; a != nil {
		line += "  actors " + actorLine(*a)
	}
	return line
}

// percentile returns the nearest-rank p-quantile of sorted, 0 if empty.
func percentile(sorted []int64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.999999999) - 1
	i = min(max(i, 0), len(sorted)-1)
	return float64(sorted[i])
}

// median returns the median of xs (the mean of the middle two for an even
// count), 0 if empty. xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// loadAvg returns the first three fields of /proc/loadavg ("" where there
// is none): the machine's load, which says how much others took of it.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
