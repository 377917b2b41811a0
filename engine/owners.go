package engine

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/steward-sessions/steward/actors"
	"github.com/steward-sessions/steward/internal/record"
	"github.com/steward-sessions/steward/storage"
)

// ErrTooManySessions is returned by BindOwner when the owner already holds
// KindOptions.MaxPerOwner live sessions and the kind's OwnerLimit is
// RefuseNew. Nothing was changed: the session stays, without an owner.
var ErrTooManySessions = errors.New("engine: the owner holds too many sessions")

// ErrCannotList is returned by Each for a kind whose storage cannot list
// what it holds (see storage.Lister).
var ErrCannotList = errors.New("engine: the kind's storage cannot list its sessions")

// ErrBadOwner is returned for an owner that is empty or longer than 255
// bytes.
var ErrBadOwner = errors.New("engine: an owner is 1 to 255 bytes")

// OwnerLimit says what BindOwner does when the owner already holds
// KindOptions.MaxPerOwner live sessions.
type OwnerLimit uint8

const (
	// EvictLeastRecent invalidates the owner's least recently used
	// sessions to make room: the new login wins. The default.
	EvictLeastRecent OwnerLimit = iota
	// RefuseNew refuses the new binding with ErrTooManySessions.
	RefuseNew
)

// SessionInfo describes one live session of an owner.
type SessionInfo struct {
	// Handle names the session to its owner (to revoke it with
	// InvalidateHandle). It is not the session ID and cannot be used as
	// one: it is the digest storages know the session by.
	Handle string
	// Created is when the session was created.
	Created time.Time
	// LastSeen is when it was last used, as far as its sliding expiry
	// tells (to the kind's touch interval across instances); Created for a
	// kind without an idle timeout.
	LastSeen time.Time
	// Expires is when it expires unless used again; zero for never.
	Expires time.Time
	// Current says it is the session the request (or the ID given) holds.
	Current bool
	// Owner is who the session is bound to, "" for nobody (filled by
	// Each; Sessions lists one owner's).
	Owner string
}

// The owner index. Each owner of a server-side kind has one record, kept
// by a session actor of a hidden kind on the kind's storage (so it is
// atomic per owner on one instance, and a compare-and-set on a Versioned
// storage across instances): the handles of the sessions bound to the
// owner. Every listing asks each of those sessions whether it is alive and
// still the owner's, so an entry that outlives its session (expired,
// invalidated, renewed away, evicted, or a crash between two steps) is
// never shown, and is dropped at the next change of the index. A handle is
// added to the index before its session is bound (or renewed to), so the
// index always holds every live session of the owner: revoking them all
// never misses one.

// ownerEntry is one session in an owner's index.
type ownerEntry struct {
	d     record.Digest
	bound int64 // Unix ns
	// evicting says a binding chose it to make room: it no longer counts
	// against MaxPerOwner and is not listed, but stays in the index (so
	// InvalidateOwner still reaches it) until it is invalidated.
	evicting bool
}

const ownerEntryLen = len(record.Digest{}) + 8 + 1

// maxOwnerEntries bounds an index: past it, a binding evicts the owner's
// least recently used sessions as MaxPerOwner would.
const maxOwnerEntries = 1024

func decodeOwnerIndex(b []byte) []ownerEntry {
	out := make([]ownerEntry, 0, len(b)/ownerEntryLen+1)
	for ; len(b) >= ownerEntryLen; b = b[ownerEntryLen:] {
		var e ownerEntry
		copy(e.d[:], b)
		e.bound = int64(binary.BigEndian.Uint64(b[len(e.d):]))
		e.evicting = b[len(e.d)+8] != 0
		out = append(out, e)
	}
	return out
}

