package engine

import (
	"context"
	"encoding"
	"encoding/gob"
	"encoding/json"
	"reflect"
	"strings"
	"time"
	"unicode"

	"github.com/steward-sessions/steward/actors"
)

// Kind is a registered session kind whose values are of type T, the
// counterpart of Ktor's cookie<T>(name, storage). Its methods act on the
// session of the current request, found through the Binding that the
// transport middleware put in the request's context; they return
// ErrNoBinding if there is none.
//
// The methods may block on the session's actor and its storage; they
// return when ctx ends, as RawKind's do (ctx's error: not applied;
// ErrMaybeApplied: the write was already with the storage). Errors from
// the storage wrap ErrStorage.
type Kind[T any] struct {
	raw *RawKind
	// flat says a copy of a T is a deep copy and the codec round-trips it
	// exactly (see flat), so the session actor may keep the decoded value
	// between operations and skip the codec.
	flat bool
}

// Register registers a session kind named name whose values are of type T.
// A second kind with the same name or the same T is refused with
// ErrKindExists; a missing Storage with ErrConfig.
func Register[T any](e *Engine, name string, opts KindOptions) (*Kind[T], error) {
	raw, err := e.register(name, reflect.TypeFor[T](), opts)
	if err != nil {
		return nil, err
	}
	return &Kind[T]{raw: raw, flat: flat(reflect.TypeFor[T](), raw.codec)}, nil
}

// flat reports whether the codec round-trips every value of type t exactly
// and a copy of one is a deep copy, so that the decoded value the actor keeps
// (the memo) is always what decoding the stored bytes would give. Exactly
// means decode(encode(v)) is v for every v that encodes at all, field by
// field, with floats equal bit for bit (-0 stays -0, a NaN keeps its bits);
// a value that fails to encode is never stored, so it never meets the memo.
//
// Only the built-in codecs qualify, and only booleans, integers and floats
// (and strings with gob, which keeps their bytes where JSON replaces invalid
// UTF-8), in arrays and structs, with no marshaling methods anywhere; each
// codec then has rules of its own, on flatJSONStruct and flatGobStruct. The
// check is conservative: a type it cannot show to round-trip is not flat,
// which only costs a decode per read.
func flat(t reflect.Type, codec Codec) bool {
	var isGob bool
	switch codec.(type) {
	case JSONCodec:
	case GobCodec:
		isGob = true
	default:
		return false
	}
	return flatType(t, isGob)
}

var marshalers = []reflect.Type{
	reflect.TypeFor[json.Marshaler](), reflect.TypeFor[json.Unmarshaler](),
	reflect.TypeFor[encoding.TextMarshaler](), reflect.TypeFor[encoding.TextUnmarshaler](),
	reflect.TypeFor[encoding.BinaryMarshaler](), reflect.TypeFor[encoding.BinaryUnmarshaler](),
	reflect.TypeFor[gob.GobEncoder](), reflect.TypeFor[gob.GobDecoder](),
}

// hasMarshaler reports whether t or *t has a method that either codec
// would call instead of encoding t's contents. The codec gets a pointer to
// the value, so every field and element is addressable and pointer methods
// count too.
func hasMarshaler(t reflect.Type) bool {
	for _, m := range marshalers {
		if t.Implements(m) || reflect.PointerTo(t).Implements(m) {
			return true
		}
	}
	return false
}

func flatType(t reflect.Type, isGob bool) bool {
	if hasMarshaler(t) {
		return false
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float64:
		return true
	case reflect.Float32:
		// gob carries a float32 as a float64: the widening and narrowing
		// conversions set the quiet bit of a signaling NaN.
		return !isGob
	case reflect.String:
		return isGob
	case reflect.Array:
		return flatType(t.Elem(), isGob)
	case reflect.Struct:
		if isGob {
			return flatGobStruct(t)
		}
		return flatJSONStruct(t, make(map[string]bool))
	}
	return false
}

// flatGobStruct reports whether gob round-trips every value of the struct
// type t. gob ignores struct tags (json:"-" included) and sends every
// exported field under its Go name; it never promotes the fields of an
// embedded struct, which travels as a field named after its type (so an
// embedded struct of an unexported type is not sent at all). It skips a
// field whose value is zero, and its test for that is ==, for which -0 is
// 0: a float field holding -0 comes back as +0 (floats in arrays, and a
// top-level float, are always sent).
func flatGobStruct(t reflect.Type) bool {
	for i := range t.NumField() {
		f := t.Field(i)
		switch {
		case !f.IsExported():
			if f.Type.Size() != 0 { // not sent: only a field that holds nothing may be left out
				return false
			}
		case f.Type.Kind() == reflect.Float32 || f.Type.Kind() == reflect.Float64:
			return false
		case !flatType(f.Type, true):
			return false
		}
	}
	return true
}

