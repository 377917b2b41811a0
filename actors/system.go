package actors

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/steward-sessions/steward/internal/record"
	"github.com/steward-sessions/steward/storage"
)

// Config is what a System runs with. The engine resolves every default
// (engine.Options documents them); each field here must be set.
type Config struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Shards is the number of dispatcher shards, a power of two.
	Shards int
	// StorageActors is the number of storage actors, which bounds the
	// storage calls that run at once.
	StorageActors int
	// PassivateAfter is how long a session actor stays alive without
	// operations before it stops.
	PassivateAfter time.Duration
	// MaxLive bounds the live session actors: past it, the least recently
	// used idle ones passivate.
	MaxLive int
}

// Kind is one registered session kind as the actors see it.
type Kind struct {
	Name    string
	Storage storage.Storage
	Expiry  record.Policy
	Grace   time.Duration // how long a renewed ID keeps answering
	NewID   func() (string, error)
	// Intern marks the engine's own records (owners' indexes): written as
	// such, and never read as a session by another kind.
	Intern bool
	// Emit, when set, is given every Event of the kind's sessions, on the
	// session's actor: it must not block.
	Emit func(Event)
	// OnStorage, if set, is told of every storage call of the kind once it
	// returned, before the session actor goes on: which call, how long the
	// storage took, and its error as the storage returned it
	// (storage.ErrNotFound and storage.ErrConflict included; a panic as an
	// error). ctx is the operation's, without its cancellation. It runs on
	// the goroutine that made the call: it must be quick and never block.
	// The engine records metrics with it.
	OnStorage func(ctx context.Context, call StorageCall, took time.Duration, err error)

	index int
	bytes storage.BytesStorage // Storage, or a buffering view of it
	// versioned is Storage's compare-and-set capability, nil without it:
	// shared by several engine instances, so reads go to the storage and
	// writes are conditional.
	versioned storage.Versioned
	keeper    storage.Keeper // Storage's capability to keep a passivated value at hand, nil without it
	// reporter is Storage's capability to report the values it removes on
	// its own because they expired, used when the kind emits events (nil
	// otherwise): the actor's own removals of expired sessions then emit
	// only what they removed, and StorageExpired emits the rest.
	reporter storage.ExpiryReporter
	touch    time.Duration // persist a sliding expiry once it moved this much
	inline   bool          // Storage never blocks: call it from the session actor
	health   health        // whether Storage is known to be down
	epoch    time.Time     // the System's start: OnStorage's durations are read against it
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
	storers *storagePool

	kindsMu sync.Mutex
	kinds   []*Kind

	live, spawned, passivated, evicted atomic.Int64
	sessionsWG                         sync.WaitGroup // one per live session actor
	storersWG                          sync.WaitGroup // one per live storage actor

	stopJanitor chan struct{}
	janitorDone chan struct{}
	stopOnce    sync.Once     // closes stopJanitor
	closing     chan struct{} // a one-slot semaphore: one Close at a time
	closed      bool          // Close finished; protected by the closing slot
}

type key struct {
	kind int
	d    record.Digest
}

// shard is one part of the dispatcher's registry of live session actors.
type shard struct {
	mu      sync.Mutex
	entries map[key]*entry // protected by mu
	// lru links the entries that are not passivating, most recently used
	// first, around a sentinel; listed counts them. Both protected by mu.
	lru     entry
	listed  int
	cap     int         // listed actors past which idle ones passivate
	closing atomic.Bool // set under mu; no new operations are admitted once true
}

// entry is the dispatcher's handle on one live session actor. Its fields
// but pending and inFn are protected by its shard's mu.
type entry struct {
	pid *actor.PID
	sa  *sessionActor
	// pending counts messages sent to the actor and not yet fully handled.
	// It is only incremented under the shard's lock, so a check of one (the
	// message being handled) under that lock means no other is on its way.
	pending atomic.Int32
	// inFn says the actor is running an update function, so that an
	// operation on this session from inside it can be refused instead of
	// waiting for itself.
	inFn atomic.Bool
	// inlineUntil is, for a kind whose storage may block, the instant
	// (Unix ns, the System's clock) before which a read of this session
	// needs no storage call, so it may run on the caller's goroutine; 0:
	// none may. The actor sets it at the end of each of its turns.
	inlineUntil atomic.Int64
	lastUsed    int64 // nanoseconds since System start
	prev, next  *entry
	// passivating is set when a passivate message is on its way, so that
	// only one is.
	passivating bool
}