func encodeOwnerIndex(es []ownerEntry) []byte {
	b := make([]byte, 0, len(es)*ownerEntryLen)
	for _, e := range es {
		b = append(b, e.d[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(e.bound))
		flag := byte(0)
		if e.evicting {
			flag = 1
		}
		b = append(b, flag)
	}
	return b
}

// ownerDigest names owner's index record. Session IDs are made of the
// storage alphabet, so no session digest can be one.
func ownerDigest(owner string) record.Digest {
	return record.DigestOf("\x00owner\x00" + owner)
}

func checkOwner(owner string) error {
	if owner == "" || len(owner) > record.MaxOwnerLen {
		return ErrBadOwner
	}
	return nil
}

// handleOf is the handle of the session whose digest is d.
func handleOf(d record.Digest) string { return d.StorageID() }

func digestOfHandle(h string) (record.Digest, bool) {
	var d record.Digest
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil || len(b) != len(d) {
		return d, false
	}
	copy(d[:], b)
	return d, true
}

// info asks the session whose digest is d for its metadata, without using
// it.
func (k *RawKind) info(ctx context.Context, d record.Digest) (actors.Result, error) {
	res := k.eng.sys.Do(ctx, k.kind, d, &actors.Op{Code: actors.OpInfo})
	return res, errOf(res)
}

// aliveFor reports whether a session's info says it is alive and may be
// owner's: bound to owner, or to nobody yet (its binding is under way:
// the index entry comes first).
func aliveFor(res actors.Result, owner string) bool {
	return res.Found && (res.Owner == owner || res.Owner == "")
}

// updateIndex runs fn on owner's index entries and stores what it
// returns. fn runs inside the index's actor, so changes of one owner's
// index are serialized (and compare-and-set across instances on a
// Versioned storage); it must not call other sessions (their update
// functions might be waiting for this index).
func (k *RawKind) updateIndex(ctx context.Context, owner string, fn func([]ownerEntry) ([]ownerEntry, error)) error {
	res := k.eng.sys.Do(ctx, k.owners, ownerDigest(owner), &actors.Op{Code: actors.OpUpdate,
		Fn: actors.UpdateFunc(func(cur actors.Value, _ bool) (actors.Value, bool, error) {
			next, err := fn(decodeOwnerIndex(cur.Data))
			if err != nil {
				return actors.Value{}, false, err
			}
			return actors.Value{Data: encodeOwnerIndex(next)}, true, nil
		})})
	return errOf(res)
}

// index reads owner's index entries.
func (k *RawKind) index(ctx context.Context, owner string) ([]ownerEntry, error) {
	res := k.eng.sys.Do(ctx, k.owners, ownerDigest(owner), &actors.Op{Code: actors.OpGet})
	if err := errOf(res); err != nil {
		return nil, err
	}
	return decodeOwnerIndex(res.Value.Data), nil
}

// dropEntries removes the entries of gone from owner's index.
func (k *RawKind) dropEntries(ctx context.Context, owner string, gone []record.Digest) error {
	if len(gone) == 0 {
		return nil
	}
	return k.updateIndex(ctx, owner, func(es []ownerEntry) ([]ownerEntry, error) {
		return slices.DeleteFunc(es, func(e ownerEntry) bool { return slices.Contains(gone, e.d) }), nil
	})
}

// look is what a look at the sessions of an owner's index found.
type look struct {
	seen map[record.Digest]int64 // alive, last seen (Unix ns)
	dead []record.Digest         // gone, or someone else's
}

// lookAt asks each session of es whether it is alive and owner's. A
// session busy in its own update function counts as alive and in use now.
func (k *RawKind) lookAt(ctx context.Context, owner string, es []ownerEntry, now int64) (look, error) {
	l := look{seen: make(map[record.Digest]int64, len(es))}
	for _, e := range es {
		res, err := k.info(ctx, e.d)
		switch {
		case errors.Is(err, ErrReentrant):
			l.seen[e.d] = now
		case err != nil:
			return l, err
		case aliveFor(res, owner):
			l.seen[e.d] = k.lastSeen(res)
		default:
			l.dead = append(l.dead, e.d)
		}
	}
	return l, nil
}

// BindOwner binds session id to owner (a user ID, 1 to 255 bytes),
// typically right after Renew on login. The session then shows in
// Sessions(owner) and goes with InvalidateOwner. With MaxPerOwner set, a
// binding past the bound evicts the owner's least recently used sessions
// (they are invalidated) or, with RefuseNew, fails with
// ErrTooManySessions; the bound is exact under concurrent logins, on one
// instance and, on a Versioned storage, across instances. A login evicted
// by a concurrent one before its binding finished returns ErrNoSession.
//
// Cost: two writes of the owner's index and one of the session, plus, with
// MaxPerOwner, a look at each session of the owner (a storage read each
// for those whose actor is not live, or always on a Versioned storage).
func (k *RawKind) BindOwner(ctx context.Context, id, owner string) (err error) {
	if m := k.met; m != nil {
		start := m.start()
		defer func() { m.done(opBindOwner, start, true, err) }()
	}
	if err := k.check(id); err != nil {
		return err
	}
	return k.bindOwner(ctx, record.DigestOf(id), owner)
}

func (k *RawKind) bindOwner(ctx context.Context, d record.Digest, owner string) error {
	if err := checkOwner(owner); err != nil {
		return err
	}
	cur, err := k.info(ctx, d)
	if err != nil {
		return err
	}
	if !cur.Found {
		return ErrNoSession
	}
	if cur.Owner == owner {
		return nil
	}
	now := k.eng.now().UnixNano()
	var l look
	if k.maxPerOwner > 0 {
		es, err := k.index(ctx, owner)
		if err != nil {
			return err
		}
		if l, err = k.lookAt(ctx, owner, es, now); err != nil {
			return err
		}
	}
	var victims []record.Digest
	err = k.updateIndex(ctx, owner, func(es []ownerEntry) ([]ownerEntry, error) {
		victims = victims[:0]
		es = slices.DeleteFunc(es, func(e ownerEntry) bool { return e.d == d || slices.Contains(l.dead, e.d) })
		return k.admit(es, d, now, l, &victims)
	})
	if err != nil {
		return err
	}
	// The victims leave the index once they are invalidated, so that it
	// always holds every live session of the owner.
	var ended []record.Digest
	for _, v := range victims {
		if err := errOf(k.eng.sys.Do(ctx, k.kind, v, &actors.Op{Code: actors.OpInvalidate, Evict: true})); err != nil {
			return fmt.Errorf("evicting a session of the owner: %w", err)
		}
		ended = append(ended, v)
	}
	if err := k.dropEntries(ctx, owner, ended); err != nil {
		return err
	}
	res := k.eng.sys.Do(ctx, k.kind, d, &actors.Op{Code: actors.OpSetOwner, Owner: owner})
	if err := errOf(res); err != nil {
		return err
	}
	if !res.Found {
		return ErrNoSession // evicted meanwhile by a concurrent binding
	}
	if cur.Owner != "" {
		// Bound to someone else before: leave their index.
		_ = k.dropEntries(ctx, cur.Owner, []record.Digest{d})
	}
	return nil
}

// admit returns the index es with session d added, applying the kind's
// bound: past MaxPerOwner, the least recently used sessions that count
// are flagged evicting and appended to victims (or the binding is
// refused). Sessions l did not see (bound meanwhile) count as alive and
// seen when bound. It runs inside the index's actor.
func (k *RawKind) admit(es []ownerEntry, d record.Digest, now int64, l look, victims *[]record.Digest) ([]ownerEntry, error) {
	max := k.maxPerOwner
	if max <= 0 {
		max = maxOwnerEntries - 1
	}
	type counted struct {
		i    int
		seen int64
	}
	var live []counted
	for i, e := range es {
		if e.evicting {
			*victims = append(*victims, e.d) // a binding that chose it did not finish
			continue
		}
		seen, ok := l.seen[e.d]
		if !ok {
			seen = e.bound
		}
		live = append(live, counted{i, seen})
	}
	if over := len(live) - max + 1; over > 0 {
		if k.ownerLimit == RefuseNew && k.maxPerOwner > 0 {
			return nil, ErrTooManySessions
		}
		slices.SortStableFunc(live, func(a, b counted) int {
			switch {
			case a.seen < b.seen:
				return -1
			case a.seen > b.seen:
				return 1
			}
			return 0
		})
		for _, c := range live[:over] {
			es[c.i].evicting = true
			*victims = append(*victims, es[c.i].d)
		}
	}
	return append(es, ownerEntry{d: d, bound: now}), nil
}

// lastSeen is when a session was last used, from its info.
func (k *RawKind) lastSeen(res actors.Result) int64 {
	idle := int64(k.kind.Expiry.Idle)
	if idle <= 0 || res.Expires == 0 {
		return res.Created
	}
	return max(res.Created, res.Expires-idle)
}

// Owner returns the owner session id is bound to, "" for none.
func (k *RawKind) Owner(ctx context.Context, id string) (_ string, err error) {
	if m := k.met; m != nil {
		start := m.start()
		defer func() { m.done(opOwner, start, true, err) }()
	}
	if err := k.check(id); err != nil {
		return "", err
	}
	res, err := k.info(ctx, record.DigestOf(id))
	if err != nil {
		return "", err
	}
	if !res.Found {
		return "", ErrNoSession
	}
	return res.Owner, nil
}

// Sessions lists the live sessions of owner, oldest first; current (a
// session ID, or "") is flagged Current. A session that expired, was
// invalidated, renewed away or evicted is never listed, whatever the index
// still says. Cost: a read of the index and a look at each of its
// sessions (see BindOwner).
func (k *RawKind) Sessions(ctx context.Context, owner, current string) (_ []SessionInfo, err error) {
	if m := k.met; m != nil {
		start := m.start()
		defer func() { m.done(opSessions, start, true, err) }()
	}
	if k.client {
		return nil, ErrServerSideOnly
	}
	if err := checkOwner(owner); err != nil {
		return nil, err
	}
	es, err := k.index(ctx, owner)
	if err != nil {
		return nil, err
	}
	var cd record.Digest
	if current != "" {
		cd = record.DigestOf(current)
	}
	var out []SessionInfo
	var dead []record.Digest
	for _, e := range es {
		if e.evicting {
			continue
		}
		r, err := k.info(ctx, e.d)
		if errors.Is(err, ErrReentrant) {
			continue // busy in its own update function, which is listing
		}
		if err != nil {
			return nil, err
		}
		if !aliveFor(r, owner) {
			dead = append(dead, e.d)
			continue
		}
		out = append(out, SessionInfo{
			Handle:   handleOf(e.d),
			Created:  record.Unix(r.Created),
			LastSeen: record.Unix(k.lastSeen(r)),
			Expires:  record.Unix(r.Expires),
			Current:  current != "" && e.d == cd,
		})
	}
	// Entries of sessions that are gone go now; a failure only leaves
	// them for the next time.
	_ = k.dropEntries(ctx, owner, dead)
	slices.SortStableFunc(out, func(a, b SessionInfo) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// InvalidateOwner invalidates every session of owner but except (a session
// ID, "" for none: "log out my other devices" passes the current one) and
// returns how many live sessions it ended. Once it returns, no operation
// of those sessions succeeds. A session bound to owner while it runs may
// stay.
func (k *RawKind) InvalidateOwner(ctx context.Context, owner, except string) (_ int, err error) {
	if m := k.met; m != nil {
		start := m.start()
		defer func() { m.done(opInvalidateOwner, start, true, err) }()
	}
	if k.client {
		return 0, ErrServerSideOnly
	}
	if err := checkOwner(owner); err != nil {
		return 0, err
	}
	es, err := k.index(ctx, owner)
	if err != nil {
		return 0, err
	}
	var keepD record.Digest
	if except != "" {
		keepD = record.DigestOf(except)
	}
	n := 0
	var gone []record.Digest
	for _, e := range es {
		if except != "" && e.d == keepD {
			continue
		}
		r, err := k.info(ctx, e.d)
		alive := err == nil && aliveFor(r, owner)
		if err != nil && !errors.Is(err, ErrReentrant) {
			return n, err
		}
		if err == nil && !alive {
			gone = append(gone, e.d) // gone already, or someone else's
			continue
		}
		if err := errOf(k.eng.sys.Do(ctx, k.kind, e.d, &actors.Op{Code: actors.OpInvalidate})); err != nil {
			return n, err
		}
		gone = append(gone, e.d)
		n++
	}
	return n, k.dropEntries(ctx, owner, gone)
}

// InvalidateHandle invalidates the session of owner named by handle (from
// Sessions). A handle that names no live session of owner returns
// ErrNoSession and ends nothing.
func (k *RawKind) InvalidateHandle(ctx context.Context, owner, handle string) (err error) {
	if m := k.met; m != nil {
		start := m.start()
		defer func() { m.done(opInvalidateHandle, start, true, err) }()
	}
	if k.client {
		return ErrServerSideOnly
	}
	if err := checkOwner(owner); err != nil {
		return err
	}
	d, ok := digestOfHandle(handle)
	if !ok {
		return ErrNoSession
	}
	es, err := k.index(ctx, owner)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(es, func(e ownerEntry) bool { return e.d == d }) {
		return ErrNoSession
	}
	r, err := k.info(ctx, d)
	if err != nil {
		return err
	}
	if !aliveFor(r, owner) {
		_ = k.dropEntries(ctx, owner, []record.Digest{d})
		return ErrNoSession
	}
	if err := errOf(k.eng.sys.Do(ctx, k.kind, d, &actors.Op{Code: actors.OpInvalidate})); err != nil {
		return err
	}
	return k.dropEntries(ctx, owner, []record.Digest{d})
}

// renewOwned renews the session whose digest is d: if it has an owner,
// the new ID enters the owner's index before the session moves there.
func (k *RawKind) renewOwned(ctx context.Context, d record.Digest, op *actors.Op, do func(*actors.Op) actors.Result) actors.Result {
	res, err := k.info(ctx, d)
	if err != nil || !res.Found || res.Owner == "" {
		return do(op)
	}
	owner := res.Owner
	newID, err := k.kind.NewID()
	if err != nil {
		return actors.Result{Status: actors.FnFailed, Err: fmt.Errorf("engine: new session ID: %w", err)}
	}
	nd := record.DigestOf(newID)
	now := k.eng.now().UnixNano()
	if err := k.updateIndex(ctx, owner, func(es []ownerEntry) ([]ownerEntry, error) {
		// The new ID takes the old one's place (and its eviction, if a
		// binding chose it meanwhile).
		evicting := false
		for _, e := range es {
			if e.d == d {
				evicting = e.evicting
			}
		}
		es = slices.DeleteFunc(es, func(e ownerEntry) bool { return e.d == nd })
		return append(es, ownerEntry{d: nd, bound: now, evicting: evicting}), nil
	}); err != nil {
		return actors.Result{Status: actors.FnFailed, Err: err}
	}
	op.NewID = newID
	out := do(op)
	if out.Status == actors.OK && out.Found {
		_ = k.dropEntries(ctx, owner, []record.Digest{d})
	}
	return out
}

// Each calls fn with each live session of the kind, in no particular
// order, until fn returns false or ctx ends: for admin tools. Memory stays
// bounded however many sessions there are (the storage lists a bounded
// number of IDs at a time, and each session is looked at through its
// actor, within MaxLiveActors). Sessions created or ended while it runs
// may or may not be seen. The storage must implement storage.Lister (the
// memory, directory and Redis storages do, and Cache for what it wraps);
// otherwise Each returns ErrCannotList. Cost: a look at every session (a
// storage read for those whose actor is not live).
func (k *RawKind) Each(ctx context.Context, fn func(SessionInfo) bool) (err error) {
	if m := k.met; m != nil {
		start := m.start()
		defer func() { m.done(opEach, start, true, err) }()
	}
	if k.client {
		return ErrServerSideOnly
	}
	l := storage.ListerOf(k.kind.Storage)
	if l == nil {
		return ErrCannotList
	}
	var failed error
	err = l.Keys(ctx, func(key string) bool {
		d, ok := digestOfHandle(key)
		if !ok {
			return true
		}
		r, err := k.info(ctx, d)
		if errors.Is(err, ErrReentrant) {
			return true
		}
		if err != nil {
			failed = err
			return false
		}
		if !r.Found {
			return true // an alias, an owner's index, or gone meanwhile
		}
		return fn(SessionInfo{Handle: key, Created: record.Unix(r.Created), LastSeen: record.Unix(k.lastSeen(r)),
			Expires: record.Unix(r.Expires), Owner: r.Owner})
	})
	if failed != nil {
		return failed
	}
	if err != nil {
		return fmt.Errorf("%w: listing the sessions of %q: %w", ErrStorage, k.kind.Name, err)
	}
	return nil
}
