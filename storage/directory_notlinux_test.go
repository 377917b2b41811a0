//go:build !linux

package storage_test

import (
	"io/fs"
	"time"
)

// accessTime is unknown here: the tests that use it check less.
func accessTime(fs.FileInfo) time.Time { return time.Time{} }

// changeTime is unknown here: the tests that use it check less.
func changeTime(fs.FileInfo) time.Time { return time.Time{} }

// processCPU is unknown here: the benchmarks report wall time only.
func processCPU() time.Duration { return 0 }
