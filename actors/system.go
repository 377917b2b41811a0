package actors

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/steward-sessions/steward/storage"
)

// ErrClosed is returned for operations started after Close began.
var ErrClosed = errors.New("engine: closed")

// ErrStorage wraps every error that comes from a storage, so that callers
// can tell "the storage failed" (answer 503) from their own mistakes.
var ErrStorage = errors.New("engine: storage failed")

// ErrConflict is returned when an update kept conflicting with writes of
// other engine instances (a Versioned storage) and gave up after
// maxConflicts attempts.
var ErrConflict = errors.New("engine: too many conflicting writes from other instances")

// ErrPanic wraps a panic raised by an update function inside a session
// actor. The session keeps its previous value.
var ErrPanic = errors.New("engine: update function panicked")

// Config configures a System. Zero fields take the defaults given.
type Config struct {
	// Logger receives the engine's and protoactor's logs. Nil: discarded.
	Logger *slog.Logger
	// Now is the clock for session expiry. Nil: time.Now.
	Now func() time.Time
	// Shards is the number of dispatcher shards, rounded up to a power of
	// two. Zero: 256.
	Shards int
	// StorageActors is the number of storage actors, which bounds the
	// concurrent calls into storages. Zero: 8 × GOMAXPROCS.
	StorageActors int
	// PassivateAfter is how long a session actor stays alive without
	// messages before it stops. Zero: one minute.
	PassivateAfter time.Duration
}

// Kind is one registered session kind as the actors see it.
type Kind struct {
	Name     string
	Storage  storage.Storage
	Idle     time.Duration // sliding idle timeout; 0: none
	Lifetime time.Duration // absolute lifetime from creation; 0: none
	Grace    time.Duration // how long a renewed ID keeps answering
	NewID    func() (string, error)

	index  int
	bytes  storage.BytesStorage // Storage, or a buffering view of it
	inline bool                 // Storage never blocks: call it from the session actor
	// versioned is Storage's compare-and-set capability, nil without it:
	// shared by several engine instances, so reads go to the storage and
	// writes are conditional.
	versioned storage.Versioned
	touch     time.Duration // persist a sliding expiry once it moved this much
}

// Stats are counters of a running System.
type Stats struct {
	Live       int64 // session actors alive now
	Spawned    int64 // session actors started since the start
	Passivated int64 // session actors stopped because they were idle
}

// System is the actor side of an engine: the dispatcher that routes
// operations to session actors, the session actors themselves and the
// storage actors, all on one protoactor ActorSystem.
type System struct {
	as      *actor.ActorSystem
	log     *slog.Logger
	now     func() time.Time
	seed    maphash.Seed
	shards  []shard
	mask    uint64
	started time.Time
	idle    time.Duration // PassivateAfter

	storers   []*actor.PID
	sessProps []actor.PropsOption

	kindsMu sync.Mutex
	kinds   []*Kind

	live, spawned, passivated atomic.Int64
	sessionsWG                sync.WaitGroup // one per live session actor
	storersWG                 sync.WaitGroup // one per live storage actor

	stopJanitor chan struct{}
	janitorDone chan struct{}
	closeOnce   sync.Once     // closes stopJanitor
	stopOnce    sync.Once     // stops the storage actors
	closing     chan struct{} // a one-slot semaphore: one Close at a time
	closed      bool          // Close finished; protected by the closing slot
}

type key struct {
	kind int
	id   string
}

// shard is one part of the dispatcher's registry of live session actors.
type shard struct {
	mu      sync.Mutex
	entries map[key]*entry // protected by mu
	closing atomic.Bool    // set under mu; no new operations are admitted once true
	// inflight counts admitted operations that have not been answered yet.
	inflight atomic.Int64
	drained  chan struct{} // receives when inflight reaches zero while closing
	_        [40]byte      // keep shards on separate cache lines
}

// entry is the dispatcher's handle on one live session actor.
type entry struct {
	pid *actor.PID
	sa  *sessionActor
	// pending counts messages sent to the actor and not yet fully handled.
	// It is only incremented under the shard's lock, so a check of zero
	// under that lock means no message is on its way.
	pending  atomic.Int32
	lastUsed atomic.Int64 // nanoseconds since System start
	// empty says the actor holds no session (an unknown ID was asked for):
	// the janitor stops it at its next round instead of keeping it for
	// PassivateAfter.
	empty atomic.Bool
	// passivating is set under the shard's lock when a passivate message is
	// on its way, so that only one is.
	passivating bool
}