// NewSystem starts a System.
func NewSystem(cfg Config) *System {
	s := &System{
		log:         cfg.Logger,
		now:         cfg.Now,
		seed:        maphash.MakeSeed(),
		shards:      make([]shard, cfg.Shards),
		mask:        uint64(cfg.Shards - 1),
		started:     time.Now(),
		idle:        cfg.PassivateAfter,
		stopJanitor: make(chan struct{}),
		janitorDone: make(chan struct{}),
		closing:     make(chan struct{}, 1),
	}
	perShard := max(1, (cfg.MaxLive+cfg.Shards-1)/cfg.Shards)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.entries = make(map[key]*entry)
		sh.lru.prev, sh.lru.next = &sh.lru, &sh.lru
		sh.cap = perShard
	}
	protoLog := s.log.With("lib", "protoactor")
	s.as = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return protoLog }))
	// Storage actors run on protoactor's default dispatcher, on goroutines
	// of their own: storage I/O never runs on a caller's goroutine.
	s.storers = newStoragePool(s, cfg.StorageActors)
	go s.janitor()
	return s
}

// AddKind registers k. Kinds are added before operations on them start.
func (s *System) AddKind(k *Kind) {
	s.kindsMu.Lock()
	defer s.kindsMu.Unlock()
	k.index = len(s.kinds)
	k.bytes = storage.AsBytes(k.Storage)
	nb, _ := k.Storage.(storage.NonBlocking)
	k.inline = nb != nil && nb.NonBlocking()
	k.versioned = storage.VersionedOf(k.Storage)
	if k.versioned == nil {
		k.keeper = storage.KeeperOf(k.Storage)
		if k.Emit != nil {
			k.reporter = storage.ExpiryReporterOf(k.Storage)
		}
	}
	k.touch = k.Expiry.Touch()
	k.epoch = s.started
	s.kinds = append(s.kinds, k)
}

// ExpiryReporter returns the capability of k's storage through which
// StorageExpired must be told of the values the storage removes on its own,
// or nil: k emits no events, or its storage does not report (a Versioned
// storage's expiries are its own; see the engine's docs).
func (k *Kind) ExpiryReporter() storage.ExpiryReporter { return k.reporter }

// StorageExpired is told that k's storage removed rec, stored under the
// storage ID id, because it expired (storage.ExpiryReporter): it emits the
// session's expired event exactly once. If an actor holds the session, the
// actor decides, in its turn: it may have slid the expiry past what the
// storage held (it then writes the session back, and there is no event),
// or have expired the session itself (its own removal then found nothing
// and emitted nothing). Otherwise the event is emitted here from the
// record. It never blocks: it may run inside a storage call.
func (s *System) StorageExpired(k *Kind, id string, rec []byte) {
	d, ok := record.ParseStorageID(id)
	if !ok || k.Emit == nil {
		return
	}
	r, err := record.Decode(rec)
	if err != nil || r.Intern != k.Intern || r.Alias {
		return // not a session of k's (an owner's index, a renewed ID's forwarder)
	}
	sh := &s.shards[s.hash(k, d)&s.mask]
	sh.mu.Lock()
	e := sh.entries[key{k.index, d}]
	if e != nil {
		e.pending.Add(1) // lastUsed stays: a report is no use of the session
	}
	sh.mu.Unlock()
	if e == nil {
		k.Emit(expiredEvent(k, d, r, s.now().UnixNano()))
		return
	}
	op := &Op{Code: opStorageExpired, swept: &r, ctx: context.Background(), kind: k, reply: make(chan Result, 1)}
	op.state.Store(opQueued)
	s.as.Root.Send(e.pid, op)
}

