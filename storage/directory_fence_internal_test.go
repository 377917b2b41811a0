package storage

import (
	"testing"
	"time"
)

// BenchmarkDirectoryCheckFence measures the check that every write makes
// before it touches a file (see checkFence).
func BenchmarkDirectoryCheckFence(b *testing.B) {
	d, err := NewDirectory(b.TempDir(), DirectoryOptions{SweepInterval: -1, CheckInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	b.ReportAllocs()
	for b.Loop() {
		if err := d.checkFence(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(time.Microsecond), "µs/op")
}
