package actors

import (
	"fmt"
	"reflect"
	"runtime"
)

// RunUpdate runs an update function, turning a panic into Panicked and an
// error into FnFailed. Every update function of the engine, server- or
// client-side, runs through it, which is what lets an operation tell that
// it was asked from inside one (see InUpdate).
//
//go:noinline
func RunUpdate(fn Updater, cur Value, exists bool) (next Value, write bool, st Status, err error) {
	defer func() {
		if r := recover(); r != nil {
			next, write, st, err = Value{}, false, Panicked, fmt.Errorf("%v", r)
		}
	}()
	if fn == nil {
		return Value{}, false, OK, nil
	}
	next, write, err = fn.Update(cur, exists)
	if err != nil {
		return Value{}, false, FnFailed, err
	}
	return next, write, OK, nil
}

var runUpdateEntry = reflect.ValueOf(RunUpdate).Pointer()

// InUpdate reports whether the calling goroutine is running an update
// function, by looking for RunUpdate on its stack. It costs a stack walk,
// so callers ask it only when a session they are about to wait for is
// inside its update function.
func InUpdate() bool {
	var pcs [64]uintptr
	for skip := 2; ; skip += len(pcs) {
		n := runtime.Callers(skip, pcs[:])
		for _, pc := range pcs[:n] {
			if f := runtime.FuncForPC(pc - 1); f != nil && f.Entry() == runUpdateEntry {
				return true
			}
		}
		if n < len(pcs) {
			return false
		}
	}
}
