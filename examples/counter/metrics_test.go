package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/steward-sessions/steward/storage"
)

// exposition is one scrape of /metrics in Prometheus text format.
type exposition struct {
	samples map[string]float64 // by the sample's name and labels as printed
	types   map[string]string  // family name: its # TYPE
}

// scrape GETs url and reads its exposition; every sample and family must
// be prefixed steward_.
func scrape(t *testing.T, hc *http.Client, url string) exposition {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET %s: %d %q", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	e := exposition{samples: map[string]float64{}, types: map[string]string{}}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(f, " ")
			e.types[name] = typ
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("unreadable sample %q", line)
		}
		e.samples[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for s := range e.samples {
		if !strings.HasPrefix(s, "steward_") {
			t.Errorf("a series without the steward_ prefix: %s", s)
		}
	}
	for f := range e.types {
		if !strings.HasPrefix(f, "steward_") {
			t.Errorf("a family without the steward_ prefix: %s", f)
		}
	}
	return e
}

// sum adds the samples of family name (labels included) that carry every
// label of match (`op="update"`, ...).
func (e exposition) sum(name string, match ...string) float64 {
	total := 0.0
	for s, v := range e.samples {
		if s != name && !strings.HasPrefix(s, name+"{") {
			continue
		}
		if !all(match, func(m string) bool { return strings.Contains(s, m) }) {
			continue
		}
		total += v
	}
	return total
}

// labels returns the label names of family name's first sample (of its
// _count, for a histogram), sorted.
func (e exposition) labels(name string) []string {
	if e.types[name] == "histogram" {
		name += "_count"
	}
	for s := range e.samples {
		rest, ok := strings.CutPrefix(s, name)
		if !ok || (rest != "" && rest[0] != '{') {
			continue
		}
		var out []string
		for _, kv := range strings.Split(strings.Trim(rest, "{}"), ",") {
			if k, _, ok := strings.Cut(kv, "="); ok {
				out = append(out, k)
			}
		}
		slices.Sort(out)
		return out
	}
	return nil
}

func all(xs []string, f func(string) bool) bool {
	for _, x := range xs {
		if !f(x) {
			return false
		}
	}
	return true
}

