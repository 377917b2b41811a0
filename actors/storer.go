package actors

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/steward-sessions/steward/internal/record"
)

// StorageCall says which storage method a storage call runs, for
// Kind.OnStorage.
type StorageCall uint8

const (
	// StorageLoad is Load (LoadVersioned on a Versioned storage).
	StorageLoad StorageCall = iota
	// StorageSave is Save (SaveIf on a Versioned storage).
	StorageSave
	// StorageDelete is Delete.
	StorageDelete
)

// storageCode and the st names are the session actor's names for them.
type storageCode = StorageCall

const (
	stRead   = StorageLoad
	stWrite  = StorageSave
	stDelete = StorageDelete
	// stDeleteFound is DeleteFound (storage.ExpiryReporter), observed as a
	// StorageDelete.
	stDeleteFound StorageCall = 255
)

func (c storageCode) String() string {
	switch c {
	case stRead:
		return "read"
	case stWrite:
		return "write"
	default:
		return "invalidate"
	}
}

// storageReq is one storage call, made by a session actor and run by a
// storage actor. A session actor makes one call at a time and waits for
// it, so the calls of one ID are never reordered, whichever storage actor
// runs them.
type storageReq struct {
	kind    *Kind
	code    storageCode
	id      string
	data    []byte
	expires int64
	version uint64 // stWrite on a Versioned storage: the version expected
	ctx     context.Context
	reply   chan storageResult
}

type storageResult struct {
	found   bool // stDeleteFound: a value was removed
	data    []byte
	version uint64 // the version read or written; on a conflict, the current one
	err     error
}

func (r *storageReq) do() (res storageResult) {
	// The caller may stop waiting, but a storage call that started runs to
	// its end so that the session actor's view matches the storage.
	ctx := r.ctx
	if ctx.Done() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	observe := r.kind.OnStorage
	var start time.Duration
	if observe != nil {
		start = time.Since(r.kind.epoch) // a monotonic reading only: half the cost of time.Now
	}
	defer func() {
		if p := recover(); p != nil {
			res = storageResult{err: fmt.Errorf("storage panicked: %v", p)}
		}
		if observe != nil {
			call := r.code
			if call == stDeleteFound {
				call = StorageDelete
			}
			observe(ctx, call, time.Since(r.kind.epoch)-start, res.err)
		}
	}()
	b, v := r.kind.bytes, r.kind.versioned
	switch {
	case r.code == stRead && v != nil:
		res.data, res.version, res.err = v.LoadVersioned(ctx, r.id)
	case r.code == stRead:
		res.data, res.err = b.Load(ctx, r.id)
	case r.code == stWrite && v != nil:
		var cur []byte
		var curVersion uint64
		res.version, cur, curVersion, res.err = v.SaveIf(ctx, r.id, r.data, record.Unix(r.expires), r.version)
		if res.err != nil {
			res.data, res.version = cur, curVersion
		}
	case r.code == stWrite:
		res.err = b.Save(ctx, r.id, r.data, record.Unix(r.expires))
	case r.code == stDeleteFound:
		res.found, res.err = r.kind.reporter.DeleteFound(ctx, r.id)
	default:
		res.err = b.Delete(ctx, r.id)
	}
	return res
}

// stallAfter is how long a storage call may run before its storage actor
// is counted as stalled and replaced, so that calls that hang never hold
// every storage actor: the pool keeps its size in healthy actors.
const stallAfter = time.Second

// maxStalled bounds the stalled storage actors kept waiting for their
// storage at once; past it, no replacement is made and new calls wait for
// a storage actor to come back. (Each session has one call at a time, so it
// also takes that many sessions whose storage hangs.)
const maxStalled = 1024

// storagePool is the System's storage actors. Any idle one takes the next
// call, so a call that hangs delays only its own session; the pool bounds
// how many calls run against the storages at once (size, plus the stalled
// ones it replaced).
type storagePool struct {
	sys     *System
	idle    chan *storer // storage actors waiting for a call
	stalled atomic.Int32 // stalled storage actors not yet finished

	mu     sync.Mutex // protects closed
	closed bool       // no storage actor returns to idle
}

// storer is one storage actor.
type storer struct {
	pool  *storagePool
	pid   *actor.PID
	timer *time.Timer // fires when a call stalls

	mu      sync.Mutex // protects busy and retired
	busy    bool
	retired bool // replaced for stalling: stop after the call
}

func newStoragePool(sys *System, size int) *storagePool {
	p := &storagePool{sys: sys, idle: make(chan *storer, size+maxStalled)}
	for range size {
		p.spawn()
	}
	return p
}

func (p *storagePool) spawn() {
	w := &storer{pool: p}
	w.timer = time.AfterFunc(time.Hour, w.stall)
	w.timer.Stop()
	p.sys.storersWG.Add(1)
	w.pid = p.sys.as.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return w }))
	p.idle <- w
}

// call runs req on an idle storage actor and waits for its answer. Once
// sent, a call is never abandoned: the session's actor waits for it.
func (p *storagePool) call(req *storageReq) storageResult {
	w := <-p.idle
	p.sys.as.Root.Send(w.pid, req)
	return <-req.reply
}

// Receive implements actor.Actor.
func (w *storer) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *storageReq:
		w.mu.Lock()
		w.busy = true
		w.mu.Unlock()
		w.timer.Reset(stallAfter)
		res := m.do()
		w.timer.Stop()
		w.mu.Lock()
		w.busy = false
		retired := w.retired
		w.mu.Unlock()
		m.reply <- res
		p := w.pool
		p.mu.Lock()
		closed := p.closed
		if !closed && !retired {
			p.idle <- w // never blocks: the channel holds every storage actor
		}
		p.mu.Unlock()
		if retired {
			p.stalled.Add(-1)
		}
		if closed || retired {
			c.Stop(c.Self())
		}
	case *actor.Stopped:
		w.pool.sys.storersWG.Done()
	}
}

// stall replaces a storage actor whose call has run for stallAfter.
func (w *storer) stall() {
	p := w.pool
	w.mu.Lock()
	replace := w.busy && !w.retired && p.stalled.Load() < maxStalled
	if replace {
		w.retired = true
		p.stalled.Add(1)
	}
	w.mu.Unlock()
	if !replace {
		return
	}
	p.sys.log.Warn("engine: a storage call has run for over a second; its storage actor is replaced", "after", stallAfter)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed { // under mu, so that close never misses the new one
		p.spawn()
	}
}

// close stops the idle storage actors; busy ones stop after their call.
// The session actors have all stopped, so none is busy but stalled ones.
func (p *storagePool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	for {
		select {
		case w := <-p.idle:
			w.timer.Stop()
			p.sys.as.Root.Stop(w.pid)
		default:
			return
		}
	}
}
