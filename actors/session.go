package actors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/steward-sessions/steward/internal/record"
	"github.com/steward-sessions/steward/storage"
)

// maxConflicts bounds how often an update is re-run after conflicting
// with another engine instance's write. Three instances hammering one
// session on Redis lost 32 conflicts in a row for a few updates in ten
// runs (more with local reads, whose reads take a barrier round trip):
// 128 attempts, most of them after a back-off of up to 2 ms, take under a
// quarter of a second at worst.
const maxConflicts = 128

// conflictBackoff is how long an update waits before its attempt-th retry:
// a random part of a window that doubles from 10µs up to 2ms, so that
// instances racing for one session fall out of step.
func conflictBackoff(attempt int) time.Duration {
	window := min(10*time.Microsecond<<min(attempt, 16), 2*time.Millisecond)
	return rand.N(window)
}

// backOff prepares the attempt+1-th run of a conflicting update. The
// conflict answer carried the current value, so the first retries go at
// once, with a copy as fresh as a new read; later ones wait a random while,
// so that instances racing for one session fall out of step, and then read
// the session anew (a copy adopted before the wait would be stale by the
// time it is written). It returns the storage's error if that read failed.
func (sa *sessionActor) backOff(ctx context.Context, attempt int, now int64) error {
	if attempt < 3 {
		return nil
	}
	time.Sleep(conflictBackoff(attempt))
	if err := sa.load(ctx); err != nil {
		return err
	}
	sa.expire(ctx, now)
	return nil
}

// maxBatch bounds the update operations of one session applied with one
// storage write (group commit), so that a batch's first caller waits for a
// bounded number of update functions.
const maxBatch = 64

// maxHops bounds how many renewed IDs an operation follows: one hop per
// renewal made within the grace period of the ID the client holds.
const maxHops = 32

// passivate asks a session actor to flush and stop if nothing else is on
// its way to it. final: the System is closing.
type passivate struct{ final bool }

// sessionActor owns one session ID of one kind: every operation of that ID
// runs here, one at a time, which is what makes read-modify-write atomic.
type sessionActor struct {
	sys          *System
	kind         *Kind
	d            record.Digest // the session's identity
	id           string        // its name at rest: d.StorageID()
	shard        *shard
	entry        *entry
	storageReply chan storageResult // reused: one storage call at a time
	req          storageReq         // reused likewise
	mb           *fairMailbox       // its mailbox, for group commit
	ops          []*Op              // reused by group commit
	batch        []batchOp          // likewise

	loaded  bool           // the stored state has been read
	exists  bool           // a live value is held
	aliased bool           // renewed: operations forward to alias
	alias   record.Digest  // the session it was renewed to
	renewed int64          // when it was renewed, Unix ns
	created int64          // Unix ns
	expires int64          // Unix ns, 0 for none: the exact sliding expiry
	stored  int64          // the expiry last written to the storage
	val     Value          // the value, when exists; val.Data is rec's payload
	rec     []byte         // the record last written or read, when exists
	version uint64         // the stored version (Versioned storages), 0 for none
	owner   string         // who the session belongs to, "" for nobody
	own     *record.Policy // the session's own expiry policy, nil for its kind's

	// finalPending says Close asked the actor to stop while operations
	// were still on their way: it stops after the last one.
	finalPending bool
	// handedOn says the current operation was answered or forwarded.
	handedOn bool
	// collecting makes finish record the operation it answers and its
	// answer in answered and answer, for handleGets.
	collecting bool
	answered   *Op
	answer     Result
}

// Receive implements actor.Actor.
func (sa *sessionActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *Op:
		if m.Code == OpUpdate && !sa.kind.inline && sa.mb != nil {
			// Updates waiting behind this one are applied with it, with one
			// storage write. (A storage that never blocks gains nothing from
			// it, and its callers run their own operations.)
			if ops := sa.mb.takeUpdates(append(sa.ops[:0], m), maxBatch); len(ops) > 1 {
				sa.handleBatch(c, ops)
				clear(ops)
				sa.ops = ops[:0]
				return
			}
		}
		if m.Code == OpGet && sa.kind.versioned != nil && sa.mb != nil {
			// Reads waiting behind this one share its read of the storage.
			if ops := sa.mb.take(append(sa.ops[:0], m), maxBatch, OpGet); len(ops) > 1 {
				sa.handleGets(c, ops)
				clear(ops)
				sa.ops = ops[:0]
				return
			}
		}
		sa.handedOn = false
		sa.safely(m, func() { sa.handle(m) })
		sa.afterOp(c)
	case passivate:
		sa.passivate(c, m.final)
	case *actor.Stopped:
		sa.sys.live.Add(-1)
		sa.sys.sessionsWG.Done()
	}
}