// TestMetricsCommand builds the counter and runs it with -metrics on its
// default storage, the cached directory: it prints where /metrics is,
// beside the other endpoints on the address it prints first, and the
// operations counter there grows by exactly the number of requests made,
// each counted under its op and outcome.
func TestMetricsCommand(t *testing.T) {
	bin := counterBinary(t)
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-metrics", "-dir", filepath.Join(t.TempDir(), "sessions"))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, secretEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	rd := bufio.NewReader(stdout)
	first, err1 := rd.ReadString('\n')
	second, err2 := rd.ReadString('\n')
	url, ok := strings.CutPrefix(strings.TrimSpace(first), "listening on ")
	if err1 != nil || err2 != nil || !ok || strings.TrimSpace(second) != "metrics on "+url+"/metrics" {
		t.Fatalf("printed %q, %q (%v, %v)", first, second, err1, err2)
	}
	metricsURL := strings.TrimPrefix(strings.TrimSpace(second), "metrics on ")

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	before := scrape(t, hc, metricsURL)
	requests := []struct {
		method, path string
		status       int
	}{
		{"GET", "/", 200},           // get no_session
		{"POST", "/increment", 200}, // update ok, three times
		{"POST", "/increment", 200},
		{"POST", "/increment", 200},
		{"GET", "/", 200}, // get ok, three times
		{"GET", "/", 200},
		{"GET", "/", 200},
		{"POST", "/logout", 204},    // clear ok
		{"POST", "/increment", 200}, // update ok: a new session
	}
	for _, r := range requests {
		req, _ := http.NewRequest(r.method, url+r.path, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != r.status {
			t.Fatalf("%s %s = %d, want %d", r.method, r.path, resp.StatusCode, r.status)
		}
	}
	after := scrape(t, hc, metricsURL)
	// Each of these requests makes one operation.
	if grew := after.sum("steward_operations_total") - before.sum("steward_operations_total"); grew != float64(len(requests)) {
		t.Fatalf("steward_operations_total grew by %v over %d requests", grew, len(requests))
	}
	for _, c := range []struct {
		match []string
		want  float64
	}{
		{[]string{`op="update"`, `outcome="ok"`}, 4},
		{[]string{`op="get"`, `outcome="ok"`}, 3},
		{[]string{`op="get"`, `outcome="no_session"`}, 1},
		{[]string{`op="clear"`, `outcome="ok"`}, 1},
	} {
		match := append([]string{`kind="SESSION_ID"`}, c.match...)
		if got := after.sum("steward_operations_total", match...); got != c.want {
			t.Errorf("steward_operations_total%v = %v, want %v", c.match, got, c.want)
		}
	}
	if n := after.sum("steward_operation_duration_seconds_count"); n != float64(len(requests)) {
		t.Errorf("steward_operation_duration_seconds_count = %v, want %d", n, len(requests))
	}
	for _, f := range []string{"steward_storage_duration_seconds", "steward_actors_live", "steward_cache_hits_total", "steward_cache_misses_total", "steward_cache_entries"} {
		if _, ok := after.types[f]; !ok {
			t.Errorf("no %s in /metrics", f)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

// flaky is a Versioned storage that can be made to fail, or to refuse the
// next conditional writes as if another instance had written first.
type flaky struct {
	mu        sync.Mutex
	data      map[string][]byte
	versions  map[string]uint64
	next      uint64
	down      atomic.Bool
	conflicts atomic.Int32 // conditional writes still to refuse
}

func newFlaky() *flaky { return &flaky{data: map[string][]byte{}, versions: map[string]uint64{}} }

func (f *flaky) LoadVersioned(_ context.Context, id string) ([]byte, uint64, error) {
	if f.down.Load() {
		return nil, 0, errDown
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.data[id]
	if !ok {
		return nil, 0, storage.ErrNotFound
	}
	return d, f.versions[id], nil
}

func (f *flaky) SaveIf(_ context.Context, id string, data []byte, exp time.Time, version uint64) (uint64, []byte, uint64, error) {
	if f.down.Load() {
		return 0, nil, 0, errDown
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.versions[id] != version || f.conflicts.Add(-1) >= 0 {
		return 0, f.data[id], f.versions[id], fmt.Errorf("%w: %s", storage.ErrConflict, id)
	}
	if !exp.IsZero() && !exp.After(time.Now()) {
		delete(f.data, id)
		delete(f.versions, id)
		return 0, nil, 0, nil
	}
	f.next++
	f.data[id], f.versions[id] = data, f.next
	return f.next, nil, 0, nil
}

func (f *flaky) Load(ctx context.Context, id string) ([]byte, error) {
	d, _, err := f.LoadVersioned(ctx, id)
	return d, err
}

func (f *flaky) Save(_ context.Context, id string, data []byte, _ time.Time) error {
	if f.down.Load() {
		return errDown
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	f.data[id], f.versions[id] = data, f.next
	return nil
}

func (f *flaky) Delete(_ context.Context, id string) error {
	if f.down.Load() {
		return errDown
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.data, id)
	delete(f.versions, id)
	return nil
}

// TestMetricsNames pins how the counter's /metrics renders every
// instrument of the engine (the README's table): the family names the
// Prometheus exporter makes of them, their types and their labels, and no
// series but the engine's. A cached, versioned storage that conflicts once
// and fails once gives every instrument a series.
func TestMetricsNames(t *testing.T) {
	store := newFlaky()
	ts := newTestServer(t, config{Metrics: true, store: storage.NewCache(storage.FromBytes(store), storage.CacheOptions{})})
	c := ts.client(false)
	if status, n, _ := c.do("POST", "/increment"); status != 200 || n != 1 {
		t.Fatalf("increment: %d %d", status, n)
	}
	store.conflicts.Store(1)
	if status, n, _ := c.do("POST", "/increment"); status != 200 || n != 2 {
		t.Fatalf("increment after a conflict: %d %d", status, n)
	}
	store.down.Store(true)
	if status, _, _ := c.do("POST", "/increment"); status != http.StatusServiceUnavailable {
		t.Fatalf("increment with the storage down: %d", status)
	}
	store.down.Store(false)

	e := scrape(t, &http.Client{Timeout: 10 * time.Second}, ts.srv.URL+"/metrics")
	want := map[string]struct {
		typ    string
		labels []string
	}{
		"steward_operations_total":           {"counter", []string{"kind", "op", "outcome"}},
		"steward_operation_duration_seconds": {"histogram", []string{"kind", "op"}},
		"steward_storage_duration_seconds":   {"histogram", []string{"call", "kind"}},
		"steward_storage_errors_total":       {"counter", []string{"call", "kind"}},
		"steward_storage_conflicts_total":    {"counter", []string{"kind"}},
		"steward_actors_live":                {"gauge", nil},
		"steward_actors_spawned_total":       {"counter", nil},
		"steward_passivations_total":         {"counter", nil},
		"steward_evictions_total":            {"counter", nil},
		"steward_cache_hits_total":           {"counter", []string{"kind"}},
		"steward_cache_misses_total":         {"counter", []string{"kind"}},
		"steward_cache_entries":              {"gauge", []string{"kind"}},
	}
	for name, w := range want {
		if typ, ok := e.types[name]; !ok || typ != w.typ {
			t.Errorf("%s: type %q, want %q", name, typ, w.typ)
			continue
		}
		if got := e.labels(name); !slices.Equal(got, w.labels) {
			t.Errorf("%s: labels %q, want %q", name, got, w.labels)
		}
	}
	for name := range e.types {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected family %s", name)
		}
	}
	for _, c := range []struct {
		name  string
		match []string
		want  float64
	}{
		{"steward_storage_conflicts_total", nil, 1},
		{"steward_storage_errors_total", []string{`call="save"`}, 1},
		{"steward_operations_total", []string{`op="update"`, `outcome="ok"`}, 2},
		{"steward_operations_total", []string{`op="update"`, `outcome="storage_error"`}, 1},
	} {
		if got := e.sum(c.name, c.match...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.match, got, c.want)
		}
	}
	// The scrape itself is not an application request.
	resp, err := http.Post(ts.srv.URL+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /metrics: %d, want 404", resp.StatusCode)
	}
}

// TestNoMetricsEndpoint: without -metrics there is no /metrics.
func TestNoMetricsEndpoint(t *testing.T) {
	ts := newTestServer(t, config{})
	if status, _, _ := ts.client(false).do("GET", "/metrics"); status != http.StatusNotFound {
		t.Fatalf("GET /metrics without -metrics: %d", status)
	}
}
