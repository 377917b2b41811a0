package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"runtime"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/steward-sessions/steward/actors"
	"github.com/steward-sessions/steward/internal/record"
	"github.com/steward-sessions/steward/storage"
	"go.opentelemetry.io/otel/metric"
)

// Options configure an Engine. The zero value means the defaults given on
// each field.
type Options struct {
	// Logger receives the engine's logs and protoactor's. Nil: nothing is
	// logged.
	Logger *slog.Logger

	// Now is the clock used for session expiry. Nil: time.Now. Tests inject
	// a fake clock here.
	Now func() time.Time

	// PassivateAfter is how long a session actor stays in memory without
	// operations before it stops; the next operation starts a fresh one
	// that reads the storage. Zero: one minute.
	PassivateAfter time.Duration

	// Shards is the number of dispatcher shards, rounded up to a power of
	// two. Zero: 256.
	Shards int

	// StorageActors bounds the storage calls that run at once. Any idle
	// storage actor takes the next call, so a call that hangs delays only
	// its own session; one that runs for over a second has its storage
	// actor replaced, so hung calls never hold them all. Zero: eight per
	// GOMAXPROCS.
	StorageActors int

	// MaxLiveActors bounds the session actors in memory, so that memory is
	// sized by configuration and not by traffic: past it, the least
	// recently used idle actors passivate early (their values are in the
	// storage already). An operation on an ID that has no session keeps no
	// actor at all. Busy actors are never evicted, so the bound can be
	// exceeded by the sessions with operations in flight. Zero:
	// DefaultMaxLiveActors.
	MaxLiveActors int

	// MeterProvider receives the engine's metrics through the
	// OpenTelemetry metric API; the engine never starts an exporter and
	// never uses the global provider. Nil: no metrics, and no cost on any
	// operation. The instruments (a Prometheus exporter renders the dots
	// as underscores and adds _seconds to durations and _total to
	// counters):
	//
	//   - steward.operations {operation}, counter: operations by kind, op
	//     and outcome. op is get, set, update, get_or_set, clear, renew,
	//     invalidate, create, bind_owner, owner, sessions,
	//     invalidate_owner (InvalidateOthers too), invalidate_handle,
	//     each, set_lifetime or take (Pop too) (RawKind.Load counts as
	//     get, Store as set; Kind.ID is not counted). outcome is ok, no_session, canceled,
	//     maybe_applied, storage_error, conflict, panic, reentrant,
	//     renewed, too_late, closed or error (the update function's own
	//     error, a codec's, or a misuse such as ErrNoBinding).
	//   - steward.operation.duration (s), histogram: how long operations
	//     took, by kind and op.
	//   - steward.storage.duration (s), histogram: how long storage calls
	//     took, by kind and call (load, save, delete); its count is the
	//     number of calls.
	//   - steward.storage.errors {error}, counter: storage calls that
	//     failed, by kind and call ("not found" and conflicts are not
	//     failures).
	//   - steward.storage.conflicts {conflict}, counter: conditional
	//     writes a Versioned storage (Redis) refused because another
	//     instance wrote first, by kind.
	//   - steward.actors.live {actor}, gauge: session actors in memory
	//     (Stats.LiveActors); steward.actors.spawned, steward.passivations
	//     and steward.evictions {actor}, counters: Stats' other fields.
	//   - steward.cache.hits and steward.cache.misses {read}, counters,
	//     and steward.cache.entries {entry}, gauge: the CacheStats of a
	//     kind's Storage that has a Stats method (storage.Cache), by kind;
	//     a cache shared by several kinds is reported under the first.
	//
	// Durations are recorded in buckets from 10 µs to 10 s; an SDK View
	// may choose others, or drop the histograms. Attributes never hold a
	// session ID. Counters are kept in atomics and reported at each
	// collection; the histograms cost one measurement per operation and
	// one per storage call (with the SDK at v1.21, some 300 ns each) and
	// no allocation. Close stops the reports.
	MeterProvider metric.MeterProvider
}

// DefaultMaxLiveActors is the default of Options.MaxLiveActors: about
// 30 MB of actors, enough for the hot sessions of a large server; the
// others live in their storage and cost a read when they come back.
const DefaultMaxLiveActors = 20_000

// Stats are counters of a running Engine.
type Stats struct {
	// LiveActors is the number of session actors in memory now.
	LiveActors int64
	// Spawned counts session actors started since New.
	Spawned int64
	// Passivated counts session actors stopped for being idle, evicted
	// ones included.
	Passivated int64
	// Evicted counts session actors passivated before PassivateAfter
	// because MaxLiveActors was reached.
	Evicted int64
}

// Engine owns the actor system and the registered session kinds. Create it
// with New, register kinds with Register (or RegisterRaw), hand the kinds to
// a transport, and Close it on shutdown. An Engine is safe for concurrent
// use.
type Engine struct {
	sys *actors.System
	log *slog.Logger
	now func() time.Time
	met *metrics // nil without Options.MeterProvider

	mu     sync.Mutex // protects names, types and closed
	names  map[string]*RawKind
	types  map[reflect.Type]*RawKind
	closed bool // the storages were closed
}

