package storage

import (
	"testing"
	"time"
)

// BenchmarkDirectoryCheckFence measures the check that every write makes
// before it touches a file (write) and the one of the background check and
// of the sweeper (full); see checkFence.
func BenchmarkDirectoryCheckFence(b *testing.B) {
	d, err := NewDirectory(b.TempDir(), DirectoryOptions{SweepInterval: -1, CheckInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	for _, full := range []bool{false, true} {
		name := "write"
		if full {
			name = "full"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := d.checkFence(full); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(time.Microsecond), "µs/op")
		})
	}
}