func (sa *sessionActor) finish(op *Op, res Result) {
	sa.handedOn = true
	if sa.own != nil && res.Found && res.Status == OK && sa.exists {
		// The transport carries a session's own expiry to the client.
		res.Own, res.Expires = true, sa.expires
	}
	if sa.collecting {
		sa.answered, sa.answer = op, res
	}
	op.reply <- res
}

// handleGets answers several reads of this session that were waiting in
// its mailbox (a Versioned storage, whose reads each go to the storage)
// with one read: the first is handled as usual, and its answer, read from
// the storage after every one of them was queued, is as fresh for each of
// them as a read of its own. Should the first not be answered by a read
// (abandoned, forwarded to a renewed ID, failed), the next is handled on
// its own, and so on.
func (sa *sessionActor) handleGets(c actor.Context, ops []*Op) {
	var shared *Result
	sa.collecting = true
	for _, op := range ops {
		sa.handedOn = false
		if shared != nil {
			if sa.begin(op) { // an abandoned one is answered Canceled
				sa.finish(op, *shared)
			}
			continue
		}
		sa.answered = nil
		sa.safely(op, func() { sa.handle(op) })
		if sa.answered == op && sa.answer.Status == OK {
			res := sa.answer
			shared = &res
		}
	}
	sa.collecting, sa.answered, sa.answer = false, nil, Result{}
	// Every operation taken was counted as pending; afterOp settles the
	// last of them.
	sa.entry.pending.Add(-int32(len(ops) - 1))
	sa.afterOp(c)
}

func (sa *sessionActor) failStorage(op *Op, err error) {
	sa.finish(op, Result{Status: StorageFailed, Err: err})
}

// failWrite answers op, whose write (or delete) failed with err: with
// MaybeApplied if the storage may have applied it (see mayHaveLanded).
func (sa *sessionActor) failWrite(op *Op, err error) {
	sa.finish(op, Result{Status: writeFailure(err), Err: err})
}

// writeFailure is the status of an operation whose write failed with err.
func writeFailure(err error) Status {
	if mayHaveLanded(err) {
		return MaybeApplied
	}
	return StorageFailed
}

// mayHaveLanded reports whether a write that failed with err may have been
// applied all the same: the storage did not answer (storage.ErrUnavailable)
// after the call was made. A call the engine refused to make while the
// storage was down was not.
func mayHaveLanded(err error) bool {
	return errors.Is(err, storage.ErrUnavailable) && !errors.Is(err, errFailedFast)
}

// safely runs f, turning a panic (from user code such as an ID generator,
// or a bug) into a Panicked answer for op instead of losing op and
// restarting the actor. The actor reads its state from the storage again.
func (sa *sessionActor) safely(op *Op, f func()) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		sa.entry.inFn.Store(false)
		sa.sys.log.Error("engine: panic in a session actor", "kind", sa.kind.Name, "panic", r)
		sa.forget()
		sa.loaded = false
		if op != nil && !sa.handedOn {
			sa.finish(op, Result{Status: Panicked, Err: fmt.Errorf("%v", r)})
		}
	}()
	f()
}

// afterOp ends the handling of an operation. An actor that holds no
// session (the ID was unknown, expired or invalidated), or that Close
// asked to stop, leaves the registry at once if nothing else is on its way:
// a flood of unknown IDs costs no lasting actor.
func (sa *sessionActor) afterOp(c actor.Context) {
	e := sa.entry
	if !sa.finalPending && (sa.exists || sa.aliased) {
		sa.publishInline()
		e.pending.Add(-1)
		return
	}
	e.inlineUntil.Store(0)
	if sa.finalPending {
		sa.safely(nil, func() { _ = sa.flush(context.Background()) })
	}
	sh := sa.shard
	sh.mu.Lock()
	if e.pending.Load() != 1 {
		e.pending.Add(-1)
		sh.mu.Unlock()
		return
	}
	sh.removeLocked(e)
	e.pending.Add(-1)
	sh.mu.Unlock()
	c.Stop(c.Self())
}

