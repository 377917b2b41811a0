package engine_test

// The memo property: what Get returns is what is stored. For a type that
// flat lets the session actor keep decoded (the memo), Get before a
// passivation serves the Go value that was set, Get after it decodes the
// stored bytes; the two must never differ. Both tests here check that
// against an oracle, the codec's own round trip of the value:
//
//   - TestFlatAgreesWithRoundTrip generates struct types with
//     reflect.StructOf and random values of them, and checks that every
//     type flat accepts round-trips every value exactly.
//   - TestMemoSurvivesPassivation runs named types covering each codec rule
//     (flatCases) through the engine: Get before a passivation, Get after
//     it, and the round trip must agree.
//
// Both are seeded; -memoseed picks another seed, and a failure prints the
// one it ran with.

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

var memoSeed = flag.Uint64("memoseed", 1, "seed of the memo property tests")

// seeded returns the test's seed and a generator of it, and prints the
// seed if the test fails.
func seeded(t *testing.T) (uint64, *rand.Rand) {
	seed := *memoSeed
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d: rerun with -run '^%s$' -args -memoseed=%d", seed, t.Name(), seed)
		}
	})
	return seed, rand.New(rand.NewPCG(seed, 0x6d656d6f))
}

var codecs = []struct {
	name  string
	codec engine.Codec
}{
	{"json", engine.JSONCodec{}},
	{"gob", engine.GobCodec{}},
}

// --- values ---

// writable returns v itself, or for an unexported field an alias of it
// that can be set.
func writable(v reflect.Value) reflect.Value {
	if v.CanSet() {
		return v
	}
	return reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
}

