package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The realistic scenario: a population of users (100,000 by default) whose
// activity follows Zipf's law by rank, 90% reads, a stream of newcomers,
// and, on Steward's servers, a PassivateAfter short enough that the
// sessions of the less active users are passivated between their visits
// and loaded again when they come back.
//
// Every request draws a user rank from a Zipf distribution (math/rand/v2,
// s = -realistic-zipf, v = 1): with s = 1.1 over 100,000 users the most
// active user sends about 13% of the requests, the 20,000 most active ones
// about 92%. With probability -realistic-new the user at that rank is first
// replaced by a newcomer, who has no cookie (the user before leaves for
// good, and is read back at the end like the others): the stream of new
// sessions. Users also start without cookies, so a user's first visits
// make new sessions too. The request is then POST /increment with
// probability -realistic-writes, GET /count otherwise.
//
// A user is one jar (one cookie string) and a count of acknowledged
// increments. A user without a cookie has one request in flight at most (a
// draw that finds a newcomer's first request in flight draws again),
// because two concurrent first requests would make two sessions and the
// cookie of one would be lost, as with a browser. Once a user has a
// cookie, any number of connections may send its requests at once, as a
// user's browser tabs do.
//
// Lost updates: at the end every user who was acknowledged at least one
// increment, those who left included, reads its counter with its cookie
// (from the load client's connections, outside the measured window); the
// lost updates are the sum over the users of acknowledged increments minus
// the count read, where positive, and the surplus the sum where negative
// (an increment applied that the client saw fail). A system that sets no
// cookie at all (no-session) is read once, its one counter held against
// every acknowledged increment.

// realisticConfig shapes the realistic scenario's traffic.
type realisticConfig struct {
	users     int     // the population
	zipfS     float64 // Zipf exponent of the users' activity by rank, > 1
	writes    float64 // share of requests that are increments
	newcomers float64 // share of requests whose user is first replaced by a newcomer
	// passivateAfter is the PassivateAfter of Steward's servers.
	passivateAfter time.Duration
}

func (rc realisticConfig) check() error {
	switch {
	case rc.users < 1:
		return fmt.Errorf("-realistic-users %d: want at least one", rc.users)
	case !(rc.zipfS > 1):
		return fmt.Errorf("-realistic-zipf %g: want more than 1", rc.zipfS)
	case !(rc.writes >= 0 && rc.writes <= 1):
		return fmt.Errorf("-realistic-writes %g: want a share from 0 to 1", rc.writes)
	case !(rc.newcomers >= 0 && rc.newcomers <= 1):
		return fmt.Errorf("-realistic-new %g: want a share from 0 to 1", rc.newcomers)
	case rc.passivateAfter <= 0:
		return fmt.Errorf("-realistic-passivate %v: want a positive duration", rc.passivateAfter)
	}
	return nil
}

// A user's state: whether its jar holds a cookie, and whether its first
// request, which may make its session, is in flight.
const (
	userNew int32 = iota
	userFirst
	userKnown
)

// user is one member of the realistic population.
type user struct {
	jar   jar
	state atomic.Int32 // userNew, userFirst or userKnown
	acked atomic.Int64 // increments answered with 200
}

// population is the users by rank and those who left.
type population struct {
	ranks []atomic.Pointer[user]

	mu   sync.Mutex // protects gone
	gone []*user
}

func newPopulation(n int) *population {
	p := &population{ranks: make([]atomic.Pointer[user], n)}
	for i := range p.ranks {
		p.ranks[i].Store(&user{})
	}
	return p
}

// replace puts a newcomer at rank k and returns it.
func (p *population) replace(k uint64) *user {
	nu := &user{}
	old := p.ranks[k].Swap(nu)
	p.mu.Lock()
	p.gone = append(p.gone, old)
	p.mu.Unlock()
	return nu
}