// expiredEvent is the expired event of the session of k whose last record
// was r.
func expiredEvent(k *Kind, d record.Digest, r record.Record, now int64) Event {
	p := k.Expiry
	if r.Own != nil {
		p = *r.Own
	}
	return Event{Code: EventExpired, D: d, Owner: r.Owner, At: now,
		Absolute: p.Lifetime > 0 && r.Expires >= r.Created+int64(p.Lifetime)}
}

// Live returns the number of session actors alive now.
func (s *System) Live() int64 { return s.live.Load() }

// Spawned returns the number of session actors started so far.
func (s *System) Spawned() int64 { return s.spawned.Load() }

// Passivated returns the number of session actors stopped for being idle,
// evicted ones included.
func (s *System) Passivated() int64 { return s.passivated.Load() }

// Evicted returns the number of session actors passivated early because
// the live bound was reached.
func (s *System) Evicted() int64 { return s.evicted.Load() }

// hash picks the dispatcher shard of (k, d).
func (s *System) hash(k *Kind, d record.Digest) uint64 {
	return maphash.Bytes(s.seed, d[:]) ^ uint64(k.index)*0x9e3779b97f4a7c15
}

func (s *System) sinceStart() int64 { return int64(time.Since(s.started)) }

// Do runs op on the session of kind k whose ID has digest d and waits for its result, or for
// ctx. If ctx ends first: an operation that has not reached its first write
// is never applied (Canceled); one whose write is with the storage
// completes in the actor, and the caller waits a short grace for it before
// answering MaybeApplied. A result that is ready is always returned.
func (s *System) Do(ctx context.Context, k *Kind, d record.Digest, op *Op) Result {
	if err := ctx.Err(); err != nil {
		return Result{Status: Canceled, Err: err}
	}
	op.ctx, op.kind, op.reply, op.hops, op.now = ctx, k, getReply(), 0, 0
	op.state.Store(opQueued)
	switch s.route(k, d, op, true) {
	case routeClosed:
		putReply(op.reply)
		return Result{Status: Closed}
	case routeReentrant:
		putReply(op.reply)
		return Result{Status: Reentrant}
	}
	select {
	case res := <-op.reply:
		putReply(op.reply)
		return res
	case <-ctx.Done():
		return abandon(op)
	}
}

type routeResult uint8

const (
	routed routeResult = iota
	routeClosed
	routeReentrant
)

// route delivers op to the live actor of (k, d), spawning it if needed.
// With admit, the operation is refused once the shard is closing;
// forwarded operations were admitted already.
func (s *System) route(k *Kind, d record.Digest, op *Op, admit bool) routeResult {
	sh := &s.shards[s.hash(k, d)&s.mask]
	kk := key{k.index, d}
	sh.mu.Lock()
	if admit && sh.closing.Load() {
		sh.mu.Unlock()
		return routeClosed
	}
	var evict []*entry
	e := sh.entries[kk]
	switch {
	case e == nil:
		e = s.spawnLocked(sh, k, d)
		evict = s.evictLocked(sh)
	case e.inFn.Load() && InUpdate():
		// Asked from inside an update function while this session runs
		// one: it is that function (which would wait for itself), or one
		// of another session whose wait could close a cycle.
		sh.mu.Unlock()
		return routeReentrant
	case e.prev != nil: // listed: not passivating
		sh.unlinkLocked(e)
		sh.pushFrontLocked(e)
	}
	e.pending.Add(1)
	e.lastUsed = s.sinceStart()
	sh.mu.Unlock()
	for _, v := range evict {
		s.as.Root.Send(v.pid, passivate{})
	}
	s.as.Root.Send(e.pid, op)
	return routed
}

func (s *System) spawnLocked(sh *shard, k *Kind, d record.Digest) *entry {
	e := &entry{}
	sa := &sessionActor{sys: s, kind: k, d: d, id: d.StorageID(), shard: sh, entry: e, storageReply: make(chan storageResult, 1)}
	e.sa = sa
	s.sessionsWG.Add(1)
	s.live.Add(1)
	s.spawned.Add(1)
	mb := func() actor.Mailbox {
		sa.mb = &fairMailbox{inline: k.inline, e: e, now: s.now}
		return sa.mb
	}
	e.pid = s.as.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return sa }, actor.WithMailbox(mb)))
	sh.entries[key{k.index, d}] = e
	if sh.closing.Load() {
		// Reached by an operation forwarded during Close: it stops once
		// that is done.
		e.passivating, sa.finalPending = true, true
	} else {
		sh.pushFrontLocked(e)
	}
	return e
}