// NewSystem starts a System.
func NewSystem(cfg Config) *System {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	n := cfg.Shards
	if n <= 0 {
		n = 256
	}
	size := 1
	for size < n {
		size <<= 1
	}
	workers := cfg.StorageActors
	if workers <= 0 {
		workers = 8 * runtime.GOMAXPROCS(0)
	}
	idle := cfg.PassivateAfter
	if idle <= 0 {
		idle = time.Minute
	}
	s := &System{
		log:         log,
		now:         now,
		seed:        maphash.MakeSeed(),
		shards:      make([]shard, size),
		mask:        uint64(size - 1),
		started:     time.Now(),
		idle:        idle,
		stopJanitor: make(chan struct{}),
		janitorDone: make(chan struct{}),
		closing:     make(chan struct{}, 1),
	}
	for i := range s.shards {
		s.shards[i].entries = make(map[key]*entry)
		s.shards[i].drained = make(chan struct{}, 1)
	}
	protoLog := log.With("lib", "protoactor")
	s.as = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return protoLog }))

	// Session actors run on the fair mailbox: an operation on an idle
	// session runs on the caller's goroutine, and only that operation.
	s.sessProps = []actor.PropsOption{actor.WithMailbox(newFairMailbox)}
	// Storage actors run on protoactor's default dispatcher, on goroutines
	// of their own, so that storage I/O never runs on a caller's goroutine
	// for another caller's session.
	s.storers = make([]*actor.PID, workers)
	for i := range s.storers {
		st := &storageActor{sys: s}
		s.storersWG.Add(1)
		s.storers[i] = s.as.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return st }))
	}
	go s.janitor()
	return s
}

// AddKind registers k. Kinds are added before operations on them start.
func (s *System) AddKind(k *Kind) {
	s.kindsMu.Lock()
	defer s.kindsMu.Unlock()
	k.index = len(s.kinds)
	k.bytes = storage.AsBytes(k.Storage)
	if nb, ok := k.Storage.(storage.NonBlocking); ok {
		k.inline = nb.NonBlocking()
	}
	k.versioned = storage.VersionedOf(k.Storage)
	k.touch = time.Minute
	if k.Idle > 0 && k.Idle/10 < k.touch {
		k.touch = k.Idle / 10
	}
	s.kinds = append(s.kinds, k)
}

// Stats returns the System's counters.
func (s *System) Stats() Stats {
	return Stats{Live: s.live.Load(), Spawned: s.spawned.Load(), Passivated: s.passivated.Load()}
}

func (s *System) hash(k *Kind, id string) uint64 {
	return maphash.String(s.seed, id) ^ uint64(k.index)*0x9e3779b97f4a7c15
}

func (s *System) sinceStart() int64 { return int64(time.Since(s.started)) }

// Do runs op on the session id of kind k and waits for its result. If ctx
// ends before the session actor starts op, op is not applied; once started,
// it completes and its result is dropped.
func (s *System) Do(ctx context.Context, k *Kind, id string, op *Op) Result {
	if err := ctx.Err(); err != nil {
		return Result{Err: err}
	}
	op.ctx = ctx
	op.kind = k
	op.reply = getReply()
	h := s.hash(k, id)
	op.origin = &s.shards[h&s.mask]
	if !s.route(k, id, h, op, true) {
		putReply(op.reply)
		return Result{Err: ErrClosed}
	}
	select {
	case res := <-op.reply:
		putReply(op.reply)
		return res
	case <-ctx.Done():
		// The channel is left to the garbage collector: the actor may still
		// answer into it.
		return Result{Err: ctx.Err()}
	}
}

// route delivers msg to the live actor of (k, id), spawning it if needed.
// With admit, the operation is counted on its shard and refused once the
// shard is closing; forwarded operations were admitted already.
func (s *System) route(k *Kind, id string, h uint64, op *Op, admit bool) bool {
	sh := &s.shards[h&s.mask]
	kk := key{k.index, id}
	sh.mu.Lock()
	if admit {
		if sh.closing.Load() {
			sh.mu.Unlock()
			return false
		}
		sh.inflight.Add(1)
	}
	e := sh.entries[kk]
	if e == nil {
		e = s.spawnLocked(sh, k, id, h)
	}
	e.pending.Add(1)
	sh.mu.Unlock()
	e.lastUsed.Store(s.sinceStart())
	s.as.Root.Send(e.pid, op)
	return true
}

