package redisstore_test

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/steward-sessions/steward/internal/redistest"
	"github.com/steward-sessions/steward/storage/redisstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newStore returns a Store on s configured by opts, closed when tb ends.
func newStore(tb testing.TB, s *redistest.Server, opts redisstore.Options) *redisstore.Store {
	tb.Helper()
	st, err := redisstore.New(context.Background(), s.URL(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}
