package actors

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/steward-sessions/steward/storage"
)

// OpCode says what an Op does.
type OpCode uint8

const (
	// OpGet reads the session.
	OpGet OpCode = iota
	// OpUpdate runs Op.Fn on the current value and stores what it returns.
	OpUpdate
	// OpInvalidate removes the session.
	OpInvalidate
	// OpRenew moves the session to a new ID; the old one forwards to it for
	// the kind's grace period.
	OpRenew
)

// maxConflicts bounds how often an update is re-run after conflicting
// with another engine instance's write.
const maxConflicts = 32

// conflictBackoff is how long an update waits before its attempt-th retry:
// a random part of a window that doubles from 10µs up to 2ms, so that
// instances racing for one session fall out of step.
func conflictBackoff(attempt int) time.Duration {
	window := min(10*time.Microsecond<<min(attempt, 16), 2*time.Millisecond)
	return rand.N(window)
}

// maxHops bounds how many renewed IDs an operation follows: one hop per
// renewal made within the grace period of the ID the client holds.
const maxHops = 32

// Op is one operation on one session, carried to its actor.
type Op struct {
	Code OpCode
	// Fresh says the ID was issued by this engine for this operation, so
	// no stored value can exist and none is read.
	Fresh bool
	// MustExist makes OpUpdate answer "not found" instead of creating the
	// session: IDs that come from clients are never adopted.
	MustExist bool
	// Fn computes an OpUpdate's new value from the current one (nil, false
	// when there is none). With write false the value is kept. memo points
	// to what the previous update function left for the current value (a
	// decoded copy, say), nil if nothing: Fn may use it, and must set it to
	// the memo of the value it returns, or to nil, when it writes. The
	// actor drops the memo whenever the value changes any other way or Fn
	// fails. Fn runs inside
	// the session actor: it must not block on other sessions. It must not
	// keep or modify old, and must not modify value after returning it.
	Fn UpdateFunc

	ctx    context.Context
	kind   *Kind
	reply  chan Result
	origin *shard // where the operation was admitted
	hops   int
}

// UpdateFunc is the type of Op.Fn.
type UpdateFunc func(old []byte, exists bool, memo *any) (value []byte, write bool, err error)

// Result is the answer to an Op.
type Result struct {
	// ID is the session's ID after the operation: the asked one, or the ID
	// it was renewed to.
	ID string
	// Value is the session's value; read-only, shared with the actor.
	Value []byte
	// Memo is what the last update function left for Value (see Op.Fn),
	// nil if nothing; read-only.
	Memo any
	// Found says a session exists after the operation.
	Found bool
	// Refreshed says the operation moved the session's stored expiry
	// forward, so a transport that carries an expiry (a cookie's Max-Age)
	// should send it again.
	Refreshed bool
	Err       error
}

var replies = sync.Pool{New: func() any { return make(chan Result, 1) }}

func getReply() chan Result  { return replies.Get().(chan Result) }
func putReply(c chan Result) { replies.Put(c) }

// passivate asks a session actor to flush and stop if nothing else is on
// its way to it.
type passivate struct{ final bool }

// sessionActor owns one session ID of one kind: every operation of that ID
// runs here, one at a time, which is what makes read-modify-write atomic.
type sessionActor struct {
	sys          *System
	kind         *Kind
	id           string
	hash         uint64
	shard        *shard
	entry        *entry
	storageReply chan storageResult // reused: one storage call at a time
	req          storageReq         // reused likewise

	loaded  bool   // the stored state has been read
	exists  bool   // a live value is held
	alias   string // non-empty: renewed to this ID, operations forward there
	created int64  // Unix ns
	expires int64  // Unix ns, 0 for none: the exact sliding expiry
	stored  int64  // the expiry last written to the storage
	value   []byte
	memo    any    // what the last update function left for value; see Op.Fn
	version uint64 // the stored version (Versioned storages), 0 for none

	// handedOn says the current operation was answered or forwarded.
	handedOn bool
}

// Receive implements actor.Actor.
func (sa *sessionActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *Op:
		sa.handedOn = false
		sa.safely(m, func() { sa.handle(m) })
		sa.entry.empty.Store(!sa.exists && sa.alias == "")
		sa.entry.pending.Add(-1)
	case passivate:
		sa.safely(nil, func() { sa.passivate(c, m.final) })
	case *actor.Stopped:
		sa.sys.live.Add(-1)
		sa.sys.sessionsWG.Done()
	}
}

func (sa *sessionActor) finish(op *Op, res Result) {
	sa.handedOn = true
	sa.sys.finish(op, res)
}

