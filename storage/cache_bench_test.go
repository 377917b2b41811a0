package storage_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/steward-sessions/steward/storage"
)

// BenchmarkCachedDirectory is BenchmarkDirectory's Save and Load through
// the 60-second cache: a write still goes to the disk, a read of a recent
// session does not.
func BenchmarkCachedDirectory(b *testing.B) {
	c, err := storage.NewCachedDirectory(b.TempDir(), storage.DirectoryOptions{SweepInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	ctx := context.Background()
	ids := make([]string, 4096)
	value := make([]byte, 120)
	for i := range ids {
		ids[i] = "session-" + strconv.Itoa(i)
		if err := c.Save(ctx, ids[i], value, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Save", func(b *testing.B) {
		b.SetParallelism(8) // 16 goroutines on 2 cores
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if err := c.Save(ctx, ids[i%len(ids)], value, time.Time{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("Load", func(b *testing.B) {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if _, err := c.Load(ctx, ids[i%len(ids)]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