// publishInline tells the mailbox until when a read of this session needs
// no storage call (kinds whose storage may block; see entry.inlineUntil):
// while the value is loaded, is not re-read for every operation (not
// Versioned), has not expired, and its sliding expiry needs no refresh
// (touch writes once it moved by the kind's touch interval: at
// stored-Idle+touch at the earliest).
func (sa *sessionActor) publishInline() {
	k := sa.kind
	if k.inline || k.versioned != nil || !sa.loaded || !sa.exists || sa.aliased {
		sa.entry.inlineUntil.Store(0)
		return
	}
	until := int64(math.MaxInt64)
	if sa.expires != 0 {
		until = sa.expires
	}
	if p := sa.policy(); p.Idle > 0 {
		until = min(until, sa.stored-int64(p.Idle)+int64(sa.touchEvery()))
	}
	sa.entry.inlineUntil.Store(max(until, 0))
}

// passivate flushes the sliding expiry and stops the actor, unless
// operations arrived after it was chosen.
func (sa *sessionActor) passivate(c actor.Context, final bool) {
	sa.safely(nil, func() {
		// A session that expired while its actor idled goes now (and is
		// reported), rather than be flushed.
		sa.expire(context.Background(), sa.sys.now().UnixNano())
		if sa.flush(context.Background()) != nil { // logged; the value itself was written through
			return
		}
		// A cache in front of the storage may keep the value at hand for
		// the session's return.
		if kp := sa.kind.keeper; kp != nil && sa.exists && !final {
			kp.Keep(sa.id, sa.rec, record.Unix(sa.stored))
		}
	})
	sh, e := sa.shard, sa.entry
	sh.mu.Lock()
	final = final || sh.closing.Load() // read under mu: Close sets it there
	if e.pending.Load() > 1 {
		if final {
			sa.finalPending = true // stop after the operations on their way
		} else {
			sh.stayLocked(e)
			sa.publishInline()
		}
		e.pending.Add(-1)
		sh.mu.Unlock()
		return
	}
	sh.removeLocked(e)
	e.pending.Add(-1)
	sh.mu.Unlock()
	if !final {
		sa.sys.passivated.Add(1)
	}
	c.Stop(c.Self())
}

// begin claims op for the actor; it reports false, and drops op, if the
// caller abandoned it.
func (sa *sessionActor) begin(op *Op) bool {
	if op.state.CompareAndSwap(opQueued, opStarted) {
		return true
	}
	if st := op.state.Load(); st == opStarted || st == opCommitting { // forwarded
		return true
	}
	sa.finish(op, Result{Status: Canceled, Err: op.ctx.Err()})
	return false
}

// commit marks the point past which op is applied whatever its caller
// does; it reports false, and drops op, if the caller abandoned it.
func (sa *sessionActor) commit(op *Op) bool {
	if op.state.Load() == opCommitting || op.state.CompareAndSwap(opStarted, opCommitting) {
		return true
	}
	sa.finish(op, Result{Status: Canceled, Err: op.ctx.Err()})
	return false
}

func (sa *sessionActor) handle(op *Op) {
	if !sa.begin(op) {
		return
	}
	if op.Code == opStorageExpired {
		sa.storageExpired(op)
		return
	}
	now := op.now
	if now == 0 {
		now = sa.sys.now().UnixNano()
	}
	if sa.kind.versioned != nil && !op.Fresh &&
		(op.Code != OpUpdate || record.Expired(sa.expires, now)) {
		// Other instances write this session too: read it anew. (An
		// update works on what it holds, its conditional write catching
		// a stale copy, unless that copy looks expired: another instance
		// may have kept it alive.)
		sa.loaded = false
	}
	if !sa.loaded {
		if op.Fresh {
			sa.loaded = true
		} else if err := sa.load(op.ctx); err != nil {
			sa.failStorage(op, err)
			return
		}
	}
	sa.expire(op.ctx, now)
	if sa.aliased && op.Code == OpInfo {
		sa.finish(op, Result{}) // renewed away: this ID is no session
		return
	}
	if sa.aliased {
		sa.forward(op)
		return
	}
	switch op.Code {
	case OpInfo:
		if !sa.exists {
			sa.finish(op, Result{})
			return
		}
		sa.finish(op, Result{Found: true, Created: sa.created, Expires: sa.expires, Owner: sa.owner})
	case OpSetOwner, OpSetPolicy:
		sa.setMeta(op, now)
	case OpGet:
		if !sa.exists {
			sa.finish(op, Result{})
			return
		}
		// The answer is what was read; a touch that conflicts with another
		// instance's write does not change it.
		val := sa.val
		refreshed := sa.touch(op.ctx, now)
		sa.finish(op, Result{Value: val, Found: true, Refreshed: refreshed})
	case OpUpdate:
		sa.update(op, now)
	case OpInvalidate:
		if !sa.commit(op) {
			return
		}
		existed, owner := sa.exists, sa.owner
		if err := sa.remove(op.ctx); err != nil {
			sa.failWrite(op, err)
			return
		}
		if existed {
			sa.owner = owner // for the event
			if op.Evict {
				sa.emit(EventEvicted, now)
			} else {
				sa.emit(EventInvalidated, now)
			}
			sa.owner = ""
		}
		sa.finish(op, Result{})
	case OpTake:
		sa.take(op, now)
	case OpRenew:
		sa.renew(op, now)
	default:
		sa.finish(op, Result{Status: FnFailed, Err: fmt.Errorf("engine: unknown operation %d", op.Code)})
	}
}

