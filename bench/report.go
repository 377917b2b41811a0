package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/steward-sessions/steward/engine"
)

// report is everything a run produced; it is also the JSON file's shape.
type report struct {
	Command     string  `json:"command"`
	Started     string  `json:"started"`
	Machine     string  `json:"machine"`
	Rounds      int     `json:"rounds"`
	DurationS   float64 `json:"duration_s"`
	WarmupS     float64 `json:"warmup_s"`
	Connections int     `json:"connections"`
	Requests    int     `json:"requests_per_connection,omitempty"`
	// Instances is the servers per system of the multi-instance
	// scenarios (when one ran); Realistic is the realistic scenario's
	// shape (when it ran).
	Instances int             `json:"instances,omitempty"`
	Realistic *realisticShape `json:"realistic,omitempty"`
	ElapsedS  float64         `json:"elapsed_s"`
	LoadStart string          `json:"loadavg_start"` // /proc/loadavg 1, 5, 15 min
	LoadEnd   string          `json:"loadavg_end"`
	Records   []record        `json:"records"`
	Targets   []target        `json:"targets"`
}

// realisticShape is the realistic scenario's configuration, as reported.
type realisticShape struct {
	Users           int     `json:"users"`
	ZipfS           float64 `json:"zipf_s"`
	Writes          float64 `json:"writes"`    // share of requests that are increments
	Newcomers       float64 `json:"newcomers"` // share of requests whose user is replaced by a newcomer
	PassivateAfterS float64 `json:"passivate_after_s"`
}

// record is one (scenario, system). Numbers are null when the system is
// missing or every run of it failed.
type record struct {
	Scenario string `json:"scenario"`
	System   string `json:"system"`
	// ReqPerS is the median over the rounds of the increments answered per
	// second; in the scale scenario, sessions stored (or actors created)
	// per second.
	ReqPerS     *float64 `json:"req_per_s"`
	P50ms       *float64 `json:"p50_ms"`
	P99ms       *float64 `json:"p99_ms"`
	LostUpdates *int64   `json:"lost_updates"` // summed over the rounds
	// Surplus (realistic only) sums, over the rounds and the users, the
	// increments read back beyond those acknowledged.
	Surplus          int64    `json:"surplus,omitempty"`
	RatioToNoSession *float64 `json:"ratio_to_no_session"`
	Missing          string   `json:"missing"`
	Error            string   `json:"error,omitempty"`

	Rounds            int       `json:"rounds,omitempty"`         // rounds that completed
	RunsReqPerS       []float64 `json:"runs_req_per_s,omitempty"` // each round's req/s
	Requests          int64     `json:"requests,omitempty"`       // measured increments, all rounds
	Increments        int64     `json:"increments,omitempty"`     // successful increments, warm-up included, all rounds
	Errors            int64     `json:"errors"`
	ServerCPUUsPerReq *float64  `json:"server_cpu_us_per_req,omitempty"` // median; warm-up included
	ClientCPUUsPerReq *float64  `json:"client_cpu_us_per_req,omitempty"` // median; the load client's share
	// Actors are the engine's counters at the end of a run, summed over
	// the instances, the median of the rounds for each (Steward's
	// server-side systems only).
	Actors *engine.Stats `json:"actors,omitempty"`

	Scale *scaleInfo `json:"scale,omitempty"`
}

// fill sets r from its runs: medians of the rates and percentiles, sums
// of the counts.
func (r *record) fill(runs []runStat) {
	var rates, p50s, p99s, cpus, clientCPUs []float64
	var live, spawned, passivated, evicted []float64
	var lost int64
	for _, s := range runs {
		if s.err != nil {
			if r.Error == "" {
				r.Error = s.err.Error()
			}
			continue
		}
		rates = append(rates, s.reqPerS)
		p50s = append(p50s, s.p50ms)
		p99s = append(p99s, s.p99ms)
		cpus = append(cpus, s.cpuPerReq)
		clientCPUs = append(clientCPUs, s.clientCPUPerReq)
		lost += s.lost
		r.Surplus += s.surplus
		if a := s.actors; a != nil {
			live = append(live, float64(a.LiveActors))
			spawned = append(spawned, float64(a.Spawned))
			passivated = append(passivated, float64(a.Passivated))
			evicted = append(evicted, float64(a.Evicted))
		}
		r.Requests += s.measured
		r.Increments += s.increments
		r.Errors += s.errors
	}
	r.Rounds = len(rates)
	if len(rates) == 0 {
		return
	}
	r.RunsReqPerS = rates
	r.ReqPerS = ptr(median(rates))
	r.P50ms = ptr(median(p50s))
	r.P99ms = ptr(median(p99s))
	r.ServerCPUUsPerReq = ptr(median(cpus))
	r.ClientCPUUsPerReq = ptr(median(clientCPUs))
	r.LostUpdates = &lost
	if len(spawned) > 0 {
		r.Actors = &engine.Stats{
			LiveActors: int64(median(live)),
			Spawned:    int64(median(spawned)),
			Passivated: int64(median(passivated)),
			Evicted:    int64(median(evicted)),
		}
	}
}