// evictLocked picks the least recently used idle actors of sh to passivate
// while sh holds more than its share of the live bound, looking at a few
// of the oldest only: busy actors stay.
func (s *System) evictLocked(sh *shard) []*entry {
	over := sh.listed - sh.cap
	if over <= 0 {
		return nil
	}
	var out []*entry
	e := sh.lru.prev
	for looked := 0; e != &sh.lru && looked < 8 && len(out) < over; looked++ {
		prev := e.prev
		if e.pending.Load() == 0 {
			sh.markPassivatingLocked(e)
			out = append(out, e)
		}
		e = prev
	}
	s.evicted.Add(int64(len(out)))
	return out
}

// markPassivatingLocked accounts for a passivate message about to be sent
// to e, and takes e off the LRU list until it stays or goes.
func (sh *shard) markPassivatingLocked(e *entry) {
	e.passivating = true
	e.pending.Add(1)
	sh.unlinkLocked(e)
}

// stayLocked puts back an entry whose passivation was called off.
func (sh *shard) stayLocked(e *entry) {
	e.passivating = false
	sh.pushFrontLocked(e)
}

func (sh *shard) pushFrontLocked(e *entry) {
	e.prev, e.next = &sh.lru, sh.lru.next
	sh.lru.next.prev = e
	sh.lru.next = e
	sh.listed++
}

func (sh *shard) unlinkLocked(e *entry) {
	if e.prev == nil {
		return
	}
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
	sh.listed--
}

// removeLocked takes e out of the registry: the next operation on its ID
// spawns a fresh actor.
func (sh *shard) removeLocked(e *entry) {
	k := key{e.sa.kind.index, e.sa.d}
	if sh.entries[k] == e {
		delete(sh.entries, k)
		sh.unlinkLocked(e)
	}
}

// janitor passivates idle session actors, oldest first. It only sends
// messages: a passivation runs on its actor's goroutine, so one slow flush
// never holds up the others.
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
			for e := sh.lru.prev; e != &sh.lru && e.lastUsed <= limit; {
				prev := e.prev
				if e.pending.Load() == 0 {
					sh.markPassivatingLocked(e)
					batch = append(batch, e)
				}
				e = prev
			}
			sh.mu.Unlock()
			for _, e := range batch {
				s.as.Root.Send(e.pid, passivate{})
			}
		}
	}
}

// Close drains the System: new operations fail with Closed, every session
// actor finishes the operations on its way, flushes and stops, then the
// storage actors stop. A session whose storage hangs holds up only itself:
// if ctx ends first, Close returns an error saying how many sessions are
// not flushed yet, and may be called again to finish.
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
	s.stopOnce.Do(func() { close(s.stopJanitor) })
	select {
	case <-s.janitorDone: // it only sends messages: never long
	case <-ctx.Done():
		return fmt.Errorf("engine: close: %w", ctx.Err())
	}
	var batch []*entry
	for i := range s.shards {
		sh := &s.shards[i]
		batch = batch[:0]
		sh.mu.Lock()
		sh.closing.Store(true)
		for _, e := range sh.entries {
			if !e.passivating {
				sh.markPassivatingLocked(e)
				batch = append(batch, e)
			}
		}
		sh.mu.Unlock()
		// Each final passivation queues behind the operations already on
		// their way to its actor and runs on the actor's goroutine.
		for _, e := range batch {
			s.as.Root.Send(e.pid, passivate{final: true})
		}
	}
	if err := waitGroup(ctx, &s.sessionsWG); err != nil {
		return fmt.Errorf("engine: close: %d sessions not flushed yet (call Close again to finish): %w", s.live.Load(), err)
	}
	// Session actors flush through the storage actors, so those stop last.
	s.storers.close()
	if err := waitGroup(ctx, &s.storersWG); err != nil {
		return fmt.Errorf("engine: close: %d storage calls still running (call Close again to finish): %w", s.storers.stalled.Load(), err)
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
