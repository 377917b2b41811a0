package actors

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-sessions/steward/internal/record"
	"github.com/steward-sessions/steward/storage"
	"go.uber.org/goleak"
)

// TestPanicOutsideFnAnswered: a panic in the session actor outside the
// update function (here the kind's NewID during Renew; uuid.New panics, and
// users write NewID with it) is answered with ErrPanic. Left to protoactor's
// supervision, it restarted the actor and lost the operation: its caller
// waited forever and Close could never complete.
func TestPanicOutsideFnAnswered(t *testing.T) {
	sys := newTestSystem(t, Config{})
	var calls atomic.Int32
	k := &Kind{Name: "S", Storage: storage.NewMemory(storage.MemoryOptions{}), Grace: time.Minute,
		NewID: func() (string, error) {
			if calls.Add(1) > 0 {
				panic("entropy source failed")
			}
			return "", nil
		}}
	sys.AddKind(k)
	ctx := context.Background()
	res := sys.Do(ctx, k, record.DigestOf("abc"), &Op{Code: OpUpdate, Fresh: true, Fn: setTo("v")})
	if res.Status != OK {
		t.Fatal(res.Status, res.Err)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res = sys.Do(rctx, k, record.DigestOf("abc"), &Op{Code: OpRenew})
	t.Logf("Renew: %+v", res)
	cctx, cancel2 := context.WithTimeout(ctx, 10*time.Second)
	defer cancel2()
	err := sys.Close(cctx)
	if res.Status != Panicked || err != nil {
		t.Fatalf("Renew answered %v instead of an error wrapping the panic; Close: %v", res.Err, err)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