// New starts an Engine.
func New(opts Options) (*Engine, error) {
	if opts.PassivateAfter < 0 || opts.Shards < 0 || opts.StorageActors < 0 || opts.MaxLiveActors < 0 {
		return nil, fmt.Errorf("%w: negative PassivateAfter, Shards, StorageActors or MaxLiveActors", ErrConfig)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	shards := 1
	for shards < orDefault(opts.Shards, 256) {
		shards <<= 1
	}
	e := &Engine{
		sys: actors.NewSystem(actors.Config{
			Logger:         log,
			Now:            now,
			Shards:         shards,
			StorageActors:  orDefault(opts.StorageActors, 8*runtime.GOMAXPROCS(0)),
			PassivateAfter: durationOr(opts.PassivateAfter, time.Minute),
			MaxLive:        orDefault(opts.MaxLiveActors, DefaultMaxLiveActors),
		}),
		log:   log,
		now:   now,
		names: make(map[string]*RawKind),
		types: make(map[reflect.Type]*RawKind),
	}
	if opts.MeterProvider != nil {
		m, err := newMetrics(opts.MeterProvider, e.Stats)
		if err != nil {
			_ = e.sys.Close(context.Background()) // nothing runs on it yet
			return nil, err
		}
		e.met = m
	}
	return e, nil
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	return Stats{
		LiveActors: e.sys.Live(),
		Spawned:    e.sys.Spawned(),
		Passivated: e.sys.Passivated(),
		Evicted:    e.sys.Evicted(),
	}
}

func orDefault(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

// Close drains the engine. Operations started afterwards fail with
// ErrClosed; operations already admitted finish, so every write that was
// acknowledged is in its storage when Close returns; every actor stops;
// then the storages that have a Close method are closed, each once. No
// goroutine of the engine is left behind.
//
// If ctx ends before the drain completes, Close returns an error wrapping
// ctx's error; the engine stays closed to new operations and Close may be
// called again to finish. Calling Close after it succeeded returns nil.
func (e *Engine) Close(ctx context.Context) error {
	if err := e.sys.Close(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	for _, k := range e.names {
		if k.unreport != nil {
			k.unreport()
		}
		if k.events != nil {
			k.events.close() // the actors have stopped: no event comes after
		}
	}
	var errs []error
	if e.met != nil {
		if err := e.met.unregister(); err != nil {
			errs = append(errs, fmt.Errorf("engine: unregistering the metrics callback: %w", err))
		}
	}
	closed := make(map[any]bool)
	for _, k := range e.names {
		c, ok := k.kind.Storage.(io.Closer) // false for client-side kinds
		if !ok {
			continue
		}
		if reflect.TypeOf(c).Comparable() {
			if closed[c] {
				continue
			}
			closed[c] = true
		}
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("engine: closing the storage of %q: %w", k.kind.Name, err))
		}
	}
	return errors.Join(errs...)
}

// KindOptions configure a session kind. The zero value of every field but
// Storage means its default.
type KindOptions struct {
	// Storage holds the kind's values on the server; only the session ID
	// travels to the client. Nil makes a client-side kind: the whole value
	// travels to the client, signed or encrypted by the transport's
	// transformers, and no actor or storage is involved. For a client-side
	// kind IdleTimeout slides on reads too (the value is resealed, and its
	// cookie sent again, once its expiry moved by a tenth of the idle
	// timeout, at most a minute), and RenewGrace and NewID do not apply. A storage that wraps a
	// storage.Versioned one (Redis) without reporting that capability is
	// refused with ErrConfig: its writes would silently lose the
	// compare-and-set (see storage.CheckVersioned).
	Storage storage.Storage

	// Codec encodes the kind's values. Nil: JSONCodec.
	Codec Codec

	// IdleTimeout ends a session that is not used for this long (sliding:
	// every operation restarts it). Zero: 30 minutes. Negative: none.
	IdleTimeout time.Duration

	// Lifetime ends a session this long after it was created, however busy
	// it is (OWASP's absolute timeout). Zero: 24 hours. Negative: none.
	Lifetime time.Duration

	// RenewGrace is how long the old ID keeps reaching the session after
	// Renew for the requests that were already in flight with it when the
	// session was renewed, so they do not lose their work; they never
	// learn the new ID, and requests that begin after the renewal get
	// ErrRenewed. Zero: 30 seconds. Negative: the old ID ends at once.
	RenewGrace time.Duration

	// NewID generates session IDs. Its IDs must be unguessable and made of
	// ASCII letters, digits, '-' and '_' (at most 128 bytes); others are
	// refused with an error. Nil: random (version 4) UUIDs, 122 random bits.
	NewID func() (string, error)

	// MaxPerOwner bounds the live sessions one owner (see
	// RawKind.BindOwner) holds at once; OwnerLimit says what a binding
	// past it does. Zero: no bound (an owner's index holds at most 1,023
	// sessions; past that, its least recently used ones are evicted).
	MaxPerOwner int

	// OwnerLimit is what BindOwner does past MaxPerOwner. Zero:
	// EvictLeastRecent.
	OwnerLimit OwnerLimit

	// OnEvent, when set, is called for every change in the life of the
	// kind's server-side sessions (see EventKind): created, renewed,
	// owner-bound, invalidated, expired, evicted. Each event is reported
	// once, by the actor that made the change, and delivered in order on a
	// goroutine of the kind's own (a slow handler delays only later
	// events; it may call the engine). Close delivers those still queued.
	// Within one process every event is delivered exactly once; across
	// crashes and instances it is at most once: an event queued when the
	// process dies is lost, and each instance reports only the changes it
	// made.
	//
	// Expiry: an actor that holds a session reports its expiry when an
	// operation or its passivation finds it expired. A session that expires
	// while no actor holds it is reported when its storage removes it, if
	// the storage says so (storage.ExpiryReporter): the directory storage
	// when its sweeper removes it (within a sweep pass of its expiry), the
	// memory storage when a read or a write in its shard finds it expired;
	// the event then comes from the sweeper's report, with the owner and
	// reason from the stored record. Such a storage is given each expiry
	// plus the touch interval (a tenth of the idle timeout, at most a
	// minute; the actor writes a sliding expiry through once it moved that
	// much), so it never removes a session that an actor still holds alive,
	// and an expired session stays in it up to that long. Of the actor's
	// removal and the storage's, exactly one finds the session, and only
	// that one reports it: still exactly once. Redis removes expired keys by TTL and says nothing, so
	// on redisstore a session is reported expired only by an actor that
	// holds it when it expires (a later request with its ID finds no
	// session and reports nothing). Two kinds sharing one storage each see
	// the storage's reports: give kinds that listen their own storage.
	OnEvent func(Event)
}

func durationOr(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

func newUUID() (string, error) {
	u, err := uuid.NewRandom()
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// register adds a kind of the given Go type (nil for RegisterRaw).
func (e *Engine) register(name string, typ reflect.Type, opts KindOptions) (*RawKind, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: empty session name", ErrConfig)
	}
	for _, c := range []byte(name) {
		if c < 0x20 || c == 0x7f {
			// Names are the transformers' associated data and go into
			// cookies and headers: no control characters.
			return nil, fmt.Errorf("%w: session name %q has a control character", ErrConfig, name)
		}
	}
	if opts.Storage != nil {
		// A wrapper that hides a compare-and-set storage would turn its
		// conditional writes into last-write-wins.
		if err := storage.CheckVersioned(opts.Storage); err != nil {
			return nil, fmt.Errorf("%w: session kind %q: %w", ErrConfig, name, err)
		}
	}
	gen := opts.NewID
	if gen == nil {
		gen = newUUID
	}
	codec := opts.Codec
	if codec == nil {
		codec = JSONCodec{}
	}
	k := &actors.Kind{
		Name:    name,
		Storage: opts.Storage,
		Expiry: record.Policy{
			Idle:     durationOr(opts.IdleTimeout, 30*time.Minute),
			Lifetime: durationOr(opts.Lifetime, 24*time.Hour),
		},
		Grace: durationOr(opts.RenewGrace, 30*time.Second),
		NewID: func() (string, error) {
			id, err := gen()
			if err == nil && !storage.ValidID(id) {
				err = fmt.Errorf("%w: the ID generator returned an ID outside the engine's alphabet", ErrConfig)
			}
			return id, err
		},
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	if _, dup := e.names[name]; dup {
		return nil, fmt.Errorf("%w: name %q", ErrKindExists, name)
	}
	if typ != nil {
		if other, dup := e.types[typ]; dup {
			return nil, fmt.Errorf("%w: type %v is already the type of %q", ErrKindExists, typ, other.kind.Name)
		}
	}
	rk := &RawKind{eng: e, kind: k, codec: codec, client: opts.Storage == nil,
		maxPerOwner: opts.MaxPerOwner, ownerLimit: opts.OwnerLimit}
	if opts.OnEvent != nil && !rk.client {
		rk.events = newEvents(opts.OnEvent)
		k.Emit = rk.events.push
	}
	if e.met != nil {
		rk.met = e.met.forKind(name, opts.Storage)
		k.OnStorage = rk.met.storageCall
	}
	if !rk.client {
		e.sys.AddKind(k)
		if r := k.ExpiryReporter(); r != nil {
			// Sessions that the storage removes as expired while no actor
			// holds them are reported too.
			sys := e.sys
			rk.unreport = r.OnExpired(func(id string, value []byte) { sys.StorageExpired(k, id, value) })
		}
		// The owners' indexes live beside the sessions, with no expiry of
		// their own (see owners.go).
		rk.owners = &actors.Kind{Name: name + " owners", Storage: opts.Storage, Intern: true,
			NewID: func() (string, error) { return "", errors.New("engine: an owner index is never renewed") }}
		e.sys.AddKind(rk.owners)
	}
	e.names[name] = rk
	if typ != nil {
		e.types[typ] = rk
	}
	return rk, nil
}