// actorLine describes an engine's counters at the end of a run.
func actorLine(a engine.Stats) string {
	return fmt.Sprintf("%s spawned, %s passivated (%s of them evicted), %s live at the end",
		thousands(float64(a.Spawned)), thousands(float64(a.Passivated)), thousands(float64(a.Evicted)), thousands(float64(a.LiveActors)))
}

func ptr[T any](v T) *T { return &v }

// find returns the record of (scenario, system), nil if there is none.
func (rep *report) find(scenario, system string) *record {
	for i := range rep.Records {
		if r := &rep.Records[i]; r.Scenario == scenario && r.System == system {
			return r
		}
	}
	return nil
}

// ratios sets every HTTP record's ratio to the no-session server of its
// scenario, and the targets.
func (rep *report) ratios() {
	for i := range rep.Records {
		r := &rep.Records[i]
		if r.Scenario == scenarioScale || r.ReqPerS == nil {
			continue
		}
		if ns := rep.find(r.Scenario, "no-session"); ns != nil && ns.ReqPerS != nil && *ns.ReqPerS > 0 {
			r.RatioToNoSession = ptr(*r.ReqPerS / *ns.ReqPerS)
		}
	}
	rep.Targets = rep.targets()
}

// write prints the Markdown on stdout and writes the files asked for.
func (rep *report) write(o options, stdout io.Writer) error {
	var md bytes.Buffer
	rep.markdown(&md)
	if _, err := stdout.Write(md.Bytes()); err != nil {
		return err
	}
	if o.mdPath != "" {
		if err := os.WriteFile(o.mdPath, md.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if o.jsonPath != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonPath, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	if o.svgPath != "" {
		var svg bytes.Buffer
		rep.svg(&svg)
		if err := os.WriteFile(o.svgPath, svg.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// markdown writes the tables: HTTP scenarios, scale, targets.
func (rep *report) markdown(w io.Writer) {
	var web, scale []record
	for _, r := range rep.Records {
		if r.Scenario == scenarioScale {
			scale = append(scale, r)
		} else {
			web = append(web, r)
		}
	}
	fmt.Fprintf(w, "`%s` · %s · %s · finished in %.0f s · load average %s at the start, %s at the end\n\n",
		strings.TrimSpace(rep.Command), rep.Started, rep.Machine, rep.ElapsedS, rep.LoadStart, rep.LoadEnd)
	if len(web) > 0 {
		if rep.Requests > 0 {
			fmt.Fprintf(w, "%d connections × %d requests per run, %d round(s). ", rep.Connections, rep.Requests, rep.Rounds)
		} else {
			fmt.Fprintf(w, "%d keep-alive connections, closed loop; %d round(s) × %g s (after %g s of warm-up) per system and scenario, systems alternated; median of the rounds. ",
				rep.Connections, rep.Rounds, rep.DurationS, rep.WarmupS)
		}
		rep.scenarioNotes(w)
		fmt.Fprintf(w, "Lost updates: successful increments minus the final counters (in %s, per user), summed over the rounds. CPU µs/req: user+system time per request (warm-up included) of the server process (the sum over the instances) and of the load client, which share the machine: a ratio of req/s understates the difference in server cost when the client takes much of the CPU.\n\n", scenarioRealistic)
		fmt.Fprintln(w, "| scenario | system | req/s | × no-session | p50 ms | p99 ms | lost updates | errors | server CPU µs/req | client CPU µs/req | note |")
		fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|")
		for _, r := range web {
			note := ""
			switch {
			case r.Missing != "":
				note = "missing: " + r.Missing
			case r.Error != "":
				note = "failed: " + oneLine(r.Error)
			}
			if r.Surplus != 0 {
				note = join(note, fmt.Sprintf("%s increments more than acknowledged", thousands(float64(r.Surplus))))
			}
			if r.Actors != nil && r.Scenario == scenarioRealistic {
				note = join(note, "actors per run: "+actorLine(*r.Actors))
			}
			lost := "–"
			if r.LostUpdates != nil {
				lost = fmt.Sprintf("%s of %s", thousands(float64(*r.LostUpdates)), thousands(float64(r.Increments)))
			}
			errs := "–"
			if r.Missing == "" {
				errs = strconv.FormatInt(r.Errors, 10)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
				r.Scenario, r.System, fmtOr(r.ReqPerS, thousands, "missing"), fmtOr(r.RatioToNoSession, ratio, "–"),
				fmtOr(r.P50ms, fixed2, "–"), fmtOr(r.P99ms, fixed2, "–"), lost, errs,
				fmtOr(r.ServerCPUUsPerReq, fixed0, "–"), fmtOr(r.ClientCPUUsPerReq, fixed0, "–"), note)
		}
		fmt.Fprintln(w)
	}
	if len(scale) > 0 {
		fmt.Fprintln(w, "Scale: each line in a fresh process; RSS is VmRSS from /proc/self/status, \"per session\" is (RSS − RSS before) / sessions (/ requests for junk-flood). "+
			"The floods also sample the RSS while they run (peak); their live actors are at the end (and at most).")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| scale | sessions | seconds | per s | RSS before MB | RSS MB (heap) | peak RSS MB | bytes per session | live actors | live actors after idle | RSS after idle MB | note |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
		for _, r := range scale {
			if r.Scale == nil {
				note := "missing: " + r.Missing
				if r.Missing == "" {
					note = "failed: " + oneLine(r.Error)
				}
				fmt.Fprintf(w, "| %s | – | – | – | – | – | – | – | – | – | – | %s |\n", r.System, note)
				continue
			}
			s := r.Scale
			sessions := thousands(float64(s.Sessions))
			if s.Requests > 0 {
				sessions = fmt.Sprintf("%s (of %s requests)", sessions, thousands(float64(s.Requests)))
			}
			peak, live, liveAfter, rssAfter := "–", "–", "–", "–"
			if s.PeakRSSMB > 0 {
				peak = fmt.Sprintf("%.0f", s.PeakRSSMB)
			}
			if s.LiveActors != nil {
				live = thousands(float64(*s.LiveActors))
			}
			if s.LiveActorsPeak != nil {
				live += fmt.Sprintf(" (%s at most)", thousands(float64(*s.LiveActorsPeak)))
			}
			if s.LiveActorsAfter != nil {
				liveAfter = thousands(float64(*s.LiveActorsAfter))
				rssAfter = fmt.Sprintf("%.0f (%.0f after FreeOSMemory; heap %.0f)", s.RSSAfterMB, s.RSSAfterFreeMB, s.HeapAfterMB)
			}
			fmt.Fprintf(w, "| %s | %s | %.2f | %s | %.0f | %.0f (%.0f) | %s | %.0f | %s | %s | %s | %s |\n",
				r.System, sessions, s.Seconds, fmtOr(r.ReqPerS, thousands, "–"), s.RSSBaseMB, s.RSSMB, s.HeapMB, peak,
				s.BytesPerSession, live, liveAfter, rssAfter, oneLineLong(s.Note))
		}
		fmt.Fprintln(w)
	}
	if len(rep.Targets) > 0 {
		fmt.Fprintln(w, "Targets (issues 5 and 13 and the memory-bounds issue; goals for the product, not test assertions):")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| target | measured | status |")
		fmt.Fprintln(w, "|---|---|---|")
		for _, t := range rep.Targets {
			fmt.Fprintf(w, "| %s | %s | %s |\n", t.Goal, t.Measured, t.Status)
		}
		fmt.Fprintln(w)
	}
}

// scenarioNotes says how the multi-instance and realistic scenarios that
// ran were shaped.
func (rep *report) scenarioNotes(w io.Writer) {
	if rep.Instances > 0 {
		fmt.Fprintf(w, "%s, %s: %d servers of each system on one Redis, each connection kept to one of them (round-robin by connection). ",
			scenarioMultiHot, scenarioMultiMany, rep.Instances)
	}
	if rc := rep.Realistic; rc != nil {
		fmt.Fprintf(w, "%s: %s users, Zipf activity (s = %g), %g%% increments and the rest reads (req/s counts both), %g%% of requests from a newcomer without a cookie, Steward's PassivateAfter %gs. ",
			scenarioRealistic, thousands(float64(rc.Users)), rc.ZipfS, 100*rc.Writes, 100*rc.Newcomers, rc.PassivateAfterS)
	}
}

// join joins two notes.
func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func fmtOr(v *float64, f func(float64) string, none string) string {
	if v == nil {
		return none
	}
	return f(*v)
}

func ratio(x float64) string  { return fmt.Sprintf("%.2fx", x) }
func fixed2(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) }
func fixed0(x float64) string { return strconv.FormatFloat(x, 'f', 0, 64) }

// thousands formats x rounded to an integer with thin separators: 12,345.
func thousands(x float64) string {
	n := int64(math.Round(x))
	neg := n < 0
	if neg {
		n = -n
	}
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// oneLine keeps a message on one table row.
func oneLine(s string) string {
	s = oneLineLong(s)
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// oneLineLong keeps a note on one table row, whatever its length.
func oneLineLong(s string) string {
	return strings.ReplaceAll(strings.Join(strings.Fields(s), " "), "|", "/")
}