// safely runs f, turning a panic (from user code such as an ID generator,
// or a bug) into an ErrPanic answer for op instead of losing op and
// restarting the actor. The actor reads its state from the storage again.
func (sa *sessionActor) safely(op *Op, f func()) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		sa.sys.log.Error("engine: panic in a session actor", "kind", sa.kind.Name, "panic", r)
		sa.loaded, sa.exists, sa.value, sa.memo, sa.alias = false, false, nil, nil, ""
		if op != nil && !sa.handedOn {
			sa.finish(op, Result{Err: fmt.Errorf("%w: %v", ErrPanic, r)})
		}
	}()
	f()
}

func (sa *sessionActor) handle(op *Op) {
	// A cancelled operation is dropped before it starts; once forwarded
	// from a renewed ID it has started, and runs to its end.
	if err := op.ctx.Err(); err != nil && op.hops == 0 {
		sa.finish(op, Result{Err: err})
		return
	}
	now := sa.sys.now().UnixNano()
	if sa.kind.versioned != nil && !op.Fresh &&
		(op.Code != OpUpdate || sa.expires != 0 && now >= sa.expires) {
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
			sa.finish(op, Result{Err: err})
			return
		}
	}
	sa.expire(op.ctx, now)
	if sa.alias != "" {
		sa.forward(op)
		return
	}
	switch op.Code {
	case OpGet:
		if !sa.exists {
			sa.finish(op, Result{ID: sa.id})
			return
		}
		// The answer is what was read; a touch that conflicts with another
		// instance's write does not change it.
		value, memo := sa.value, sa.memo
		refreshed := sa.touch(op.ctx, now)
		sa.finish(op, Result{ID: sa.id, Value: value, Memo: memo, Found: true, Refreshed: refreshed})
	case OpUpdate:
		sa.update(op, now)
	case OpInvalidate:
		if err := sa.remove(op.ctx); err != nil {
			sa.finish(op, Result{Err: err})
			return
		}
		sa.finish(op, Result{ID: sa.id})
	case OpRenew:
		sa.renew(op, now)
	default:
		sa.finish(op, Result{Err: fmt.Errorf("engine: unknown operation %d", op.Code)})
	}
}

func (sa *sessionActor) update(op *Op, now int64) {
	reread := false // a Versioned storage was read for this operation
	for attempt := 1; ; attempt++ {
		if !sa.exists && op.MustExist {
			sa.finish(op, Result{ID: sa.id})
			return
		}
		var old []byte
		if sa.exists {
			old = sa.value
		}
		memo := sa.memo
		if !sa.exists {
			memo = nil
		}
		value, write, err := callFn(op.Fn, old, sa.exists, &memo)
		if err != nil {
			sa.memo = nil // the function may have changed it halfway
		}
		if err != nil || !write {
			if sa.kind.versioned != nil && !reread {
				// Nothing written (or a refusal) means nothing checked the
				// version: the answer must not come from a copy another
				// instance has overwritten. Read anew and run the function
				// again.
				reread = true
				if err := sa.load(op.ctx); err != nil {
					sa.finish(op, Result{Err: err})
					return
				}
				sa.expire(op.ctx, now)
				if sa.alias != "" {
					sa.forward(op)
					return
				}
				continue
			}
			if err != nil {
				sa.finish(op, Result{Err: err})
				return
			}
			if sa.exists {
				sa.memo = memo
			}
			value, memo, found := sa.value, sa.memo, sa.exists
			refreshed := sa.touch(op.ctx, now)
			sa.finish(op, Result{ID: sa.id, Value: value, Memo: memo, Found: found, Refreshed: refreshed})
			return
		}
		created := sa.created
		if !sa.exists {
			created = now
		}
		exp := sa.kind.expiry(created, now)
		rec := encodeRecord(record{created: created, expires: exp, payload: value})
		err = sa.writeOwn(op.ctx, rec, exp)
		if errors.Is(err, storage.ErrConflict) {
			// Another instance wrote first; its value is adopted: run the
			// function again on it.
			sa.expire(op.ctx, now)
			switch {
			case sa.alias != "":
				sa.forward(op) // renewed meanwhile
				return
			case attempt >= maxConflicts:
				sa.finish(op, Result{Err: fmt.Errorf("%w (%d attempts)", ErrConflict, attempt)})
				return
			}
			time.Sleep(conflictBackoff(attempt))
			continue
		}
		if err != nil {
			sa.memo = nil
			sa.finish(op, Result{Err: err})
			return
		}
		refreshed := !sa.exists || exp-sa.stored >= int64(sa.kind.touch)
		sa.exists, sa.value, sa.memo, sa.created, sa.expires, sa.stored = true, value, memo, created, exp, exp
		sa.finish(op, Result{ID: sa.id, Value: value, Memo: memo, Found: true, Refreshed: refreshed})
		return
	}
}

