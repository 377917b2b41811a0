// Command bench measures Steward beside the Go session libraries people
// compare it with (alexedwards/scs, gorilla/sessions) and beside the same
// HTTP server with no sessions at all, in one run on one machine.
//
//	go run ./bench -quick                       # ~1.5 min: 1 round × 2 s per system and scenario
//	go run ./bench                              # 3 rounds × 5 s, the median of the rounds
//	go run ./bench -scale                       # adds the "scale" measurements (~1 min)
//	go run ./bench -json b.json -md b.md -svg b.svg
//
// Every system runs the same tiny handler (read a counter, increment it,
// write it back, reply with the number) in a server process of its own: the
// bench re-executes itself with the hidden -serve flag. One load client with
// keep-alive connections drives every system, closed loop, alternating the
// systems (A B C ... A B C ...) so that a drifting machine favours nobody.
//
// Scenarios:
//
//	many-sessions  64 connections, each its own session
//	hot-session    64 connections sharing one session; lost updates are the
//	               successful increments minus the counter's final value
//	multi-instance-hot, multi-instance-many
//	               the same two on three servers of one system over one
//	               Redis (steward-redis, steward-redis-local, scs-redis),
//	               each connection kept to one server
//	realistic      100,000 users with Zipf-distributed activity, 90% reads,
//	               a stream of newcomers without cookies, Steward's
//	               PassivateAfter 2s; lost updates counted per user
//	scale          (with -scale) memory per stored session and per live
//	               session actor, passivation of idle actors, and the
//	               resident size under floods of never-issued session IDs
//	               and of fresh sessions
//
// A system whose feature has not landed yet is listed as missing, with the
// reason, and never measured by a stand-in.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// options are the command line of a benchmark run.
type options struct {
	quick       bool
	rounds      int
	duration    time.Duration
	warmup      time.Duration
	connections int
	scenarios   []string
	systems     []string
	jsonPath    string
	mdPath      string
	svgPath     string
	profileDir  string
	scaleN      int // stored sessions for the scale scenario
	scaleActors int // live actors for the scale scenario
	// scalePassivate is PassivateAfter in the live actors measurement.
	scalePassivate time.Duration
	scaleJunk      int // requests with never-issued IDs (junk-flood)
	scaleFresh     int // sessions created (fresh-flood)

	// multiInstances is the servers per system of the multi-instance
	// scenarios.
	multiInstances int
	realistic      realisticConfig
	// redisURL is the Redis of the Redis systems' servers: $STEWARD_BENCH_REDIS,
	// or the redis-server the run started.
	redisURL string

	// requests, when positive, replaces the timed warm-up and measurement:
	// each connection sends exactly this many increments (tests use it so
	// that they do not depend on timing).
	requests int
}

