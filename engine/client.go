package engine

import (
	"encoding/binary"

	"errors"
	"fmt"
	"github.com/steward-sessions/steward/actors"
)

// ErrServerSideOnly is returned by the byte-level API (RawKind) and by
// Invalidate for a client-side kind: its sessions have no ID to act on.
var ErrServerSideOnly = errors.New("engine: operation needs a server-side session kind (one with a Storage)")

// Sealer is how a transport carries the value of a client-side session: it
// opens what the client sent and seals what the server sends back,
// applying its transformers (signing, encryption) and its encoding. The
// transport package provides it; implement it to carry client-side
// sessions over a transport of your own.
type Sealer interface {
	// Open turns what the client sent into the bytes Seal was given. Any
	// error means the value is not trustworthy: the request has no session
	// and the client's copy is cleared.
	Open(wire string) ([]byte, error)
	// Seal turns payload into what is sent to the client. An error (a value
	// too large for a cookie, say) fails the write that asked for it.
	Seal(payload []byte) (string, error)
}

// A client-side value travels framed so that its age is known and
// protected by the transformers:
//
//	byte 0     format version (clientVersion)
//	bytes 1-8  creation time, Unix nanoseconds, big endian
//	bytes 9-16 time of the last write, Unix nanoseconds, big endian
//	bytes 17-  the value, as encoded by the kind's codec
const (
	clientVersion   = 1
	clientHeaderLen = 17
)

func sealClient(created, written int64, value []byte) []byte {
	b := make([]byte, clientHeaderLen+len(value))
	b[0] = clientVersion
	binary.BigEndian.PutUint64(b[1:], uint64(created))
	binary.BigEndian.PutUint64(b[9:], uint64(written))
	copy(b[clientHeaderLen:], value)
	return b
}

var (
	errClientFrame   = errors.New("engine: malformed client-side session value")
	errClientExpired = errors.New("engine: client-side session expired")
)

// openClient checks the frame and the age of a client-side value against
// the kind's lifetime and idle timeout (counted from the last write).
func (k *RawKind) openClient(b []byte, now int64) (created int64, value []byte, err error) {
	if len(b) < clientHeaderLen || b[0] != clientVersion {
		return 0, nil, errClientFrame
	}
	created = int64(binary.BigEndian.Uint64(b[1:]))
	written := int64(binary.BigEndian.Uint64(b[9:]))
	if created <= 0 || written < created {
		return 0, nil, errClientFrame
	}
	if (k.kind.Lifetime > 0 && now >= created+int64(k.kind.Lifetime)) ||
		(k.kind.Idle > 0 && now >= written+int64(k.kind.Idle)) {
		return 0, nil, errClientExpired
	}
	return created, b[clientHeaderLen:], nil
}

// BindClient starts a Binding for a request of a client-side kind that
// carried wire ("" for none). Nothing is opened until the first operation.
func (k *RawKind) BindClient(wire string, s Sealer) *Binding {
	return &Binding{kind: k, incoming: wire != "", wire: wire, sealer: s}
}

// ClientSide reports whether the kind's values travel to the client (it
// was registered without a Storage).
func (k *RawKind) ClientSide() bool { return k.client }

// openLocked opens the incoming client-side value on first use.
func (b *Binding) openLocked() {
	if b.opened {
		return
	}
	b.opened = true
	if b.wire == "" {
		return
	}
	payload, err := b.sealer.Open(b.wire)
	if err == nil {
		b.created, b.value, err = b.kind.openClient(payload, b.kind.eng.now().UnixNano())
	}
	if err != nil {
		b.kind.eng.log.Debug("engine: client-side session value rejected", "kind", b.kind.Name(), "error", err)
		b.value, b.cleared = nil, true
	}
	b.wire = ""
}

// clientUpdateLocked runs fn on the client-side value and seals the result.
func (b *Binding) clientUpdateLocked(fn actors.UpdateFunc) (res clientResult) {
	b.openLocked()
	exists := b.value != nil
	v, write, err := callUpdate(fn, b.value, exists)
	if err != nil || !write {
		return clientResult{value: b.value, found: exists, err: err}
	}
	return b.clientStoreLocked(v)
}

func (b *Binding) clientStoreLocked(v []byte) clientResult {
	now := b.kind.eng.now().UnixNano()
	created := b.created
	if b.value == nil {
		created = now
	}
	wire, err := b.sealer.Seal(sealClient(created, now, v))
	if err != nil {
		return clientResult{value: b.value, found: b.value != nil, err: err}
	}
	b.lateLocked("changed")
	b.value, b.created, b.wire, b.changed, b.cleared = v, created, wire, true, false
	return clientResult{value: v, found: true}
}

type clientResult struct {
	value []byte
	found bool
	err   error
}

// callUpdate runs an update function, turning a panic into ErrPanic, as
// the session actors do for server-side kinds.
func callUpdate(fn actors.UpdateFunc, old []byte, exists bool) (v []byte, write bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, write, err = nil, false, panicError(r)
		}
	}()
	var memo any // a client-side value is decoded afresh on every request
	return fn(old, exists, &memo)
}

func panicError(r any) error { return fmt.Errorf("%w: %v", ErrPanic, r) }
