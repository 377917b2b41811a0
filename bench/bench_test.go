package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
)

// TestMain lets the test binary play the server and scale-child roles:
// the bench re-executes os.Executable(), which under go test is this
// binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "-serve" || os.Args[1] == "-scale-child") {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestEndToEnd runs both HTTP scenarios on every available system, a few
// hundred requests each (counted, not timed), each server in its own
// process, and checks that Steward lost no update and that the three
// outputs parse.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	jsonPath, mdPath, svgPath := filepath.Join(dir, "b.json"), filepath.Join(dir, "b.md"), filepath.Join(dir, "b.svg")
	var stdout, stderr bytes.Buffer
	code := run([]string{"-rounds", "1", "-connections", "8", "-requests", "40", "-scenarios", "many-sessions,hot-session",
		"-json", jsonPath, "-md", mdPath, "-svg", svgPath}, strings.NewReader(""), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
	}

	var rep report
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("the JSON does not parse: %v", err)
	}
	if want := 2 * len(systems); len(rep.Records) != want {
		t.Fatalf("%d records, want %d (every system in both scenarios)", len(rep.Records), want)
	}
	for _, r := range rep.Records {
		sys, ok := findSystem(r.System)
		if !ok {
			t.Errorf("record for unknown system %q", r.System)
			continue
		}
		if sys.missing != "" {
			if r.Missing == "" || r.ReqPerS != nil {
				t.Errorf("%s %s: a missing system must have a reason and no figures: %+v", r.Scenario, r.System, r)
			}
			continue
		}
		if r.Error != "" || r.ReqPerS == nil || r.LostUpdates == nil || r.P99ms == nil {
			t.Errorf("%s %s: no figures (error %q)", r.Scenario, r.System, r.Error)
			continue
		}
		if r.Errors != 0 {
			t.Errorf("%s %s: %d failed requests", r.Scenario, r.System, r.Errors)
		}
		wantIncr := int64(8 * 40)
		if r.Scenario == scenarioHot {
			wantIncr++ // the request that made the shared session
		}
		if r.Increments != wantIncr {
			t.Errorf("%s %s: %d increments, want %d", r.Scenario, r.System, r.Increments, wantIncr)
		}
		if sys.steward && !sys.clientSide && *r.LostUpdates != 0 {
			t.Errorf("%s %s: lost %d updates", r.Scenario, r.System, *r.LostUpdates)
		}
		if r.Scenario == scenarioMany && *r.LostUpdates != 0 {
			t.Errorf("%s %s: lost %d updates with one connection per session", r.Scenario, r.System, *r.LostUpdates)
		}
		if r.System == "no-session" && (r.RatioToNoSession == nil || *r.RatioToNoSession != 1) {
			t.Errorf("%s no-session: ratio %v, want 1", r.Scenario, r.RatioToNoSession)
		}
	}
	if len(rep.Targets) == 0 {
		t.Error("no targets in the JSON")
	}

	md, err := os.ReadFile(mdPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(md, stdout.Bytes()) {
		t.Error("the -md file differs from what was printed")
	}
	checkMarkdownTables(t, string(md))
	for _, sys := range systems {
		if sys.missing != "" && !strings.Contains(string(md), "missing: "+sys.missing) {
			t.Errorf("the table does not say why %s is missing", sys.name)
		}
	}

	svg, err := os.ReadFile(svgPath)
	if err != nil {
		t.Fatal(err)
	}
	checkSVG(t, svg)
	for _, s := range systems {
		if !bytes.Contains(svg, []byte(">"+s.name+"<")) {
			t.Errorf("the chart has no label for %s", s.name)
		}
	}
	if !strings.Contains(stderr.String(), "[1/") {
		t.Errorf("no progress line on stderr:\n%s", stderr.String())
	}
}

// runSmall runs the bench with args, a few hundred requests per system
// (counted, not timed), and returns its report and its Markdown.
func runSmall(t *testing.T, args ...string) (report, string) {
	t.Helper()
	jsonPath := filepath.Join(t.TempDir(), "b.json")
	var stdout, stderr bytes.Buffer
	args = append([]string{"-rounds", "1", "-connections", "8", "-json", jsonPath}, args...)
	if code := run(args, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
	}
	var rep report
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("the JSON does not parse: %v", err)
	}
	checkMarkdownTables(t, stdout.String())
	return rep, stdout.String()
}