func (sa *sessionActor) renew(op *Op, now int64) {
	for attempt := 1; ; attempt++ {
		if !sa.exists {
			sa.finish(op, Result{ID: sa.id})
			return
		}
		newID, err := sa.kind.NewID()
		if err != nil {
			sa.finish(op, Result{Err: fmt.Errorf("engine: new session ID: %w", err)})
			return
		}
		exp := sa.kind.expiry(sa.created, now)
		rec := encodeRecord(record{created: sa.created, expires: exp, payload: sa.value})
		h := sa.sys.hash(sa.kind, newID)
		if err := sa.storageWrite(op.ctx, newID, h, rec, exp); err != nil {
			sa.finish(op, Result{Err: err})
			return
		}
		value := sa.value
		// The old ID becomes an alias for the grace period, or goes; with
		// a Versioned storage either is conditional, so an update another
		// instance made meanwhile is never lost.
		if sa.kind.Grace > 0 {
			aliasExp := now + int64(sa.kind.Grace)
			if exp != 0 && exp < aliasExp {
				aliasExp = exp
			}
			alias := encodeRecord(record{alias: true, created: sa.created, expires: aliasExp, payload: []byte(newID)})
			if err = sa.writeOwn(op.ctx, alias, aliasExp); err == nil {
				sa.exists, sa.value, sa.memo = false, nil, nil
				sa.alias, sa.expires, sa.stored = newID, aliasExp, aliasExp
			}
		} else {
			err = sa.removeOwn(op.ctx)
		}
		if err == nil {
			sa.finish(op, Result{ID: newID, Value: value, Found: true, Refreshed: true})
			return
		}
		// The value lives under both IDs now: drop the new one, so that a
		// failed renewal leaves one session.
		if _, derr := sa.storageCall(op.ctx, stDelete, newID, h, nil, 0, 0); derr != nil {
			sa.sys.log.Error("engine: a failed renewal left an orphan session; it expires on its own",
				"kind", sa.kind.Name, "error", derr)
		}
		if !errors.Is(err, storage.ErrConflict) {
			sa.loaded = false // read the old ID's state again rather than trust a guess
			sa.finish(op, Result{Err: err})
			return
		}
		// Another instance wrote the session meanwhile; its state is
		// adopted: renew that.
		sa.expire(op.ctx, now)
		switch {
		case sa.alias != "":
			sa.forward(op) // renewed there already: renew where it went
			return
		case attempt >= maxConflicts:
			sa.finish(op, Result{Err: fmt.Errorf("%w (%d attempts to renew)", ErrConflict, attempt)})
			return
		}
		time.Sleep(conflictBackoff(attempt))
	}
}

// forward sends op on to the ID this session was renewed to. The target
// actor answers it.
func (sa *sessionActor) forward(op *Op) {
	target := sa.alias
	if op.Code == OpInvalidate {
		// Invalidating an old ID ends the renewed session too; the alias
		// itself goes first.
		if err := sa.remove(op.ctx); err != nil {
			sa.finish(op, Result{Err: err})
			return
		}
	}
	op.hops++
	if op.hops > maxHops {
		sa.finish(op, Result{ID: sa.id})
		return
	}
	sa.handedOn = true
	sa.sys.route(sa.kind, target, sa.sys.hash(sa.kind, target), op, false)
}

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
	sa.exists, sa.value, sa.memo, sa.alias, sa.expires, sa.stored, sa.version = false, nil, nil, "", 0, 0, 0
	return nil
}

// remove deletes the stored state of this ID, whatever it is: Invalidate
// wins over every write.
func (sa *sessionActor) remove(ctx context.Context) error {
	if _, err := sa.storageCall(ctx, stDelete, sa.id, sa.hash, nil, 0, 0); err != nil {
		return err
	}
	sa.exists, sa.value, sa.memo, sa.alias, sa.expires, sa.stored, sa.version = false, nil, nil, "", 0, 0, 0
	return nil
}

// expire drops the session if it is past its expiry.
func (sa *sessionActor) expire(ctx context.Context, now int64) {
	if (!sa.exists && sa.alias == "") || sa.expires == 0 || now < sa.expires {
		return
	}
	err := sa.removeOwn(ctx)
	switch {
	case errors.Is(err, storage.ErrConflict):
		// Another instance wrote it meanwhile: its state is adopted.
	case err != nil:
		sa.sys.log.Warn("engine: removing an expired session", "kind", sa.kind.Name, "error", err)
		sa.exists, sa.value, sa.memo, sa.alias = false, nil, nil, ""
	}
}