var (
	specialInts  = []int64{0, 1, -1, 7, math.MinInt64, math.MaxInt64, math.MinInt32, math.MaxInt32, math.MinInt8}
	specialUints = []uint64{0, 1, 7, math.MaxUint64, math.MaxUint64 - 1, 1 << 53, 1<<53 + 1, math.MaxUint32}
	negZero      = math.Copysign(0, -1)
	specialF64   = []uint64{
		0, math.Float64bits(negZero), math.Float64bits(1), math.Float64bits(-1.5),
		math.Float64bits(math.MaxFloat64), math.Float64bits(math.SmallestNonzeroFloat64),
		math.Float64bits(math.Inf(1)), math.Float64bits(math.Inf(-1)),
		0x7ff8000000000001, // quiet NaN with a payload
		0x7ff0000000000001, // signaling NaN
		0x000fffffffffffff, // largest subnormal
		math.Float64bits(0.1), math.Float64bits(1e21), math.Float64bits(1e-7),
	}
	specialF32 = []uint32{
		0, math.Float32bits(float32(negZero)), math.Float32bits(1), math.Float32bits(-1.5),
		math.Float32bits(math.MaxFloat32), math.Float32bits(math.SmallestNonzeroFloat32),
		math.Float32bits(float32(math.Inf(1))),
		0x7fc00001, // quiet NaN with a payload
		0x7f800001, // signaling NaN
		0x007fffff, // largest subnormal
		math.Float32bits(0.1), math.Float32bits(16777217),
	}
	specialStrings = []string{"", "x", "X", "é", "\u212a", "\xff", "a\x00b", `"\`, "<&>", "\ud7ff\U0010ffff"}
)

// fill sets the addressable v to a random value; each part is left zero
// with probability zeroOdds.
func fill(r *rand.Rand, v reflect.Value, zeroOdds float64) {
	if r.Float64() < zeroOdds && v.Kind() != reflect.Array && v.Kind() != reflect.Struct {
		return
	}
	v = writable(v)
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if r.IntN(2) == 0 {
			v.SetInt(specialInts[r.IntN(len(specialInts))]) // truncated to the kind's size
		} else {
			v.SetInt(int64(r.Uint64()))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if r.IntN(2) == 0 {
			v.SetUint(specialUints[r.IntN(len(specialUints))])
		} else {
			v.SetUint(r.Uint64())
		}
	case reflect.Float64:
		// Bits written as they are: SetFloat would go through a float64
		// register, which is fine here but not for float32 below.
		bits := r.Uint64()
		switch r.IntN(4) {
		case 0:
			bits = specialF64[r.IntN(len(specialF64))]
		case 1:
			bits = math.Float64bits(r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20)))
		case 2:
			bits = math.Float64bits(negZero)
		}
		*(*uint64)(unsafe.Pointer(v.UnsafeAddr())) = bits
	case reflect.Float32:
		// Through SetFloat a signaling NaN would come out quiet.
		bits := r.Uint32()
		switch r.IntN(4) {
		case 0:
			bits = specialF32[r.IntN(len(specialF32))]
		case 1:
			bits = math.Float32bits(float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(20)-10))))
		case 2:
			bits = math.Float32bits(float32(negZero))
		}
		*(*uint32)(unsafe.Pointer(v.UnsafeAddr())) = bits
	case reflect.String:
		if r.IntN(2) == 0 {
			v.SetString(specialStrings[r.IntN(len(specialStrings))])
		} else {
			b := make([]byte, r.IntN(6))
			for i := range b {
				b[i] = byte(r.UintN(256))
			}
			v.SetString(string(b))
		}
	case reflect.Array:
		for i := range v.Len() {
			fill(r, v.Index(i), zeroOdds)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			fill(r, v.Field(i), zeroOdds)
		}
	default:
		panic(fmt.Sprintf("fill: no values of %v", v.Type()))
	}
}

// randValue returns an addressable random value of t; the first few of a
// series (n) are the zero value and values mostly zero.
func randValue(r *rand.Rand, t reflect.Type, n int) reflect.Value {
	v := reflect.New(t).Elem()
	switch n {
	case 0:
		return v
	case 1:
		fill(r, v, 0.9)
	default:
		fill(r, v, 0.3)
	}
	return v
}

// same reports whether a and b (addressable, of one type) are equal field
// by field, floats bit for bit: -0 is not 0, and a NaN equals a NaN with
// the same bits. Unexported fields count too.
func same(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return a.Uint() == b.Uint()
	case reflect.Float64:
		return *(*uint64)(unsafe.Pointer(a.UnsafeAddr())) == *(*uint64)(unsafe.Pointer(b.UnsafeAddr()))
	case reflect.Float32:
		return *(*uint32)(unsafe.Pointer(a.UnsafeAddr())) == *(*uint32)(unsafe.Pointer(b.UnsafeAddr()))
	case reflect.String:
		return a.String() == b.String()
	case reflect.Array:
		for i := range a.Len() {
			if !same(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := range a.NumField() {
			if !same(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	}
	panic(fmt.Sprintf("same: cannot compare %v", a.Type()))
}

// roundTrip is the oracle: it encodes the addressable v the way the engine
// does (through a pointer) and decodes the bytes into a new zero value.
func roundTrip(c engine.Codec, v reflect.Value) (out reflect.Value, data []byte, encErr, decErr error) {
	data, encErr = c.Marshal(v.Addr().Interface())
	if encErr != nil {
		return reflect.Value{}, nil, encErr, nil
	}
	p := reflect.New(v.Type())
	decErr = c.Unmarshal(data, p.Interface())
	return p.Elem(), data, nil, decErr
}

// show prints a value for a failure message, floats with their bits.
func show(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Float64:
		return fmt.Sprintf("%v(%#x)", v.Float(), *(*uint64)(unsafe.Pointer(v.UnsafeAddr())))
	case reflect.Float32:
		return fmt.Sprintf("%v(%#x)", v.Float(), *(*uint32)(unsafe.Pointer(v.UnsafeAddr())))
	case reflect.Array:
		s := "["
		for i := range v.Len() {
			if i > 0 {
				s += " "
			}
			s += show(v.Index(i))
		}
		return s + "]"
	case reflect.Struct:
		s := "{"
		for i := range v.NumField() {
			if i > 0 {
				s += " "
			}
			s += v.Type().Field(i).Name + ":" + show(v.Field(i))
		}
		return s + "}"
	case reflect.String:
		return fmt.Sprintf("%q", v.String())
	}
	return fmt.Sprint(writable(v))
}

// --- types ---

// genPkg is the package path of the generated types' unexported fields.
const genPkg = "example.com/steward/memo"

var (
	// Field names: distinct within a struct (StructOf insists), with
	// case-only differences and the Kelvin sign, which folds with K and k.
	exportedNames   = []string{"A", "B", "X", "Xx", "XX", "Ab", "AB", "K", "\u212a", "Z"}
	unexportedNames = []string{"a", "b", "x", "_"}
	// Tag names: the field names again, in other cases, "-" (with "-,"),
	// and names encoding/json refuses (then it uses the Go name).
	tagNames = []string{"x", "X", "A", "a", "B", "K", "k", "\u212a", "-", "Xx", "xx", "Z", "ü", "a b", "a'b", `a"b`, `a\b`}
	tagOpts  = []string{"omitempty", "omitempty", "omitzero", "omitzero", "string", "string", "", "inline"}
	scalars  = []reflect.Type{
		reflect.TypeFor[bool](), reflect.TypeFor[int](), reflect.TypeFor[int8](), reflect.TypeFor[int16](),
		reflect.TypeFor[int32](), reflect.TypeFor[int64](), reflect.TypeFor[uint](), reflect.TypeFor[uint8](),
		reflect.TypeFor[uint16](), reflect.TypeFor[uint32](), reflect.TypeFor[uint64](),
		reflect.TypeFor[float32](), reflect.TypeFor[float64](), reflect.TypeFor[string](),
		reflect.TypeFor[Num](), reflect.TypeFor[num](), reflect.TypeFor[f64](), reflect.TypeFor[struct{}](),
	}
	// Named types of flat_test.go nested as fields: embedding (exported
	// and unexported), methods (IsZero, MarshalJSON), collisions inside.
	namedStructs = []reflect.Type{
		reflect.TypeFor[Emb](), reflect.TypeFor[EmbA](), reflect.TypeFor[promoted](),
		reflect.TypeFor[unexportedEmbedded](), reflect.TypeFor[alwaysZero](), reflect.TypeFor[marshals](),
		reflect.TypeFor[caseOnlyTags](), reflect.TypeFor[jsonCollision](), reflect.TypeFor[blank](),
	}
	// Types to embed: StructOf can only embed under an exported name, so
	// the unexported embeddings come from the named types above.
	embeddable = []reflect.Type{
		reflect.TypeFor[Emb](), reflect.TypeFor[EmbA](), reflect.TypeFor[EmbX](), reflect.TypeFor[Num](),
		reflect.TypeFor[CollideA](), reflect.TypeFor[alwaysZero](),
	}
)

// typeGen makes random types with reflect.StructOf.
type typeGen struct {
	r       *rand.Rand
	structs []reflect.Type // made so far: nested and embedded again, so a type can appear twice
}

func (g *typeGen) pick(s []string) string { return s[g.r.IntN(len(s))] }

// top returns a type for a session: mostly a struct, else an array or a
// scalar.
func (g *typeGen) top() reflect.Type {
	switch n := g.r.IntN(20); {
	case n == 0:
		return reflect.ArrayOf(g.r.IntN(4), g.field(1))
	case n == 1:
		return scalars[g.r.IntN(len(scalars))]
	}
	return g.structType(0)
}

// field returns the type of a field at nesting depth depth.
func (g *typeGen) field(depth int) reflect.Type {
	n := g.r.IntN(100)
	if depth >= 3 {
		n %= 55
	}
	switch {
	case n < 55:
		return scalars[g.r.IntN(len(scalars))]
	case n < 70:
		return reflect.ArrayOf(g.r.IntN(4), g.field(depth+1))
	case n < 82:
		return g.structType(depth + 1)
	case n < 90 && len(g.structs) > 0:
		return g.structs[g.r.IntN(len(g.structs))]
	default:
		return namedStructs[g.r.IntN(len(namedStructs))]
	}
}

func (g *typeGen) tag() reflect.StructTag {
	n := g.r.IntN(12)
	switch {
	case n < 4:
		return ""
	case n == 4:
		return `json:"-"`
	case n == 5:
		return `json:"-,"`
	case n == 6:
		return `gob:"x" xml:"-"` // other keys: nothing to either codec
	}
	s := ""
	if g.r.IntN(3) > 0 {
		s = g.pick(tagNames)
	}
	for range g.r.IntN(3) {
		s += "," + g.pick(tagOpts)
	}
	return reflect.StructTag(fmt.Sprintf("json:%q", s))
}

// structType returns a new struct type of up to five fields.
func (g *typeGen) structType(depth int) reflect.Type {
	for {
		var fields []reflect.StructField
		used := make(map[string]bool)
		for i := range g.r.IntN(6) {
			var f reflect.StructField
			if depth < 3 && g.r.IntN(5) == 0 {
				// Embedded: a named type under its own name, or a struct
				// made here or earlier under an exported name.
				f.Anonymous = true
				switch g.r.IntN(3) {
				case 0:
					f.Type = embeddable[g.r.IntN(len(embeddable))]
					f.Name = f.Type.Name()
				case 1:
					if len(g.structs) > 0 {
						f.Type = g.structs[g.r.IntN(len(g.structs))]
						break
					}
					fallthrough
				default:
					f.Type = g.structType(depth + 1)
				}
				if f.Name == "" {
					f.Name = g.pick(exportedNames)
				}
				if f.Type.NumMethod() > 0 && i > 0 {
					continue // StructOf: methods promoted from the first field only
				}
			} else {
				f.Type = g.field(depth)
				if g.r.IntN(4) == 0 {
					f.Name, f.PkgPath = g.pick(unexportedNames), genPkg
				} else {
					f.Name = g.pick(exportedNames)
				}
			}
			if used[f.Name] {
				continue
			}
			used[f.Name] = true
			f.Tag = g.tag()
			fields = append(fields, f)
		}
		if t, ok := structOf(fields); ok {
			g.structs = append(g.structs, t)
			return t
		}
	}
}

// structOf is reflect.StructOf, false where it refuses the fields.
func structOf(fields []reflect.StructField) (t reflect.Type, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return reflect.StructOf(fields), true
}

// TestFlatAgreesWithRoundTrip: for random struct types, every type flat
// accepts round-trips every random value exactly under its codec. It also
// counts the types flat refuses where the oracle finds a value that does
// not round-trip, to show the generator reaches the codecs' rules.
func TestFlatAgreesWithRoundTrip(t *testing.T) {
	seed, r := seeded(t)
	g := &typeGen{r: r}
	const types, values = 600, 24
	type tally struct{ flat, lossy, refused int }
	stats := make(map[string]*tally)
	for i := range types {
		typ := g.top()
		for ci, c := range codecs {
			// Values from a generator of their own, so that the types do
			// not depend on what the codecs did with earlier values.
			r := rand.New(rand.NewPCG(seed, uint64(i)<<1|uint64(ci)))
			st := stats[c.name]
			if st == nil {
				st = new(tally)
				stats[c.name] = st
			}
			isFlat := engine.Flat(typ, c.codec)
			if isFlat {
				st.flat++
			}
			lossy := false
			for n := range values {
				v := randValue(r, typ, n)
				out, data, encErr, decErr := roundTrip(c.codec, v)
				switch {
				case encErr != nil:
					continue // never stored: the memo never holds it
				case decErr != nil:
					if isFlat {
						t.Errorf("%s: flat(%v), but %s encodes to %q, which does not decode: %v",
							c.name, typ, show(v), data, decErr)
					}
				case !same(v, out):
					if isFlat {
						t.Errorf("%s: flat(%v), but %s encodes to %q, which decodes to %s",
							c.name, typ, show(v), data, show(out))
					}
				default:
					continue
				}
				lossy = true
				break
			}
			switch {
			case lossy:
				st.lossy++
			case !isFlat:
				st.refused++ // no counterexample found: conservative, or lucky values
			}
		}
	}
	for _, c := range codecs {
		st := stats[c.name]
		t.Logf("%s: %d types: %d flat, %d not round-tripping, %d refused without a counterexample",
			c.name, types, st.flat, st.lossy, st.refused)
		if st.flat < types/10 || st.lossy < types/10 {
			t.Errorf("%s: the generator is too one-sided: %+v", c.name, *st)
		}
	}
}

// --- the engine ---

// memoKind is a registered Kind[T] seen through reflect.Values, so that
// TestMemoSurvivesPassivation handles every T alike.
type memoKind struct {
	typ  reflect.Type
	flat bool
	// write stores v (a T) in a new session with Set, Update or GetOrSet
	// (by how) and returns the request's context, bound to the session.
	write func(ctx context.Context, v reflect.Value, how int) (context.Context, error)
	// get Gets the session of the request ctx is bound to.
	get func(ctx context.Context) (got reflect.Value, ok bool, err error)
	// id returns the session ID of the request ctx is bound to.
	id func(ctx context.Context) string
	// bind returns ctx bound to session id, as for a new request.
	bind func(ctx context.Context, id string) context.Context
}

func registerMemo[T any](t *testing.T, eng *engine.Engine, name string, codec engine.Codec) memoKind {
	k, err := engine.Register[T](eng, name, engine.KindOptions{
		Storage: storage.NewMemory(storage.MemoryOptions{}),
		Codec:   codec,
	})
	if err != nil {
		t.Fatal(err)
	}
	return memoKind{
		typ:  reflect.TypeFor[T](),
		flat: engine.Flat(reflect.TypeFor[T](), codec),
		write: func(ctx context.Context, rv reflect.Value, how int) (context.Context, error) {
			v := rv.Interface().(T)
			ctx = engine.WithBindings(ctx, k.Raw().Bind(""))
			var err error
			switch how {
			case 0:
				err = k.Set(ctx, v)
			case 1:
				_, err = k.Update(ctx, func(p *T) error { *p = v; return nil })
			default:
				_, err = k.GetOrSet(ctx, func() T { return v })
			}
			return ctx, err
		},
		get: func(ctx context.Context) (reflect.Value, bool, error) {
			got, ok, err := k.Get(ctx)
			return reflect.ValueOf(&got).Elem(), ok, err
		},
		id: k.ID,
		bind: func(ctx context.Context, id string) context.Context {
			return engine.WithBindings(ctx, k.Raw().Bind(id))
		},
	}
}

type memoCase struct {
	typ      reflect.Type
	register func(t *testing.T, eng *engine.Engine, name string, codec engine.Codec) memoKind
}

func memoCaseOf[T any]() memoCase {
	return memoCase{typ: reflect.TypeFor[T](), register: registerMemo[T]}
}

// memoCases are the named types of flatCases, through the engine.
var memoCases = []memoCase{
	memoCaseOf[jsonCollision](), memoCaseOf[taggedDominates](), memoCaseOf[untaggedCollision](),
	memoCaseOf[caseOnlyTags](), memoCaseOf[caseOnlyNames](), memoCaseOf[kelvinTags](),
	memoCaseOf[promoted](), memoCaseOf[shadowed](), memoCaseOf[embeddedTwice](),
	memoCaseOf[embeddedTwoDepths](), memoCaseOf[unexportedEmbedded](), memoCaseOf[embeddedTagged](), memoCaseOf[unexportedEmbeddedTagged](),
	memoCaseOf[embeddedDash](), memoCaseOf[embeddedOmitEmpty](), memoCaseOf[embeddedNum](),
	memoCaseOf[embeddedUnexportedNum](), memoCaseOf[dash](), memoCaseOf[dashComma](),
	memoCaseOf[omitEmptyInts](), memoCaseOf[omitEmptyFloat](), memoCaseOf[omitZeroInts](),
	memoCaseOf[omitZeroFloats](), memoCaseOf[omitZeroMethod](), memoCaseOf[quotedScalars](),
	memoCaseOf[quotedArray](), memoCaseOf[unexported](), memoCaseOf[blank](),
	memoCaseOf[blankInt](), memoCaseOf[arrays](), memoCaseOf[floats](),
	memoCaseOf[floatArrays](), memoCaseOf[f64](), memoCaseOf[f32](),
	memoCaseOf[f64s](), memoCaseOf[withString](), memoCaseOf[strings3](),
	memoCaseOf[badTagName](), memoCaseOf[unknownOption](), memoCaseOf[marshals](),
	memoCaseOf[nested](), memoCaseOf[nestedCollision](), memoCaseOf[int](),
	memoCaseOf[string](),
}

// TestMemoSurvivesPassivation: for each named type and codec, random
// values are written (Set, Update or GetOrSet) and read back at once, from
// the live actor and its memo if the type is flat; then every actor
// passivates and each session is read again, now decoded from the storage.
// Both reads must equal the codec's round trip of the value.
func TestMemoSurvivesPassivation(t *testing.T) {
	_, r := seeded(t)
	const values = 12
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			eng := newEngine(t, engine.Options{PassivateAfter: 20 * time.Millisecond})
			type session struct {
				kind   memoKind
				v      reflect.Value
				id     string
				before reflect.Value
			}
			var sessions []session
			for i, mc := range memoCases {
				k := mc.register(t, eng, fmt.Sprintf("K%d", i), c.codec)
				for n := range values {
					v := randValue(r, k.typ, n)
					how := r.IntN(3)
					_, _, encErr, _ := roundTrip(c.codec, v)
					for try := 0; ; try++ {
						ctx, err := k.write(t.Context(), v, how)
						if encErr != nil {
							if err == nil {
								t.Errorf("%v: %s does not encode (%v), yet the write succeeded", k.typ, show(v), encErr)
							}
							break
						}
						if err != nil {
							t.Fatalf("%v: writing %s: %v", k.typ, show(v), err)
						}
						spawned := eng.Stats().Spawned
						before, ok, err := k.get(ctx)
						if err != nil || !ok {
							t.Fatalf("%v: Get right after writing %s: %v, %v", k.typ, show(v), ok, err)
						}
						// No actor spawned since the write: the read came from
						// the actor that made it, with its memo. Else that
						// actor passivated in between; try again.
						if eng.Stats().Spawned == spawned {
							sessions = append(sessions, session{kind: k, v: v, id: k.id(ctx), before: before})
							break
						}
						if try == 10 {
							t.Fatalf("%v: the session's actor passivated between a write and a read, ten times", k.typ)
						}
					}
				}
			}
			passivated := eng.Stats().Passivated
			waitFor(t, "every session actor to passivate", func() bool { return eng.Stats().LiveActors == 0 })
			if eng.Stats().Passivated <= passivated {
				t.Fatalf("no actor passivated: %+v", eng.Stats())
			}
			for _, s := range sessions {
				want, data, _, decErr := roundTrip(c.codec, s.v)
				if decErr != nil {
					// Such a session reads as none after passivation.
					t.Errorf("%v: %s encodes to %q, which does not decode: %v", s.kind.typ, show(s.v), data, decErr)
					continue
				}
				after, ok, err := s.kind.get(s.kind.bind(t.Context(), s.id))
				switch {
				case err != nil || !ok:
					t.Fatalf("%v: Get after passivation: %v, %v", s.kind.typ, ok, err)
				case !same(s.before, after):
					t.Errorf("%v (flat %v): wrote %s (stored %q): Get before passivation %s, after %s",
						s.kind.typ, s.kind.flat, show(s.v), data, show(s.before), show(after))
				case !same(after, want):
					t.Errorf("%v: wrote %s (stored %q): Get after passivation %s, but the bytes decode to %s",
						s.kind.typ, show(s.v), data, show(after), show(want))
				}
			}
			t.Logf("%d sessions of %d types, %d actors spawned", len(sessions), len(memoCases), eng.Stats().Spawned)
		})
	}
}