// measured returns r's system and reports false, after failing the test
// if r has no figures, when there is nothing to check (missing system).
func measured(t *testing.T, r record) (system, bool) {
	t.Helper()
	sys, ok := findSystem(r.System)
	switch {
	case !ok:
		t.Errorf("record for unknown system %q", r.System)
		return sys, false
	case sys.missing != "":
		if r.Missing == "" || r.ReqPerS != nil {
			t.Errorf("%s %s: a missing system must have a reason and no figures: %+v", r.Scenario, r.System, r)
		}
		return sys, false
	case r.Error != "" || r.ReqPerS == nil || r.LostUpdates == nil || r.P99ms == nil:
		t.Errorf("%s %s: no figures (error %q)", r.Scenario, r.System, r.Error)
		return sys, false
	}
	return sys, true
}

// TestMultiInstance runs both multi-instance scenarios, three servers of
// each Redis system: only those systems are measured, every request
// succeeds, and Steward loses no update across its instances.
func TestMultiInstance(t *testing.T) {
	rep, md := runSmall(t, "-requests", "40", "-scenarios", "multi-instance-hot,multi-instance-many")
	var want []string
	for _, sys := range systems {
		if sys.sharedStorage {
			want = append(want, sys.name)
		}
	}
	if len(rep.Records) != 2*len(want) {
		t.Fatalf("%d records, want %d (%v in both scenarios)", len(rep.Records), 2*len(want), want)
	}
	if rep.Instances != 3 || !strings.Contains(md, "3 servers of each system") {
		t.Errorf("the report does not say how many instances ran (%d)", rep.Instances)
	}
	for _, r := range rep.Records {
		if !slices.Contains(want, r.System) {
			t.Errorf("%s: %s measured, but it cannot share a storage", r.Scenario, r.System)
		}
		sys, ok := measured(t, r)
		if !ok {
			continue
		}
		if r.Errors != 0 {
			t.Errorf("%s %s: %d failed requests", r.Scenario, r.System, r.Errors)
		}
		wantIncr := int64(8 * 40)
		if r.Scenario == scenarioMultiHot {
			wantIncr++ // the request that made the shared session
		}
		if r.Increments != wantIncr {
			t.Errorf("%s %s: %d increments, want %d", r.Scenario, r.System, r.Increments, wantIncr)
		}
		if (sys.steward || r.Scenario == scenarioMultiMany) && *r.LostUpdates != 0 {
			t.Errorf("%s %s: lost %d updates", r.Scenario, r.System, *r.LostUpdates)
		}
	}
}

// TestRealistic runs the realistic scenario on every system with 1,000
// users: every request succeeds, Steward's server-side systems lose no
// update, and their engines report the actors they spawned.
func TestRealistic(t *testing.T) {
	rep, md := runSmall(t, "-requests", "50", "-scenarios", "realistic",
		"-realistic-users", "1000", "-realistic-new", "0.05", "-realistic-passivate", "50ms")
	if len(rep.Records) != len(systems) {
		t.Fatalf("%d records, want one per system (%d)", len(rep.Records), len(systems))
	}
	if rep.Realistic == nil || rep.Realistic.Users != 1000 || !strings.Contains(md, "1,000 users") {
		t.Errorf("the report does not describe the population: %+v", rep.Realistic)
	}
	for _, r := range rep.Records {
		sys, ok := measured(t, r)
		if !ok {
			continue
		}
		if r.Errors != 0 {
			t.Errorf("%s: %d failed requests", r.System, r.Errors)
		}
		if r.Requests != 8*50 {
			t.Errorf("%s: %d requests measured, want %d", r.System, r.Requests, 8*50)
		}
		// 10% of 400 requests are increments: far from none and from all.
		if r.Increments < 10 || r.Increments > 100 {
			t.Errorf("%s: %d increments acknowledged of 400 requests", r.System, r.Increments)
		}
		if r.Surplus != 0 {
			t.Errorf("%s: %d increments applied beyond those acknowledged", r.System, r.Surplus)
		}
		if !sys.steward || sys.clientSide {
			continue
		}
		if *r.LostUpdates != 0 {
			t.Errorf("%s: lost %d updates", r.System, *r.LostUpdates)
		}
		if r.Actors == nil || r.Actors.Spawned == 0 {
			t.Errorf("%s: the engine's counters were not reported: %+v", r.System, r.Actors)
		}
	}
}