// run is main without os.Exit, for tests.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var scenarios, systems string
	var scale bool
	fs.BoolVar(&o.quick, "quick", false, "1 round, 2 s per system and scenario (whole run well under 60 s)")
	fs.IntVar(&o.rounds, "rounds", 0, "rounds of every system and scenario; the median is reported (default 3, 1 with -quick)")
	fs.DurationVar(&o.duration, "duration", 0, "measured time per run (default 5s, 2s with -quick)")
	fs.DurationVar(&o.warmup, "warmup", 0, "unmeasured warm-up per run (default 1s, 500ms with -quick)")
	fs.IntVar(&o.connections, "connections", 64, "keep-alive connections of the load client")
	fs.StringVar(&scenarios, "scenarios", strings.Join(defaultScenarios, ","), "comma-separated scenarios: "+strings.Join(allScenarios, ", "))
	fs.StringVar(&systems, "systems", "", "comma-separated systems to run (default all): "+strings.Join(systemNames(), ", "))
	fs.BoolVar(&scale, "scale", false, `add the "scale" scenario: 1,000,000 stored sessions, 100,000 live actors, two floods (~1 min)`)
	fs.StringVar(&o.jsonPath, "json", "", "write the results as JSON to this file")
	fs.StringVar(&o.mdPath, "md", "", "write the Markdown table to this file as well as to stdout")
	fs.StringVar(&o.svgPath, "svg", "", "write an SVG bar chart of req/s to this file")
	fs.StringVar(&o.profileDir, "profile", "", "have each server write a CPU profile into this directory")
	fs.IntVar(&o.scaleN, "scale-sessions", 1_000_000, "stored sessions in the scale scenario")
	fs.IntVar(&o.scaleActors, "scale-actors", 100_000, "live session actors in the scale scenario")
	fs.DurationVar(&o.scalePassivate, "scale-passivate", scalePassivateAfter, "PassivateAfter of the scale scenario's live actors, whose passivation it waits for")
	fs.IntVar(&o.scaleJunk, "scale-junk", 200_000, "requests with never-issued session IDs in the scale scenario's junk-flood")
	fs.IntVar(&o.scaleFresh, "scale-fresh", 500_000, "sessions created in the scale scenario's fresh-flood")
	fs.IntVar(&o.multiInstances, "instances", 3, "servers per system in the multi-instance scenarios, all on one Redis")
	fs.IntVar(&o.realistic.users, "realistic-users", 100_000, "users of the realistic scenario")
	fs.Float64Var(&o.realistic.zipfS, "realistic-zipf", 1.1, "Zipf exponent s (> 1) of the realistic users' activity by rank")
	fs.Float64Var(&o.realistic.writes, "realistic-writes", 0.1, "share of the realistic scenario's requests that are increments (the others read)")
	fs.Float64Var(&o.realistic.newcomers, "realistic-new", 0.01, "share of the realistic scenario's requests whose user is replaced by a newcomer without a cookie")
	fs.DurationVar(&o.realistic.passivateAfter, "realistic-passivate", 2*time.Second, "PassivateAfter of Steward's servers in the realistic scenario")

	// Hidden modes: the bench re-executes itself as a server or as one
	// scale measurement, so that `go run ./bench` builds nothing extra.
	var serveSystem, serveAddr, cpuprofile, scaleChild, scaleDir string
	var so serverOptions
	var serveTimeout time.Duration
	fs.StringVar(&serveSystem, "serve", "", "")
	fs.StringVar(&serveAddr, "addr", "127.0.0.1:0", "")
	fs.StringVar(&so.dir, "dir", "", "")
	fs.DurationVar(&so.passivateAfter, "passivate", 0, "")
	fs.StringVar(&cpuprofile, "cpuprofile", "", "")
	fs.DurationVar(&serveTimeout, "serve-timeout", 10*time.Minute, "")
	fs.StringVar(&scaleChild, "scale-child", "", "")
	fs.StringVar(&scaleDir, "scale-dir", "", "")
	fs.IntVar(&o.requests, "requests", 0, "")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./bench [-quick] [-scale] [-json PATH] [-md PATH] [-svg PATH] [flags]")
		fs.VisitAll(func(f *flag.Flag) {
			if f.Usage == "" {
				return // hidden
			}
			fmt.Fprintf(stderr, "  -%s\n    \t%s\n", f.Name, f.Usage)
		})
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}

	switch {
	case serveSystem != "":
		if err := serve(serveSystem, serveAddr, cpuprofile, so, serveTimeout, stdin, stdout); err != nil {
			fmt.Fprintf(stderr, "bench: serve %s: %v\n", serveSystem, err)
			return 1
		}
		return 0
	case scaleChild != "":
		if err := scaleOne(scaleChild, o, scaleDir, stdout); err != nil {
			fmt.Fprintf(stderr, "bench: scale %s: %v\n", scaleChild, err)
			return 1
		}
		return 0
	}

	// The servers write their errors to stderr too, several at once in
	// the multi-instance scenarios.
	stderr = &syncWriter{w: stderr}
	if err := o.finish(scenarios, systems, scale); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	o.redisURL = os.Getenv(redisEnv)
	if needsRedis(o.systems) && o.redisURL == "" {
		url, stop, err := startRedis()
		if err != nil {
			fmt.Fprintln(stderr, "bench: starting redis-server:", err)
			return 1
		}
		defer stop()
		o.redisURL = url // the servers are told in their environment
	}
	rep := runAll(o, stderr)
	rep.Command = "go run ./bench " + strings.Join(args, " ")
	if err := rep.write(o, stdout); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	return 0
}

// needsRedis reports whether a selected system runs on Redis and can.
func needsRedis(selected []string) bool {
	for _, name := range selected {
		if sys, ok := findSystem(name); ok && sys.build != nil && sys.missing == "" &&
			(name == "steward-redis" || name == "steward-redis-local" || name == "scs-redis") {
			return true
		}
	}
	return false
}

// finish fills the defaults and checks the lists.
func (o *options) finish(scenarios, systems string, scale bool) error {
	def := func(v *time.Duration, normal, quick time.Duration) {
		if *v == 0 {
			*v = normal
			if o.quick {
				*v = quick
			}
		}
	}
	def(&o.duration, 5*time.Second, 2*time.Second)
	def(&o.warmup, time.Second, 500*time.Millisecond)
	if o.rounds == 0 {
		o.rounds = 3
		if o.quick {
			o.rounds = 1
		}
	}
	if o.rounds < 0 || o.connections <= 0 || o.duration < 0 || o.warmup < 0 ||
		o.scaleN <= 0 || o.scaleActors <= 0 || o.scaleJunk <= 0 || o.scaleFresh <= 0 || o.scalePassivate <= 0 {
		return fmt.Errorf("negative -rounds, -duration or -warmup, or non-positive -connections or -scale-*")
	}
	if o.multiInstances <= 0 {
		return fmt.Errorf("-instances %d: want at least one", o.multiInstances)
	}
	if err := o.realistic.check(); err != nil {
		return err
	}
	for _, s := range splitList(scenarios) {
		if !slices.Contains(allScenarios, s) {
			return fmt.Errorf("unknown scenario %q (want %s)", s, strings.Join(allScenarios, ", "))
		}
		o.scenarios = appendOnce(o.scenarios, s)
	}
	if scale {
		o.scenarios = appendOnce(o.scenarios, scenarioScale)
	}
	if len(o.scenarios) == 0 {
		return fmt.Errorf("no scenario selected")
	}
	for _, s := range splitList(systems) {
		if !slices.Contains(systemNames(), s) {
			return fmt.Errorf("unknown system %q (want %s)", s, strings.Join(systemNames(), ", "))
		}
		o.systems = appendOnce(o.systems, s)
	}
	if len(o.systems) == 0 {
		o.systems = systemNames()
	}
	return nil
}

// syncWriter serializes the writes to w.
type syncWriter struct {
	mu sync.Mutex // protects w
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// machine describes where the run happened.
func machine() string {
	return fmt.Sprintf("%s %s/%s, %d CPUs", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
}
