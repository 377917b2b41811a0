package main

import "time"

// Scenario names.
const (
	scenarioMany      = "many-sessions"
	scenarioHot       = "hot-session"
	scenarioMultiHot  = "multi-instance-hot"
	scenarioMultiMany = "multi-instance-many"
	scenarioRealistic = "realistic"
	scenarioScale     = "scale"
)

// allScenarios lists the scenarios in the order they run and appear.
var allScenarios = []string{scenarioMany, scenarioHot, scenarioMultiHot, scenarioMultiMany, scenarioRealistic, scenarioScale}

// defaultScenarios are the scenarios of a run without -scenarios: every
// HTTP scenario (scale is added by -scale).
var defaultScenarios = []string{scenarioMany, scenarioHot, scenarioMultiHot, scenarioMultiMany, scenarioRealistic}

// A loadShape is how the load client's connections use sessions.
type loadShape int

const (
	// perConnection: each connection has its own session.
	perConnection loadShape = iota
	// sharedSession: every connection shares one session, made first.
	sharedSession
	// manyUsers: the realistic scenario's population (see realistic.go).
	manyUsers
)

// shape returns how scenario sc drives its servers.
func shape(sc string) loadShape {
	switch sc {
	case scenarioHot, scenarioMultiHot:
		return sharedSession
	case scenarioRealistic:
		return manyUsers
	}
	return perConnection
}

// multiInstance reports whether scenario sc runs several servers of one
// system over one storage.
func multiInstance(sc string) bool { return sc == scenarioMultiHot || sc == scenarioMultiMany }

// applies reports whether scenario sc measures sys: the multi-instance
// scenarios need a storage that several servers can share.
func applies(sc string, sys system) bool {
	return !multiInstance(sc) || sys.sharedStorage
}

// instances is how many servers a run of scenario sc starts.
func (o options) instances(sc string) int {
	if multiInstance(sc) {
		return o.multiInstances
	}
	return 1
}

// passivateFor is the PassivateAfter a run of scenario sc gives Steward's
// servers, zero for the engine's default.
func (o options) passivateFor(sc string) time.Duration {
	if sc == scenarioRealistic {
		return o.realistic.passivateAfter
	}
	return 0
}
