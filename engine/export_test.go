package engine

// Flat exposes flat to the tests of package engine_test: whether the
// session actor may serve a type's values from the decoded memo.
var Flat = flat
