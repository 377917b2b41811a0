// Package fakeclock is a clock for tests that moves only when told: pass its
// Now method where Steward takes a clock (engine.Options.Now,
// storage.MemoryOptions.Now, ...) and call Advance to make time pass
// without sleeping.
package fakeclock

import (
	"sync/atomic"
	"time"
)

// Clock is a fake clock, safe for concurrent use.
type Clock struct{ ns atomic.Int64 }

// New returns a Clock that reads start until advanced.
func New(start time.Time) *Clock {
	c := &Clock{}
	c.ns.Store(start.UnixNano())
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