// checkMarkdownTables checks that every table has a header, a delimiter
// row and rows of the same number of cells.
func checkMarkdownTables(t *testing.T, md string) {
	t.Helper()
	tables := 0
	cells := 0
	inTable := false
	for i, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			inTable = false
			continue
		}
		n := strings.Count(line, "|") - 1
		if !inTable {
			inTable, cells = true, n
			tables++
			continue
		}
		if n != cells {
			t.Errorf("markdown line %d has %d cells, its table %d:\n%s", i+1, n, cells, line)
		}
	}
	if tables < 2 {
		t.Errorf("%d markdown tables, want the results and the targets:\n%s", tables, md)
	}
}

// checkSVG checks that svg is well-formed XML with an <svg> root.
func checkSVG(t *testing.T, svg []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(svg))
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Fatalf("the SVG's root element is %q", root)
	}
}

// TestScaleSmall runs the scale measurements in process on small numbers.
func TestScaleSmall(t *testing.T) {
	mem, err := scaleMemory(2000)
	if err != nil {
		t.Fatal(err)
	}
	if mem.Sessions != 2000 {
		t.Errorf("memory: %d sessions", mem.Sessions)
	}
	act, err := scaleEngine(200, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if act.LiveActorsAfter == nil || *act.LiveActorsAfter != 0 {
		t.Errorf("actors: %v live after waiting for passivation, want 0", act.LiveActorsAfter)
	}
	if act.Passivated == 0 {
		t.Error("actors: none passivated")
	}

	junk, err := scaleJunk(300, 4)
	if err != nil {
		t.Fatal(err)
	}
	if junk.Requests != 300 || junk.Sessions != 0 {
		t.Errorf("junk-flood: %d requests made %d sessions, want 300 and none", junk.Requests, junk.Sessions)
	}
	checkFlood(t, "junk-flood", junk)

	// A bound of 16 live actors (one shard): creating 2,000 sessions one
	// after another must evict.
	fresh, err := scaleFresh(2000, 1, engine.Options{MaxLiveActors: 16, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Sessions != 2000 || fresh.Spawned != 2000 {
		t.Errorf("fresh-flood: %d sessions, %d actors spawned, want 2,000 of each", fresh.Sessions, fresh.Spawned)
	}
	checkFlood(t, "fresh-flood", fresh)
	if fresh.Evicted == nil || *fresh.Evicted == 0 {
		t.Errorf("fresh-flood: evicted %v past a bound of 16, want some", fresh.Evicted)
	}
}

// checkFlood checks the figures every flood reports.
func checkFlood(t *testing.T, name string, s scaleInfo) {
	t.Helper()
	if s.LiveActors == nil || s.LiveActorsPeak == nil || s.LiveActorsAtPeakRSS == nil || s.Evicted == nil {
		t.Fatalf("%s: actor figures missing: %+v", name, s)
	}
	if *s.LiveActorsPeak < *s.LiveActors {
		t.Errorf("%s: at most %d live actors, fewer than the %d at the end", name, *s.LiveActorsPeak, *s.LiveActors)
	}
	if s.RSSSamples < 2 {
		t.Errorf("%s: %d RSS samples, want the first and the last at least", name, s.RSSSamples)
	}
	if s.PeakRSSMB < s.RSSBaseMB || s.PeakRSSMB < s.RSSMB {
		t.Errorf("%s: peak RSS %.1f MB below the %.1f MB before or the %.1f MB after", name, s.PeakRSSMB, s.RSSBaseMB, s.RSSMB)
	}
	if _, err := os.Stat("/proc/self/statm"); err == nil && s.PeakRSSMB <= 0 {
		t.Errorf("%s: no peak RSS", name)
	}
}

// TestScaleScenario runs the scale scenario as -scale does, every
// measurement in a child process, at a small size, and checks that each
// one reports, that the scale targets are printed (as not measured at this
// size) and that the tables are well formed.
func TestScaleScenario(t *testing.T) {
	jsonPath := filepath.Join(t.TempDir(), "scale.json")
	var stdout, stderr bytes.Buffer
	code := run([]string{"-scenarios", "scale", "-scale-sessions", "3000", "-scale-actors", "300", "-scale-passivate", "20ms",
		"-scale-junk", "300", "-scale-fresh", "3000", "-json", jsonPath}, strings.NewReader(""), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
	}
	var rep report
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("the JSON does not parse: %v", err)
	}
	if len(rep.Records) != len(scaleKinds) {
		t.Fatalf("%d records, want one per scale measurement (%d)", len(rep.Records), len(scaleKinds))
	}
	for _, k := range scaleKinds {
		r := rep.find(scenarioScale, k.name)
		switch {
		case r == nil:
			t.Errorf("no record for %s", k.name)
		case k.missing != "":
			if r.Missing == "" {
				t.Errorf("%s: missing without a reason", k.name)
			}
		case r.Scale == nil || r.Error != "":
			t.Errorf("%s: no figures (error %q)", k.name, r.Error)
		}
	}
	if r := rep.find(scenarioScale, scaleJunkFlood); r != nil && r.Scale != nil {
		if r.Scale.Requests != 300 || r.Scale.Sessions != 0 {
			t.Errorf("junk-flood: %d requests made %d sessions, want 300 and none", r.Scale.Requests, r.Scale.Sessions)
		}
		checkFlood(t, "junk-flood", *r.Scale)
	}
	if r := rep.find(scenarioScale, scaleFreshFlood); r != nil && r.Scale != nil {
		if r.Scale.Sessions != 3000 {
			t.Errorf("fresh-flood: %d sessions, want 3,000", r.Scale.Sessions)
		}
		checkFlood(t, "fresh-flood", *r.Scale)
	}
	for _, goal := range []string{"in memory storage under 300 MB", "never-issued session IDs", "500,000 fresh sessions"} {
		found := false
		for _, tg := range rep.Targets {
			if strings.Contains(tg.Goal, goal) {
				found = true
				if !strings.HasPrefix(tg.Status, "not measured (") || tg.Met != nil {
					t.Errorf("target %q at a small size: status %q, met %v; want not measured", tg.Goal, tg.Status, tg.Met)
				}
			}
		}
		if !found {
			t.Errorf("no target about %q", goal)
		}
	}
	checkMarkdownTables(t, stdout.String())
	for _, k := range scaleKinds {
		if !strings.Contains(stdout.String(), "| "+k.name+" |") {
			t.Errorf("the scale table has no row for %s", k.name)
		}
	}
}

func TestHelpers(t *testing.T) {
	sorted := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct {
		p    float64
		want float64
	}{{0.5, 5}, {0.99, 10}, {0.1, 1}, {1, 10}} {
		if got := percentile(sorted, c.p); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median = %v", got)
	}
	if got := median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median = %v", got)
	}
	for _, c := range []struct {
		x    float64
		want string
	}{{0, "0"}, {999, "999"}, {1234, "1,234"}, {-1234567, "-1,234,567"}} {
		if got := thousands(c.x); got != c.want {
			t.Errorf("thousands(%v) = %q, want %q", c.x, got, c.want)
		}
	}
	seen := make(map[string]bool)
	for i := range 10000 {
		id := scaleID(i)
		if len(id) != 36 || seen[id] {
			t.Fatalf("scaleID(%d) = %q: wrong length or a duplicate", i, id)
		}
		seen[id] = true
	}
	if niceStep(7300) != 10000 || niceStep(1900) != 2000 || niceStep(2400) != 2500 {
		t.Error("niceStep")
	}
}
