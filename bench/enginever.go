package main

import "github.com/steward-sessions/steward/engine"

// The only lines of the bench that name the engine's live-actor bound, so
// that the scale measurements can be run against an engine from before it
// by replacing this file (its functions then report no bound).

// defaultMaxLive is the engine's default bound on live session actors.
func defaultMaxLive() int { return engine.DefaultMaxLiveActors }

// withMaxLive returns o with its bound on live session actors set to n.
func withMaxLive(o engine.Options, n int) engine.Options {
	o.MaxLiveActors = n
	return o
}

// maxLiveOf returns o's bound on live session actors (0: the default).
func maxLiveOf(o engine.Options) int { return o.MaxLiveActors }

// evictedOf returns the actors passivated early because the bound was
// reached; nil where the engine does not count them.
func evictedOf(s engine.Stats) *int64 { return &s.Evicted }