// runFn runs op's update function on the value held, flagged so that an
// operation on this session from inside it is refused.
func (sa *sessionActor) runFn(op *Op) (Value, bool, Status, error) {
	var cur Value
	if sa.exists {
		cur = sa.val
	}
	sa.entry.inFn.Store(true)
	next, write, st, err := RunUpdate(op.Fn, cur, sa.exists)
	sa.entry.inFn.Store(false)
	return next, write, st, err
}

func (sa *sessionActor) update(op *Op, now int64) {
	reread := false // a Versioned storage was read for this operation
	for attempt := 1; ; attempt++ {
		if !sa.exists && op.MustExist {
			sa.finish(op, Result{})
			return
		}
		next, write, st, err := sa.runFn(op)
		if write && sa.exists && bytes.Equal(next.Data, sa.val.Data) {
			// The same bytes: nothing to write (the expiry slides as for a
			// read), and the function's memo stays with them.
			write = false
		}
		if st != OK || !write {
			if sa.kind.versioned != nil && !reread {
				// Nothing written (or a refusal) means nothing checked the
				// version: the answer must not come from a copy another
				// instance has overwritten. Read anew and run the function
				// again.
				reread = true
				if err := sa.load(op.ctx); err != nil {
					sa.failStorage(op, err)
					return
				}
				sa.expire(op.ctx, now)
				if sa.aliased {
					sa.forward(op)
					return
				}
				continue
			}
			if st != OK {
				sa.finish(op, Result{Status: st, Err: err})
				return
			}
			if sa.exists && next.Memo != nil {
				sa.val.Memo = next.Memo // what the function made of the current bytes
			}
			val, found := sa.val, sa.exists
			refreshed := sa.touch(op.ctx, now)
			sa.finish(op, Result{Value: val, Found: found, Refreshed: refreshed})
			return
		}
		if !sa.commit(op) {
			return
		}
		created := sa.created
		if !sa.exists {
			created = now
		}
		exp := sa.policy().Expiry(created, now)
		rec := sa.encode(created, exp, next.Data)
		err = sa.writeOwn(op.ctx, rec, exp)
		if errors.Is(err, storage.ErrConflict) {
			// Another instance wrote first; its value is adopted: run the
			// function again on it. Until the next write the caller may
			// still abandon the update.
			op.state.Store(opStarted)
			sa.expire(op.ctx, now)
			switch {
			case sa.aliased:
				sa.forward(op) // renewed meanwhile
				return
			case attempt >= maxConflicts:
				sa.finish(op, Result{Status: Conflict, Err: fmt.Errorf("%d attempts", attempt)})
				return
			}
			if err := sa.backOff(op.ctx, attempt, now); err != nil {
				sa.failStorage(op, err)
				return
			}
			if sa.aliased {
				sa.forward(op)
				return
			}
			continue
		}
		if err != nil {
			sa.loaded = false // the write may have landed or not: read again
			sa.failWrite(op, err)
			return
		}
		created0 := !sa.exists
		refreshed := !sa.exists || exp-sa.stored >= int64(sa.touchEvery())
		next.Data = payloadOf(rec, next.Data) // one copy of the bytes, shared with the record
		sa.exists, sa.val, sa.rec, sa.created, sa.expires, sa.stored = true, next, rec, created, exp, exp
		if created0 {
			sa.emit(EventCreated, now)
		}
		sa.finish(op, Result{Value: next, Found: true, Refreshed: refreshed})
		return
	}
}

