package storage

import (
	"testing"
	"time"
)

func TestSweepRest(t *testing.T) {
	const interval = 10 * time.Second
	for _, c := range []struct {
		name    string
		res     sweepResult
		took    time.Duration
		rest    time.Duration
		backlog bool
	}{
		{"end of the round", sweepResult{removed: 1000, examined: 1000}, time.Second, interval, false},
		{"backlog", sweepResult{removed: 1000, examined: 1000, more: true}, 40 * time.Millisecond, 40 * time.Millisecond, true},
		{"backlog, one in eight", sweepResult{removed: 125, examined: 1000, more: true}, 40 * time.Millisecond, 40 * time.Millisecond, true},
		{"backlog, quick pass", sweepResult{removed: 1000, examined: 1000, more: true}, 0, sweepMinPause, true},
		{"backlog, slow pass", sweepResult{removed: 1000, examined: 1000, more: true}, time.Minute, interval, true},
		{"live files", sweepResult{removed: 124, examined: 1000, more: true}, 10 * time.Millisecond, 190 * time.Millisecond, false},
		{"only directories", sweepResult{more: true}, 10 * time.Millisecond, 190 * time.Millisecond, false},
		{"live files, quick pass", sweepResult{examined: 1000, more: true}, 0, sweepMinPause, false},
	} {
		rest, backlog := sweepRest(c.res, c.took, interval)
		if rest != c.rest || backlog != c.backlog {
			t.Errorf("%s: sweepRest(%+v, %v) = %v, %v; want %v, %v", c.name, c.res, c.took, rest, backlog, c.rest, c.backlog)
		}
	}
	// An interval shorter than the shortest rest wins.
	if rest, _ := sweepRest(sweepResult{removed: 1, examined: 1, more: true}, 0, time.Millisecond); rest != time.Millisecond {
		t.Errorf("with an interval of 1ms, a rest of %v", rest)
	}
}