// all returns every user, those who left included.
func (p *population) all() []*user {
	p.mu.Lock()
	us := make([]*user, 0, len(p.ranks)+len(p.gone))
	us = append(us, p.gone...)
	p.mu.Unlock()
	for i := range p.ranks {
		us = append(us, p.ranks[i].Load())
	}
	return us
}

// runRealistic runs the realistic scenario on the one server cfg.bases[0].
func runRealistic(ctx context.Context, c *client, cfg loadConfig) (loadResult, error) {
	var res loadResult
	rc := cfg.realistic
	pop := newPopulation(rc.users)
	base := cfg.bases[0]

	drive(ctx, cfg, func(i int) request {
		// Fixed seeds: each connection draws the same sequence every run.
		rng := rand.New(rand.NewPCG(0x5e55, uint64(i)))
		zipf := rand.NewZipf(rng, rc.zipfS, 1, uint64(rc.users-1))
		return func(ctx context.Context, buf *bytes.Buffer) (bool, error) {
			var u *user
			first := false
			for u == nil {
				k := zipf.Uint64()
				u = pop.ranks[k].Load()
				if rng.Float64() < rc.newcomers {
					u = pop.replace(k)
				}
				switch u.state.Load() {
				case userKnown:
				case userNew:
					if first = u.state.CompareAndSwap(userNew, userFirst); !first {
						u = nil
					}
				default: // its first request is in flight: draw again
					u = nil
				}
			}
			incr := rng.Float64() < rc.writes
			method, path := http.MethodGet, "/count"
			if incr {
				method, path = http.MethodPost, "/increment"
			}
			_, err := c.do(ctx, base, method, path, &u.jar, buf)
			if incr && err == nil {
				u.acked.Add(1)
			}
			if first {
				if u.jar.get() != "" {
					u.state.Store(userKnown)
				} else {
					u.state.Store(userNew) // a read, or a system without sessions
				}
			}
			return incr, err
		}
	}, &res)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, realisticCheck(ctx, c, cfg, base, pop.all(), &res)
}

// realisticCheck reads back the counter of every user who was
// acknowledged an increment, from cfg.connections goroutines, and sets
// res's increments, final, lost and surplus.
func realisticCheck(ctx context.Context, c *client, cfg loadConfig, base string, users []*user, res *loadResult) error {
	var acked, cookies []*user
	for _, u := range users {
		n := u.acked.Load()
		if n == 0 {
			continue
		}
		res.increments += n
		acked = append(acked, u)
		if u.jar.get() != "" {
			cookies = append(cookies, u)
		}
	}
	if len(acked) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if len(cookies) == 0 {
		// No session at all (no-session): the one global counter.
		v, err := c.do(ctx, base, http.MethodGet, "/count", &jar{}, &buf)
		if err != nil {
			return fmt.Errorf("reading the counter: %w", err)
		}
		res.final = v
		res.lost = res.increments - v
		return nil
	}
	finals := make([]int64, len(acked))
	work := make(chan int)
	errs := make(chan error, cfg.connections)
	var wg sync.WaitGroup
	for range cfg.connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for i := range work {
				u := acked[i]
				if u.jar.get() == "" {
					continue // acknowledged increments and no session to keep them: all lost
				}
				j := jar{cookie: u.jar.get()} // a copy: the read may renew it
				v, err := c.do(ctx, base, http.MethodGet, "/count", &j, &buf)
				if err != nil {
					errs <- fmt.Errorf("reading a user's counter back: %w", err)
					return
				}
				finals[i] = v
			}
		}()
	}
	var err error
feed:
	for i := range acked {
		select {
		case work <- i:
		case err = <-errs:
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err != nil {
		return err
	}
	select {
	case err := <-errs:
		return err
	default:
	}
	for i, u := range acked {
		res.final += finals[i]
		switch d := u.acked.Load() - finals[i]; {
		case d > 0:
			res.lost += d
		case d < 0:
			res.surplus -= d
		}
	}
	return nil
}