func (sa *sessionActor) renew(op *Op, now int64) {
	for attempt := 1; ; attempt++ {
		if !sa.exists {
			sa.finish(op, Result{})
			return
		}
		newID, err := op.NewID, error(nil)
		if newID == "" {
			newID, err = sa.kind.NewID()
		}
		if err != nil {
			sa.finish(op, Result{Status: FnFailed, Err: fmt.Errorf("engine: new session ID: %w", err)})
			return
		}
		if !sa.commit(op) {
			return
		}
		newD := record.DigestOf(newID)
		newKey := newD.StorageID()
		exp := sa.policy().Expiry(sa.created, now)
		rec := sa.encode(sa.created, exp, sa.val.Data)
		// With a Versioned storage, the new ID is written only if nothing
		// is stored there (version 0).
		if _, err := sa.storageCall(op.ctx, stWrite, newKey, rec, sa.storedExpiry(exp), 0); err != nil {
			sa.failStorage(op, err)
			return
		}
		val, owner := sa.val, sa.owner
		// The old ID becomes an alias for the grace period, or goes; with
		// a Versioned storage either is conditional, so an update another
		// instance made meanwhile is never lost.
		if sa.kind.Grace > 0 {
			aliasExp := now + int64(sa.kind.Grace)
			if exp != 0 && exp < aliasExp {
				aliasExp = exp
			}
			alias := record.Encode(record.Record{Alias: true, Created: now, Expires: aliasExp, Payload: newD[:]})
			if err = sa.writeOwn(op.ctx, alias, aliasExp); err == nil {
				sa.forget()
				sa.aliased, sa.alias, sa.renewed, sa.expires, sa.stored = true, newD, now, aliasExp, aliasExp
			}
		} else {
			err = sa.removeOwn(op.ctx)
		}
		if err == nil {
			if f := sa.kind.Emit; f != nil {
				f(Event{Code: EventRenewed, D: sa.d, NewD: newD, Owner: owner, At: now})
			}
			sa.finish(op, Result{ID: newID, Value: val, Found: true, Refreshed: true, Owner: owner})
			return
		}
		// The value lives under both IDs now: drop the new one, so that a
		// failed renewal leaves one session.
		if _, derr := sa.storageCall(op.ctx, stDelete, newKey, nil, 0, 0); derr != nil {
			sa.sys.log.Error("engine: a failed renewal left an orphan session; it expires on its own",
				"kind", sa.kind.Name, "error", derr)
		}
		if !errors.Is(err, storage.ErrConflict) {
			sa.loaded = false // read the old ID's state again rather than trust a guess
			sa.failWrite(op, err)
			return
		}
		// Another instance wrote the session meanwhile; its state is
		// adopted: renew that.
		op.state.Store(opStarted)
		sa.expire(op.ctx, now)
		switch {
		case sa.aliased:
			sa.forward(op) // renewed there already: renew where it went
			return
		case attempt >= maxConflicts:
			sa.finish(op, Result{Status: Conflict, Err: fmt.Errorf("%d attempts to renew", attempt)})
			return
		}
		time.Sleep(conflictBackoff(attempt))
	}
}

// take removes the session and answers with its value. With a Versioned
// storage the removal is conditional on the value read, so that of two
// instances taking it at once only one gets it.
func (sa *sessionActor) take(op *Op, now int64) {
	for attempt := 1; ; attempt++ {
		if !sa.exists {
			sa.finish(op, Result{})
			return
		}
		val, owner := sa.val, sa.owner
		if !sa.commit(op) {
			return
		}
		err := sa.removeOwn(op.ctx)
		if errors.Is(err, storage.ErrConflict) {
			op.state.Store(opStarted)
			sa.expire(op.ctx, now)
			switch {
			case sa.aliased:
				sa.forward(op)
				return
			case attempt >= maxConflicts:
				sa.finish(op, Result{Status: Conflict, Err: fmt.Errorf("%d attempts", attempt)})
				return
			}
			continue
		}
		if err != nil {
			sa.loaded = false
			sa.failWrite(op, err)
			return
		}
		sa.owner = owner // forgotten by the removal; for the event
		sa.emit(EventInvalidated, now)
		sa.owner = ""
		sa.finish(op, Result{Value: val, Found: true})
		return
	}
}