// touch slides the expiry on access and writes it through once it moved by
// the kind's touch interval, so a busy session costs a write per interval
// at most. The rest is flushed when the actor passivates.
func (sa *sessionActor) touch(ctx context.Context, now int64) bool {
	if !sa.exists {
		return false
	}
	sa.expires = sa.kind.expiry(sa.created, now)
	if sa.expires == 0 || sa.expires-sa.stored < int64(sa.kind.touch) {
		return false
	}
	return sa.flush(ctx) == nil
}

// flush writes the sliding expiry if it moved since the last write.
func (sa *sessionActor) flush(ctx context.Context) error {
	if !sa.exists || sa.expires <= sa.stored {
		return nil
	}
	rec := encodeRecord(record{created: sa.created, expires: sa.expires, payload: sa.value})
	if err := sa.writeOwn(ctx, rec, sa.expires); err != nil {
		if !errors.Is(err, storage.ErrConflict) { // a conflict: another instance's write is newer
			sa.sys.log.Warn("engine: refreshing a session's expiry", "kind", sa.kind.Name, "error", err)
		}
		return err
	}
	sa.stored = sa.expires
	return nil
}

func (sa *sessionActor) load(ctx context.Context) error {
	res, err := sa.storageCall(ctx, stRead, sa.id, sa.hash, nil, 0, 0)
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
	sa.exists, sa.value, sa.memo, sa.alias, sa.created, sa.expires, sa.stored = false, nil, nil, "", 0, 0, 0
	sa.version = version
	if data == nil {
		return
	}
	rec, err := decodeRecord(data)
	if err == nil && rec.alias && !storage.ValidID(string(rec.payload)) {
		err = errBadRecord
	}
	if err != nil {
		sa.sys.log.Warn("engine: unreadable session record, treated as no session", "kind", sa.kind.Name, "error", err)
		return
	}
	sa.created, sa.expires, sa.stored = rec.created, rec.expires, rec.expires
	if rec.alias {
		sa.alias = string(rec.payload)
	} else {
		sa.exists, sa.value = true, rec.payload
	}
}

// writeOwn writes rec under the actor's own ID. With a Versioned storage
// the write is conditional on the version the actor holds; on a conflict
// the current record is adopted and the error wraps storage.ErrConflict.
func (sa *sessionActor) writeOwn(ctx context.Context, rec []byte, exp int64) error {
	res, err := sa.storageCall(ctx, stWrite, sa.id, sa.hash, rec, exp, sa.version)
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

func (sa *sessionActor) passivate(c actor.Context, final bool) {
	ctx := context.Background()
	_ = sa.flush(ctx) // logged; the value itself was written through
	sh, e := sa.shard, sa.entry
	sh.mu.Lock()
	if !final && e.pending.Load() > 1 {
		// Operations arrived after the janitor chose this actor: stay.
		e.passivating = false
		e.pending.Add(-1)
		sh.mu.Unlock()
		return
	}
	k := key{sa.kind.index, sa.id}
	if sh.entries[k] == e {
		delete(sh.entries, k)
	}
	e.pending.Add(-1)
	sh.mu.Unlock()
	if !final {
		sa.sys.passivated.Add(1)
	}
	c.Stop(c.Self())
}

// storageWrite writes rec under another ID, a new one (Renew): with a
// Versioned storage, only if nothing is stored there.
func (sa *sessionActor) storageWrite(ctx context.Context, id string, h uint64, rec []byte, exp int64) error {
	_, err := sa.storageCall(ctx, stWrite, id, h, rec, exp, 0)
	return err
}

// storageCall runs one storage operation on the storage actor that owns
// the ID's hash and waits for it.
func (sa *sessionActor) storageCall(ctx context.Context, code storageCode, id string, h uint64, data []byte, exp int64, version uint64) (storageResult, error) {
	// One storage call at a time: the request is reused, never allocated.
	req := &sa.req
	*req = storageReq{kind: sa.kind, code: code, id: id, data: data, expires: exp, version: version, ctx: ctx, reply: sa.storageReply}
	defer func() { *req = storageReq{} }() // keep nothing alive
	var res storageResult
	if sa.kind.inline {
		// The storage never blocks (Memory): a storage actor would only add
		// a hand-off.
		res = req.do()
	} else {
		sys := sa.sys
		sys.as.Root.Send(sys.storers[h%uint64(len(sys.storers))], req)
		res = <-sa.storageReply
	}
	err := res.err
	if err != nil && !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrConflict) {
		err = fmt.Errorf("%w: %s %s: %w", ErrStorage, code, sa.kind.Name, err)
	}
	return res, err
}

// callFn runs an update function, turning a panic into an error.
func callFn(fn UpdateFunc, old []byte, exists bool, memo *any) (value []byte, write bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			value, write, err = nil, false, fmt.Errorf("%w: %v", ErrPanic, r)
		}
	}()
	if fn == nil {
		return nil, false, nil
	}
	return fn(old, exists, memo)
}