// flatJSONStruct reports whether encoding/json round-trips every value of
// the struct type t, adding to names the object keys its fields take
// (those of the structs it embeds included: encoding/json promotes their
// fields into the same object).
//
// Every field that holds data must be encoded under a key of its own:
//   - A field encoding/json skips (unexported; an embedded non-struct of an
//     unexported type; tagged "-") is lost, unless its type holds nothing
//     (struct{}, [0]T). A tag of "-," names the key "-": that field is kept.
//   - Two fields that take the same key at any depth lose at least one of
//     them: encoding/json drops both when they are at the same depth and
//     equally tagged, else keeps only the shallower or the tagged one. So
//     any repeated key makes t not flat, and the dominance rules never
//     apply. (A struct type embedded twice repeats its keys this way, which
//     also covers encoding/json's skipping of the second copy.) Keys that
//     differ only in case are distinct: Unmarshal prefers the exact match,
//     as documented, and every key it reads was written by Marshal.
//   - A tag name must be one encoding/json accepts (else it silently uses
//     the Go name, or promotes an embedded struct); to stay clear of its
//     exact rule, only letters, digits and a few common punctuation marks
//     are trusted. Options other than omitempty, omitzero and string are
//     refused: they mean something to other JSON encoders (the v2 package's
//     inline, case:..., format:...), and the GOEXPERIMENT=jsonv2 build of
//     encoding/json shares its tag parser.
//   - omitempty leaves out a zero number, which decodes to the same zero,
//     except -0: a float field with omitempty is not flat. omitzero tests
//     with IsZero: reflect's, for which -0 is zero (inside arrays and
//     structs too), or the type's own method, which may call a value zero
//     that is not; it is refused on a type that holds a float or has an
//     IsZero method. string quotes a bool or a number and reads it back
//     exactly; on other kinds encoding/json ignores it, and it is refused
//     there to be safe.
//   - An embedded struct with no tag name is promoted: its fields join t's
//     keys (options on it are refused); with a tag name it is an ordinary
//     field holding an object.
func flatJSONStruct(t reflect.Type, names map[string]bool) bool {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type.Kind() == reflect.Pointer {
			return false
		}
		tag := f.Tag.Get("json")
		skipped := tag == "-" ||
			(!f.Anonymous && !f.IsExported()) ||
			(f.Anonymous && !f.IsExported() && f.Type.Kind() != reflect.Struct)
		if skipped {
			if f.Type.Size() != 0 {
				return false
			}
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name != "" && !trustedJSONName(name) {
			return false
		}
		var omitEmpty, omitZero, quoted bool
		for o := range strings.SplitSeq(opts, ",") {
			switch o {
			case "":
			case "omitempty":
				omitEmpty = true
			case "omitzero":
				omitZero = true
			case "string":
				quoted = true
			default:
				return false
			}
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			if opts != "" || hasMarshaler(f.Type) || !flatJSONStruct(f.Type, names) {
				return false
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		if names[name] {
			return false
		}
		names[name] = true
		if !flatType(f.Type, false) {
			return false
		}
		if omitEmpty && isFloat(f.Type) {
			return false
		}
		if omitZero && (holdsFloat(f.Type) || f.Type.Implements(isZeroer) || reflect.PointerTo(f.Type).Implements(isZeroer)) {
			return false
		}
		if quoted && !isScalar(f.Type) {
			return false
		}
	}
	return true
}

// trustedJSONName reports whether encoding/json surely takes name, from a
// tag, as the key: letters, digits and a few punctuation marks, a subset of
// what it accepts.
func trustedJSONName(name string) bool {
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("-_.$@:/+# ", r) {
			return false
		}
	}
	return true
}

var isZeroer = reflect.TypeFor[interface{ IsZero() bool }]()

func isFloat(t reflect.Type) bool {
	return t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64
}

func isScalar(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// holdsFloat reports whether a value of type t (a flat type) contains a
// float anywhere.
func holdsFloat(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		return true
	case reflect.Array:
		return t.Len() > 0 && holdsFloat(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if holdsFloat(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}

// current returns the session's value as a T: the memo the actor kept for
// it when it is one (flat types only), else a decoding of its bytes.
func (k *Kind[T]) current(v actors.Value) (T, bool) {
	if k.flat {
		if m, ok := v.Memo.(T); ok {
			return m, true
		}
	}
	return k.decode(v.Data)
}

// remember returns what the actor keeps for the value v: v itself for a
// flat T, nothing otherwise.
func (k *Kind[T]) remember(v T) any {
	if k.flat {
		return v
	}
	return nil
}

// Raw returns the kind's byte-level API.
func (k *Kind[T]) Raw() *RawKind { return k.raw }

// Name returns the name the kind was registered under.
func (k *Kind[T]) Name() string { return k.raw.Name() }

func (k *Kind[T]) binding(ctx context.Context) (*Binding, error) {
	if b := BindingOf(ctx, k.raw); b != nil {
		return b, nil
	}
	return nil, ErrNoBinding
}

// decode turns a stored value into a T. A value that does not decode (the
// type changed since it was written, say) is logged and treated as no
// session.
func (k *Kind[T]) decode(data []byte) (T, bool) {
	var v T
	if err := k.raw.codec.Unmarshal(data, &v); err != nil {
		k.raw.eng.log.Warn("engine: a stored session value does not decode; treated as no session",
			"kind", k.raw.Name(), "error", err)
		var zero T
		return zero, false
	}
	return v, true
}

// ID returns the current request's session ID, "" if it has none: an ID
// the request came with counts once its session is known to exist, which
// may cost a read of the session. Inside the session's own update
// function it is the session being updated (or created).
func (k *Kind[T]) ID(ctx context.Context) string {
	if b := BindingOf(ctx, k.raw); b != nil {
		return b.confirmedID(ctx)
	}
	return ""
}

// Get returns the current request's session value and true, or the zero
// value and false if the request has no session. Get never creates a
// session.
func (k *Kind[T]) Get(ctx context.Context) (_ T, found bool, err error) {
	if m := k.raw.met; m != nil {
		start := m.start()
		defer func() { m.done(opGet, start, found, err) }()
	}
	var zero T
	b, err := k.binding(ctx)
	if err != nil {
		return zero, false, err
	}
	res := b.get(ctx)
	if err := errOf(res); err != nil || !res.Found {
		return zero, false, err
	}
	v, ok := k.current(res.Value)
	return v, ok, nil
}

// Set stores v as the current request's session value, creating the
// session (under a new server-generated ID) if the request has none.
func (k *Kind[T]) Set(ctx context.Context, v T) (err error) {
	if m := k.raw.met; m != nil {
		start := m.start()
		defer func() { m.done(opSet, start, true, err) }()
	}
	b, err := k.binding(ctx)
	if err != nil {
		return err
	}
	data, err := k.raw.codec.Marshal(&v)
	if err != nil {
		return err
	}
	u := &setUpdate{next: actors.Value{Data: data, Memo: k.remember(v)}}
	u.op.Code, u.op.Fn = actors.OpUpdate, u
	return errOf(b.update(ctx, &u.op))
}

// setUpdate is Set's operation and its function, in one allocation.
type setUpdate struct {
	op   actors.Op
	next actors.Value
}

// Update implements actors.Updater.
func (u *setUpdate) Update(actors.Value, bool) (actors.Value, bool, error) { return u.next, true, nil }

// Update runs fn on the current request's session value inside the
// session's actor and stores the result: read-modify-write is atomic with
// respect to every other operation on the session, from any request. If the
// request has no session, fn gets the zero value and a session is created.
// If fn returns an error nothing is stored and Update returns it. Update
// returns the stored value.
//
// fn runs while the session's other operations wait, so it should be
// quick. It may read its request, call ID, and write, flush or hijack the
// response. It must not wait for operations on the same session (Get, Set,
// Update, ... of this kind for this request, or the byte-level API on its
// ID): those return ErrReentrant at once. Operations on other sessions are
// allowed, but return ErrReentrant if that session is itself inside its
// update function at that moment (waiting could close a cycle). With a
// storage shared by several instances (Redis) fn may run more than once:
// after a conflicting write elsewhere it runs again on the newer value.
func (k *Kind[T]) Update(ctx context.Context, fn func(v *T) error) (_ T, err error) {
	if m := k.raw.met; m != nil {
		start := m.start()
		defer func() { m.done(opUpdate, start, true, err) }()
	}
	var zero T
	b, err := k.binding(ctx)
	if err != nil {
		return zero, err
	}
	u := &typedUpdate[T]{k: k, fn: fn}
	u.op.Code, u.op.Fn = actors.OpUpdate, u
	if err := errOf(b.update(ctx, &u.op)); err != nil {
		return zero, err
	}
	return u.out, nil
}

// typedUpdate is Update's operation, its function and its result, in one
// allocation.
type typedUpdate[T any] struct {
	op  actors.Op
	k   *Kind[T]
	fn  func(*T) error
	out T
}

// Update implements actors.Updater.
func (u *typedUpdate[T]) Update(old actors.Value, exists bool) (actors.Value, bool, error) {
	var cur T
	if exists {
		cur, _ = u.k.current(old)
	}
	if err := u.fn(&cur); err != nil {
		return actors.Value{}, false, err
	}
	data, err := u.k.raw.codec.Marshal(&cur)
	if err != nil {
		return actors.Value{}, false, err
	}
	u.out = cur
	return actors.Value{Data: data, Memo: u.k.remember(cur)}, true, nil
}

// GetOrSet returns the current request's session value; if the request has
// none, it stores the value returned by create (called inside the
// session's actor, with Update's rules; at most once but after a
// conflicting write elsewhere) and returns that.
func (k *Kind[T]) GetOrSet(ctx context.Context, create func() T) (_ T, err error) {
	if m := k.raw.met; m != nil {
		start := m.start()
		defer func() { m.done(opGetOrSet, start, true, err) }()
	}
	var zero T
	b, err := k.binding(ctx)
	if err != nil {
		return zero, err
	}
	u := &getOrSetUpdate[T]{k: k, create: create}
	u.op.Code, u.op.Fn = actors.OpUpdate, u
	res := b.update(ctx, &u.op)
	if err := errOf(res); err != nil {
		return zero, err
	}
	if u.made {
		return u.created, nil
	}
	v, _ := k.current(res.Value)
	return v, nil
}

// getOrSetUpdate is GetOrSet's operation and its function.
type getOrSetUpdate[T any] struct {
	op      actors.Op
	k       *Kind[T]
	create  func() T
	created T
	made    bool
}

// Update implements actors.Updater.
func (u *getOrSetUpdate[T]) Update(old actors.Value, exists bool) (actors.Value, bool, error) {
	u.made = false // the function may run again after a conflict
	if exists {
		if cur, ok := u.k.current(old); ok {
			return actors.Value{Memo: u.k.remember(cur)}, false, nil
		}
	}
	u.created = u.create()
	data, err := u.k.raw.codec.Marshal(&u.created)
	if err != nil {
		return actors.Value{}, false, err
	}
	u.made = true
	return actors.Value{Data: data, Memo: u.k.remember(u.created)}, true, nil
}

// Clear ends the current request's session and removes its ID from the
// client. Clearing a request that has no session is not an error.
func (k *Kind[T]) Clear(ctx context.Context) (err error) {
	if m := k.raw.met; m != nil {
		start := m.start()
		defer func() { m.done(opClear, start, true, err) }()
	}
	b, err := k.binding(ctx)
	if err != nil {
		return err
	}
	return b.clear(ctx)
}

// Pop returns the current request's session value and ends the session
// (removing its ID from the client, as Clear does), atomically: of
// concurrent requests popping one server-side session, exactly one gets
// the value, the others find no session (across engine instances too, on
// a Versioned storage). A client-side value travels with each request, so
// concurrent requests holding the same cookie each get it. Flash messages
// are made of it (see Flash).
func (k *Kind[T]) Pop(ctx context.Context) (_ T, _ bool, err error) {
	if m := k.raw.met; m != nil {
		start := m.start()
		defer func() { m.done(opTake, start, true, err) }()
	}
	var zero T
	b, err := k.binding(ctx)
	if err != nil {
		return zero, false, err
	}
	res, err := b.end(ctx, actors.OpTake)
	if err != nil || !res.Found {
		return zero, false, err
	}
	v, ok := k.current(res.Value)
	return v, ok, nil
}

// Renew moves the current request's session to a new ID with the same
// value and sends the new ID to the client; call it on login, against
// session fixation. Requests that were already in flight with the old ID
// keep reaching the session for the kind's RenewGrace, but never learn the
// new ID; requests that arrive later with the old ID get ErrRenewed (see
// there). It returns ErrNoSession if the request has no session.
func (k *Kind[T]) Renew(ctx context.Context) (err error) {
	if m := k.raw.met; m != nil {
		start := m.start()
		defer func() { m.done(opRenew, start, true, err) }()
	}
	b, err := k.binding(ctx)
	if err != nil {
		return err
	}
	return b.renew(ctx)
}

// Invalidate ends session id, whichever request or client holds it ("log
// out my other devices"). Invalidating an ID that has no session is not an
// error.
func (k *Kind[T]) Invalidate(ctx context.Context, id string) error {
	return k.raw.Invalidate(ctx, id)
}

// BindOwner binds the current request's session to owner (a user ID),
// typically right after Renew on login; see RawKind.BindOwner. It returns
// ErrNoSession if the request has no session.
func (k *Kind[T]) BindOwner(ctx context.Context, owner string) error {
	id, err := k.currentID(ctx)
	if err != nil {
		return err
	}
	return k.raw.BindOwner(ctx, id, owner)
}

// Owner returns the owner the current request's session is bound to, ""
// for none; ErrNoSession if the request has no session.
func (k *Kind[T]) Owner(ctx context.Context) (string, error) {
	id, err := k.currentID(ctx)
	if err != nil {
		return "", err
	}
	return k.raw.Owner(ctx, id)
}

// Sessions lists the live sessions of the current request's owner, the
// current one flagged; ErrNoSession if the request has no session or its
// session no owner. See RawKind.Sessions.
func (k *Kind[T]) Sessions(ctx context.Context) ([]SessionInfo, error) {
	id, owner, err := k.currentOwner(ctx)
	if err != nil {
		return nil, err
	}
	return k.raw.Sessions(ctx, owner, id)
}

// InvalidateOthers ends every session of the current request's owner but
// the current one ("log out my other devices") and returns how many it
// ended; ErrNoSession if the request has no session or its session no
// owner.
func (k *Kind[T]) InvalidateOthers(ctx context.Context) (int, error) {
	id, owner, err := k.currentOwner(ctx)
	if err != nil {
		return 0, err
	}
	return k.raw.InvalidateOwner(ctx, owner, id)
}

// InvalidateHandle ends the session of the current request's owner named
// by handle (from Sessions); ErrNoSession if it names none of theirs.
func (k *Kind[T]) InvalidateHandle(ctx context.Context, handle string) error {
	_, owner, err := k.currentOwner(ctx)
	if err != nil {
		return err
	}
	return k.raw.InvalidateHandle(ctx, owner, handle)
}

// InvalidateOwner ends every session of owner and returns how many it
// ended ("log out everywhere", or an admin's lockout).
func (k *Kind[T]) InvalidateOwner(ctx context.Context, owner string) (int, error) {
	return k.raw.InvalidateOwner(ctx, owner, "")
}

func (k *Kind[T]) currentID(ctx context.Context) (string, error) {
	if k.raw.client {
		return "", ErrServerSideOnly
	}
	if _, err := k.binding(ctx); err != nil {
		return "", err
	}
	id := k.ID(ctx)
	if id == "" {
		return "", ErrNoSession
	}
	return id, nil
}

func (k *Kind[T]) currentOwner(ctx context.Context) (id, owner string, err error) {
	if id, err = k.currentID(ctx); err != nil {
		return "", "", err
	}
	if owner, err = k.raw.Owner(ctx, id); err != nil {
		return "", "", err
	}
	if owner == "" {
		return "", "", ErrNoSession
	}
	return id, owner, nil
}

// SetLifetime gives the current request's session its own idle timeout and
// absolute lifetime in place of its kind's, remember-me style: positive
// values set them, negative ones remove them, zero keeps the kind's
// value; both zero returns the session to its kind's policy. The storage's
// expiry moves at once, and the transport carries the session's expiry to
// the client (a cookie gets a Max-Age to match, also when the kind's
// cookie has none). The absolute lifetime still counts from the session's
// creation. It returns ErrNoSession if the request has no session and
// ErrServerSideOnly for a client-side kind.
func (k *Kind[T]) SetLifetime(ctx context.Context, idle, lifetime time.Duration) (err error) {
	if m := k.raw.met; m != nil {
		start := m.start()
		defer func() { m.done(opSetLifetime, start, true, err) }()
	}
	b, err := k.binding(ctx)
	if err != nil {
		return err
	}
	return b.setPolicy(ctx, k.raw.ownPolicy(idle, lifetime))
}