// setMeta binds the session to op.Owner (OpSetOwner) or gives it op.Own
// as its expiry policy (OpSetPolicy), and writes it through.
func (sa *sessionActor) setMeta(op *Op, now int64) {
	for attempt := 1; ; attempt++ {
		if !sa.exists {
			sa.finish(op, Result{})
			return
		}
		if op.Code == OpSetOwner && sa.owner == op.Owner && sa.kind.versioned == nil {
			sa.finish(op, Result{Found: true, Owner: sa.owner, Created: sa.created, Expires: sa.expires})
			return
		}
		if !sa.commit(op) {
			return
		}
		prevOwner, prevOwn := sa.owner, sa.own
		sa.applyMeta(op)
		exp := sa.policy().Expiry(sa.created, now)
		rec := sa.encode(sa.created, exp, sa.val.Data)
		sa.owner, sa.own = prevOwner, prevOwn
		err := sa.writeOwn(op.ctx, rec, exp)
		if errors.Is(err, storage.ErrConflict) {
			op.state.Store(opStarted)
			sa.expire(op.ctx, now)
			switch {
			case sa.aliased:
				sa.finish(op, Result{}) // renewed away meanwhile
				return
			case attempt >= maxConflicts:
				sa.finish(op, Result{Status: Conflict, Err: fmt.Errorf("%d attempts", attempt)})
				return
			}
			if err := sa.backOff(op.ctx, attempt, now); err != nil {
				sa.failStorage(op, err)
				return
			}
			continue
		}
		if err != nil {
			sa.loaded = false
			sa.failWrite(op, err)
			return
		}
		sa.applyMeta(op)
		sa.rec, sa.expires, sa.stored = rec, exp, exp
		if op.Code == OpSetOwner && op.Owner != "" {
			sa.emit(EventOwnerBound, now)
		}
		sa.val.Data = payloadOf(rec, sa.val.Data)
		sa.finish(op, Result{Found: true, Owner: sa.owner, Created: sa.created, Expires: exp, Refreshed: true})
		return
	}
}

func (sa *sessionActor) applyMeta(op *Op) {
	if op.Code == OpSetOwner {
		sa.owner = op.Owner
	} else {
		sa.own = op.Own
	}
}

// forward sends op on to the ID this session was renewed to. The target
// actor answers it.
func (sa *sessionActor) forward(op *Op) {
	if op.Code == OpRenew || (op.Admitted != 0 && op.Admitted >= sa.renewed) {
		// Asked after the renewal through the old ID: the grace is only for
		// requests already on their way then. Whoever holds the old ID now
		// has no session here, and must not learn where it went; nor may
		// anyone holding it renew the session again (which would hand them
		// the newest ID).
		sa.finish(op, Result{Status: Renewed})
		return
	}
	target := sa.alias
	if op.Code == OpInvalidate {
		// Invalidating an old ID ends the renewed session too; the alias
		// itself goes first.
		if !sa.commit(op) {
			return
		}
		if err := sa.remove(op.ctx); err != nil {
			sa.failWrite(op, err)
			return
		}
	}
	op.hops++
	if op.hops > maxHops {
		sa.finish(op, Result{})
		return
	}
	sa.handedOn = true
	sa.sys.route(sa.kind, target, op, false)
}

// forget drops the session state held (not what is stored).
func (sa *sessionActor) forget() {
	sa.exists, sa.val, sa.rec, sa.aliased, sa.expires, sa.stored = false, Value{}, nil, false, 0, 0
	sa.owner, sa.own = "", nil
}

// emit reports an event of this session, if the kind listens.
func (sa *sessionActor) emit(code EventCode, now int64) {
	if f := sa.kind.Emit; f != nil {
		f(Event{Code: code, D: sa.d, Owner: sa.owner, At: now})
	}
}

// policy is the session's expiry policy: its own, or its kind's.
func (sa *sessionActor) policy() record.Policy {
	if sa.own != nil {
		return *sa.own
	}
	return sa.kind.Expiry
}

// touchEvery is how far the sliding expiry moves before it is written.
func (sa *sessionActor) touchEvery() time.Duration {
	if sa.own != nil {
		return sa.own.Touch()
	}
	return sa.kind.touch
}

// encode frames a value of this session for the storage.
func (sa *sessionActor) encode(created, expires int64, payload []byte) []byte {
	return record.Encode(record.Record{Created: created, Expires: expires, Payload: payload, Owner: sa.owner, Own: sa.own, Intern: sa.kind.Intern})
}

// payloadOf returns the payload inside rec, a record encoded from payload:
// the record ends with it.
func payloadOf(rec, payload []byte) []byte { return rec[len(rec)-len(payload):] }

// removeOwn deletes the stored state of this ID if it is still the state
// the actor holds: with a Versioned storage the delete is conditional (a
// conditional write that has already expired), and a conflict adopts the
// other instance's newer state and returns an error wrapping
// storage.ErrConflict. Without one it is remove.
func (sa *sessionActor) removeOwn(ctx context.Context) error {
	if sa.kind.versioned == nil {
		return sa.remove(ctx)
	}
	if err := sa.writeOwn(ctx, nil, 1); err != nil { // expires 1 ns after 1970: deletes
		return err
	}
	sa.forget()
	sa.version = 0
	return nil
}