func (s *System) spawnLocked(sh *shard, k *Kind, id string, h uint64) *entry {
	e := &entry{}
	e.sa = &sessionActor{sys: s, kind: k, id: id, hash: h, shard: sh, entry: e, storageReply: make(chan storageResult, 1)}
	sa := e.sa
	s.sessionsWG.Add(1)
	s.live.Add(1)
	s.spawned.Add(1)
	e.pid = s.as.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return sa }, s.sessProps...))
	sh.entries[key{k.index, id}] = e
	return e
}

// finish answers op and releases its admission.
func (s *System) finish(op *Op, res Result) {
	op.reply <- res
	sh := op.origin
	if sh.inflight.Add(-1) == 0 && sh.closing.Load() {
		select {
		case sh.drained <- struct{}{}:
		default:
		}
	}
}

// janitor passivates idle session actors.
func (s *System) janitor() {
	defer close(s.janitorDone)
	tick := min(max(s.idle/4, time.Millisecond), 10*time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	var batch []*entry
	for {
		select {
		case <-s.stopJanitor:
			return
		case <-t.C:
		}
		limit := s.sinceStart() - int64(s.idle)
		for i := range s.shards {
			sh := &s.shards[i]
			batch = batch[:0]
			sh.mu.Lock()
			if sh.closing.Load() {
				sh.mu.Unlock()
				continue
			}
			for _, e := range sh.entries {
				idle := e.lastUsed.Load() <= limit || e.empty.Load()
				if !e.passivating && e.pending.Load() == 0 && idle {
					e.passivating = true
					e.pending.Add(1)
					batch = append(batch, e)
				}
			}
			sh.mu.Unlock()
			for _, e := range batch {
				s.as.Root.Send(e.pid, passivate{})
			}
		}
	}
}

// Close drains the System: new operations fail with ErrClosed, admitted
// ones finish, every session actor flushes and stops, then the storage
// actors stop. If ctx ends first, Close returns its error and may be called
// again to finish.
func (s *System) Close(ctx context.Context) error {
	select {
	case s.closing <- struct{}{}:
		defer func() { <-s.closing }()
	case <-ctx.Done():
		return fmt.Errorf("engine: close: waiting for another Close: %w", ctx.Err())
	}
	if s.closed {
		return nil
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.closing.Store(true)
		sh.mu.Unlock()
	}
	for i := range s.shards {
		sh := &s.shards[i]
		for sh.inflight.Load() != 0 {
			select {
			case <-sh.drained:
			case <-ctx.Done():
				return fmt.Errorf("engine: close: waiting for operations: %w", ctx.Err())
			}
		}
	}
	s.closeOnce.Do(func() { close(s.stopJanitor) })
	select {
	case <-s.janitorDone:
	case <-ctx.Done():
		return fmt.Errorf("engine: close: %w", ctx.Err())
	}
	// Every admitted operation is answered and no new one can start, so the
	// only messages left in flight are passivations; stop every actor.
	var all []*entry
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for _, e := range sh.entries {
			if !e.passivating {
				e.passivating = true
				e.pending.Add(1)
				all = append(all, e)
			}
		}
		sh.mu.Unlock()
	}
	// Each passivation may flush to the storage: send them from a few
	// goroutines so that Close can give up on its ctx.
	workers := min(len(all), 4*runtime.GOMAXPROCS(0))
	for w := range workers {
		go func() {
			for i := w; i < len(all); i += workers {
				s.as.Root.Send(all[i].pid, passivate{final: true})
			}
		}()
	}
	if err := waitGroup(ctx, &s.sessionsWG); err != nil {
		return fmt.Errorf("engine: close: waiting for session actors: %w", err)
	}
	// Session actors flush through the storage actors, so those stop last.
	s.stopOnce.Do(func() {
		for _, pid := range s.storers {
			s.as.Root.Stop(pid)
		}
	})
	if err := waitGroup(ctx, &s.storersWG); err != nil {
		return fmt.Errorf("engine: close: waiting for storage actors: %w", err)
	}
	s.as.Shutdown()
	s.closed = true
	return nil
}

// waitGroup waits for wg or ctx, whichever comes first.
func waitGroup(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// expiry is the instant a session created at created and used at now
// expires: the sooner of its idle timeout and its lifetime; 0 for never.
func (k *Kind) expiry(created, now int64) int64 {
	var e int64
	if k.Idle > 0 {
		e = now + int64(k.Idle)
	}
	if k.Lifetime > 0 {
		if l := created + int64(k.Lifetime); e == 0 || l < e {
			e = l
		}
	}
	return e
}
