package actors

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/steward-sessions/steward/internal/record"
	"github.com/steward-sessions/steward/storage"
)

// batchOp is one update of a group commit and what it will be told.
type batchOp struct {
	op   *Op
	res  Result // its answer, sent once the batch's write landed
	done bool   // answered or handed on already
}

// handleBatch applies several update operations of this session that
// were waiting in its mailbox, in order, with one storage write: each
// update function sees its predecessor's result, and every operation is
// answered once the write landed. A write that fails fails every operation
// of the batch; a conflict with another instance runs every function
// again on the newer value, like a single update's.
func (sa *sessionActor) handleBatch(c actor.Context, ops []*Op) {
	b := sa.batch[:0]
	for _, op := range ops {
		if sa.begin(op) { // an abandoned one is dropped, never applied
			b = append(b, batchOp{op: op})
		}
	}
	sa.batch = b
	sa.safelyBatch(func() { sa.updateBatch(b) })
	clear(b)
	// Every operation taken was counted as pending; afterOp settles the
	// last of them.
	sa.entry.pending.Add(-int32(len(ops) - 1))
	sa.afterOp(c)
}

// safelyBatch is safely for a batch: a panic (a bug: update functions'
// panics are answered by RunUpdate) answers each operation not yet
// answered.
func (sa *sessionActor) safelyBatch(f func()) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		sa.entry.inFn.Store(false)
		sa.sys.log.Error("engine: panic in a session actor", "kind", sa.kind.Name, "panic", r)
		sa.forget()
		sa.loaded = false
		sa.answerBatch(func(*batchOp) Result { return Result{Status: Panicked, Err: fmt.Errorf("%v", r)} })
	}()
	f()
}

// answerBatch answers every operation of the batch not yet answered with
// what res makes of it.
func (sa *sessionActor) answerBatch(res func(*batchOp) Result) {
	for i := range sa.batch {
		if bo := &sa.batch[i]; !bo.done {
			bo.done = true
			bo.op.reply <- res(bo)
		}
	}
}

// forwardBatch hands every operation not yet answered to the ID this
// session was renewed to.
func (sa *sessionActor) forwardBatch() {
	for i := range sa.batch {
		if bo := &sa.batch[i]; !bo.done {
			bo.done = true
			sa.forward(bo.op)
		}
	}
}

// batchWaiting reports whether an operation of the batch is not yet
// answered.
func (sa *sessionActor) batchWaiting() bool {
	for i := range sa.batch {
		if !sa.batch[i].done {
			return true
		}
	}
	return false
}

func (sa *sessionActor) failBatch(err error) {
	sa.answerBatch(func(*batchOp) Result { return Result{Status: StorageFailed, Err: err} })
}

func (sa *sessionActor) updateBatch(b []batchOp) {
	if len(b) == 0 {
		return
	}
	// The storage call runs to its end whatever the context (see
	// storageReq.do): the first operation's carries the request's values.
	ctx := b[0].op.ctx
	now := sa.sys.now().UnixNano()
	if sa.kind.versioned != nil && record.Expired(sa.expires, now) {
		sa.loaded = false // another instance may have kept it alive
	}
	if !sa.loaded {
		if b[0].op.Fresh {
			sa.loaded = true
		} else if err := sa.load(ctx); err != nil {
			sa.failBatch(err)
			return
		}
	}
	sa.expire(ctx, now)
	if sa.aliased {
		sa.forwardBatch()
		return
	}
	reread := false // a Versioned storage was read for this batch
	for attempt := 1; ; attempt++ {
		cur, created, writes := sa.run(b, now)
		if writes == 0 {
			if sa.kind.versioned != nil && !reread && sa.batchWaiting() {
				// Nothing written means nothing checked the version: the
				// answers must not come from a copy another instance has
				// overwritten. Read anew and run the functions again.
				reread = true
				if err := sa.load(ctx); err != nil {
					sa.failBatch(err)
					return
				}
				sa.expire(ctx, now)
				if sa.aliased {
					sa.forwardBatch()
					return
				}
				continue
			}
			if sa.exists && cur.Memo != nil {
				sa.val.Memo = cur.Memo // what a function made of the current bytes
			}
			refreshed := sa.touch(ctx, now)
			sa.answerBatch(func(bo *batchOp) Result {
				bo.res.Refreshed = bo.res.Found && refreshed
				return bo.res
			})
			return
		}
		exp := sa.policy().Expiry(created, now)
		rec := sa.encode(created, exp, cur.Data)
		err := sa.writeOwn(ctx, rec, exp)
		if errors.Is(err, storage.ErrConflict) {
			// Another instance wrote first; its value is adopted and every
			// function runs again on it. Until the next write the callers
			// may still abandon their updates.
			for i := range b {
				if !b[i].done {
					b[i].op.state.CompareAndSwap(opCommitting, opStarted)
				}
			}
			sa.expire(ctx, now)
			switch {
			case sa.aliased:
				sa.forwardBatch() // renewed meanwhile
				return
			case attempt >= maxConflicts:
				sa.answerBatch(func(*batchOp) Result {
					return Result{Status: Conflict, Err: fmt.Errorf("%d attempts", attempt)}
				})
				return
			}
			if err := sa.backOff(ctx, attempt, now); err != nil {
				sa.failBatch(err)
				return
			}
			if sa.aliased {
				sa.forwardBatch()
				return
			}
			continue
		}
		if err != nil {
			sa.loaded = false // the write may have landed or not: read again
			st := writeFailure(err)
			sa.answerBatch(func(*batchOp) Result { return Result{Status: st, Err: err} })
			return
		}
		created0 := !sa.exists
		refreshed := !sa.exists || exp-sa.stored >= int64(sa.touchEvery())
		cur.Data = payloadOf(rec, cur.Data) // one copy of the bytes, shared with the record
		sa.exists, sa.val, sa.rec, sa.created, sa.expires, sa.stored = true, cur, rec, created, exp, exp
		if created0 {
			sa.emit(EventCreated, now)
		}
		sa.answerBatch(func(bo *batchOp) Result {
			bo.res.Refreshed = bo.res.Found && refreshed
			return bo.res
		})
		return
	}
}

// run runs the batch's update functions in order on the value held, each
// on its predecessor's result, and returns the value that results, whether
// its creation time and how many functions wrote. Each
// operation's answer is kept in its res; an operation whose caller left
// before its function's result was committed to is dropped.
func (sa *sessionActor) run(b []batchOp, now int64) (cur Value, created int64, writes int) {
	cur, exists, created := sa.val, sa.exists, sa.created
	if !exists {
		cur = Value{}
	}
	for i := range b {
		bo := &b[i]
		if bo.done {
			continue
		}
		op := bo.op
		if !exists && op.MustExist {
			bo.res = Result{}
			continue
		}
		sa.entry.inFn.Store(true)
		next, write, st, err := RunUpdate(op.Fn, cur, exists)
		sa.entry.inFn.Store(false)
		if write && exists && bytes.Equal(next.Data, cur.Data) {
			write = false // the same bytes: nothing to write
		}
		switch {
		case st != OK:
			bo.res = Result{Status: st, Err: err}
		case !write:
			if exists && next.Memo != nil {
				cur.Memo = next.Memo
			}
			bo.res = Result{Value: cur, Found: exists}
		case !sa.commit(op):
			bo.done = true // abandoned: answered, never applied
		default:
			if !exists {
				created = now
			}
			cur, exists = next, true
			bo.res = Result{Value: next, Found: true}
			writes++
		}
	}
	return cur, created, writes
}