// remove deletes the stored state of this ID, whatever it is: Invalidate
// wins over every write.
func (sa *sessionActor) remove(ctx context.Context) error {
	if _, err := sa.storageCall(ctx, stDelete, sa.id, nil, 0, 0); err != nil {
		return err
	}
	sa.forget()
	sa.version = 0
	return nil
}

// expire drops the session if it is past its expiry.
func (sa *sessionActor) expire(ctx context.Context, now int64) {
	if (!sa.exists && !sa.aliased) || !record.Expired(sa.expires, now) {
		return
	}
	live, owner, created, expires := sa.exists, sa.owner, sa.created, sa.expires
	lifetime := sa.policy().Lifetime
	var err error
	if sa.kind.reporter != nil {
		// The storage also removes expired values on its own, and reports
		// those (see storageExpired): the event is for whichever removal
		// found the value.
		var found bool
		found, err = sa.deleteFound(ctx)
		live = live && found
	} else {
		err = sa.removeOwn(ctx)
	}
	switch {
	case errors.Is(err, storage.ErrConflict):
		// Another instance wrote it meanwhile: its state is adopted.
	case err != nil:
		sa.sys.log.Warn("engine: removing an expired session", "kind", sa.kind.Name, "error", err)
		sa.forget()
	case live:
		if f := sa.kind.Emit; f != nil {
			f(Event{Code: EventExpired, D: sa.d, Owner: owner, At: now,
				Absolute: lifetime > 0 && expires >= created+int64(lifetime)}) // the lifetime came first
		}
	}
}

// deleteFound removes the stored state of this ID, reporting whether the
// storage found any (storage.ExpiryReporter).
func (sa *sessionActor) deleteFound(ctx context.Context) (bool, error) {
	res, err := sa.storageCall(ctx, stDeleteFound, sa.id, nil, 0, 0)
	if err != nil {
		return false, err
	}
	sa.forget()
	sa.version = 0
	return res.found, nil
}

// storageExpired handles the storage's report that it removed this
// session as expired (System.StorageExpired), emitting its expired event
// unless the actor holds it alive.
func (sa *sessionActor) storageExpired(op *Op) {
	defer sa.finish(op, Result{})
	now := sa.sys.now().UnixNano()
	if !sa.loaded {
		// A new incarnation, the report having raced with a passivation:
		// what is stored now is what the last one left.
		if err := sa.load(op.ctx); err != nil {
			sa.sys.log.Warn("engine: reading a session the storage reported expired", "kind", sa.kind.Name, "error", err)
			return
		}
	}
	switch {
	case sa.aliased:
		// Renewed away meanwhile: the renewal reported the session.
	case sa.exists && !record.Expired(sa.expires, now):
		// The storage went by an older expiry than the one this actor slid
		// to (it writes it through once it moved by the touch interval):
		// the session is alive, so it is stored again.
		sa.stored = 0
		if err := sa.flush(op.ctx); err != nil {
			sa.sys.log.Warn("engine: storing again a session the storage removed as expired", "kind", sa.kind.Name, "error", err)
		}
	case sa.exists:
		owner, created, expires, lifetime := sa.owner, sa.created, sa.expires, sa.policy().Lifetime
		sa.forget()
		sa.version = 0
		if f := sa.kind.Emit; f != nil {
			f(Event{Code: EventExpired, D: sa.d, Owner: owner, At: now,
				Absolute: lifetime > 0 && expires >= created+int64(lifetime)})
		}
	default:
		// Not held (found expired or missing when read): the storage's
		// removal was the session's end.
		if f := sa.kind.Emit; f != nil {
			f(expiredEvent(sa.kind, sa.d, *op.swept, now))
		}
	}
}

// touch slides the expiry on access and writes it through once it moved by
// the kind's touch interval, so a busy session costs a write per interval
// at most. The rest is flushed when the actor passivates.
func (sa *sessionActor) touch(ctx context.Context, now int64) bool {
	if !sa.exists {
		return false
	}
	sa.expires = sa.policy().Expiry(sa.created, now)
	if sa.expires == 0 || sa.expires-sa.stored < int64(sa.touchEvery()) {
		return false
	}
	return sa.flush(ctx) == nil
}

