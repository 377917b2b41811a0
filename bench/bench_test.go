package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	code := run([]string{"-rounds", "1", "-connections", "8", "-requests", "40",
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