// flush writes the sliding expiry if it moved since the last write.
func (sa *sessionActor) flush(ctx context.Context) error {
	if !sa.exists || sa.expires <= sa.stored {
		return nil
	}
	rec := sa.encode(sa.created, sa.expires, sa.val.Data)
	if err := sa.writeOwn(ctx, rec, sa.expires); err != nil {
		if !errors.Is(err, storage.ErrConflict) { // a conflict: another instance's write is newer
			sa.sys.log.Warn("engine: refreshing a session's expiry", "kind", sa.kind.Name, "error", err)
		}
		return err
	}
	sa.stored, sa.rec = sa.expires, rec
	sa.val.Data = payloadOf(rec, sa.val.Data)
	return nil
}

func (sa *sessionActor) load(ctx context.Context) error {
	res, err := sa.storageCall(ctx, stRead, sa.id, nil, 0, 0)
	if errors.Is(err, storage.ErrNotFound) {
		res, err = storageResult{}, nil
	}
	if err != nil {
		return err
	}
	sa.loaded = true
	sa.adopt(res.data, res.version)
	return nil
}

// adopt makes the stored record data (nil for none) at version the
// actor's state.
func (sa *sessionActor) adopt(data []byte, version uint64) {
	sa.forget()
	sa.created = 0
	sa.version = version
	if data == nil {
		return
	}
	rec, err := record.Decode(data)
	if err != nil {
		sa.sys.log.Warn("engine: unreadable session record, treated as no session", "kind", sa.kind.Name, "error", err)
		return
	}
	if rec.Intern != sa.kind.Intern {
		return // an owner's index read as a session, or the reverse: none
	}
	sa.created, sa.expires, sa.stored = rec.Created, rec.Expires, rec.Expires
	if rec.Alias {
		sa.aliased, sa.renewed = true, rec.Created
		copy(sa.alias[:], rec.Payload)
	} else {
		sa.exists, sa.val, sa.rec, sa.owner, sa.own = true, Value{Data: rec.Payload}, data, rec.Owner, rec.Own
	}
}

// storedExpiry is the expiry given to a storage that removes expired
// values on its own and reports them (Kind.reporter): the record's exp
// plus the touch interval. The actor slides a session's expiry in memory
// and writes it only once it moved by the touch interval, so the storage
// never removes a value (and reports it expired) that the actor still
// holds alive: of a storage's removal and the actor's, both see the
// session expired, and the DeleteFound rule picks one.
func (sa *sessionActor) storedExpiry(exp int64) int64 {
	if sa.kind.reporter == nil || exp <= 1 {
		return exp
	}
	return exp + int64(sa.touchEvery())
}

// writeOwn writes rec under the actor's own ID. With a Versioned storage
// the write is conditional on the version the actor holds; on a conflict
// the current record is adopted and the error wraps storage.ErrConflict.
func (sa *sessionActor) writeOwn(ctx context.Context, rec []byte, exp int64) error {
	res, err := sa.storageCall(ctx, stWrite, sa.id, rec, sa.storedExpiry(exp), sa.version)
	if errors.Is(err, storage.ErrConflict) {
		sa.adopt(res.data, res.version)
		return err
	}
	if err != nil {
		return err
	}
	sa.version = res.version
	return nil
}

// storageCall runs one storage operation and waits for it: on a storage
// actor, or right here for a storage that never blocks. Errors other than
// "not found" and "conflict" say which call failed.
func (sa *sessionActor) storageCall(ctx context.Context, code storageCode, id string, data []byte, exp int64, version uint64) (storageResult, error) {
	// One storage call at a time: the request is reused, never allocated.
	req := &sa.req
	*req = storageReq{kind: sa.kind, code: code, id: id, data: data, expires: exp, version: version, ctx: ctx, reply: sa.storageReply}
	defer func() { *req = storageReq{} }() // keep nothing alive
	h := &sa.kind.health
	start := sa.sys.sinceStart()
	ok, probe := h.admit(start)
	if !ok {
		return storageResult{}, fmt.Errorf("%s %s: %w", code, sa.kind.Name, h.refused())
	}
	var res storageResult
	if sa.kind.inline {
		// The storage never blocks (Memory): a storage actor would only add
		// a hand-off.
		res = req.do()
	} else {
		res = sa.sys.storers.call(req)
	}
	err := res.err
	h.done(start, sa.sys.sinceStart(), probe, err, sa.sys.log, sa.kind.Name)
	if err != nil && !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrConflict) {
		err = fmt.Errorf("%s %s: %w", code, sa.kind.Name, err)
	}
	return res, err
}
