package engine_test

import (
	"reflect"
	"testing"

	"github.com/steward-sessions/steward/engine"
)

// Named types, one or a few rules of the codecs each. flatCases gives the
// verdict of flat for each; TestMemoSurvivesPassivation runs them all
// through the engine, and the type generator of TestFlatAgreesWithRoundTrip
// nests and embeds some of them.
type (
	// The case: two fields tagged "x" at the same depth, which
	// encoding/json both drops, so the stored bytes are {}. Written plainly
	// (A int `json:"x"`; B int `json:"x"`) go vet refuses it, so here the
	// two fields sit in embedded unexported structs, which vet does not
	// look into; TestFlat has the plain form, made with reflect.StructOf.
	jsonCollision struct {
		CollideA
		CollideB
	}
	CollideA struct{ collideA }
	CollideB struct{ collideB }
	collideA struct {
		A int `json:"x"`
	}
	collideB struct {
		B int `json:"x"`
	}
	// The tagged field dominates the untagged one of the same name: A is
	// never encoded.
	taggedDominates struct {
		A int
		B int `json:"A"`
	}
	// Same depth, neither tagged: both dropped.
	untaggedCollision struct {
		Emb
		EmbX
	}
	// Keys that differ only in case: Unmarshal prefers the exact match.
	caseOnlyTags struct {
		A int `json:"x"`
		B int `json:"X"`
	}
	caseOnlyNames struct {
		Ab int
		AB int
	}
	// "k" and the Kelvin sign fold together (as do K and k).
	kelvinTags struct {
		A int `json:"k"`
		B int `json:"K"`
	}

	Emb struct {
		X int
		Y int8
	}
	EmbX struct{ X uint }
	emb  struct{ X int }
	EmbA struct{ Emb }
	EmbB struct{ Emb }

	promoted struct {
		Emb
		Z int
	}
	// X at depth 0 hides Emb.X at depth 1.
	shadowed struct {
		Emb
		X int
	}
	// Emb twice at depth 1: its keys collide.
	embeddedTwice struct {
		EmbA
		EmbB
	}
	// Emb at depth 1 and at depth 2: the deeper copy is never encoded.
	embeddedTwoDepths struct {
		Emb
		EmbA
	}
	// An embedded struct of an unexported type: encoding/json promotes its
	// exported fields, gob does not send it.
	unexportedEmbedded struct {
		emb
		Z int
	}
	// A tag name makes an embedded struct an ordinary field (decoded
	// into through reflect even when its type is unexported).
	unexportedEmbeddedTagged struct {
		emb `json:"e"`
		Z   int
	}
	embeddedTagged struct {
		Emb `json:"e"`
		X   int
	}
	embeddedDash struct {
		Emb `json:"-"`
		Z   int
	}
	// Options on a promoted struct do nothing in encoding/json; refused.
	embeddedOmitEmpty struct {
		Emb `json:",omitempty"`
		Z   int
	}

	Num                   int
	num                   int
	embeddedNum           struct{ Num }
	embeddedUnexportedNum struct {
		num
		A int
	}

	dash struct {
		A int
		B int `json:"-"`
	}
	// "-," names the key "-".
	dashComma struct {
		A int `json:"-,"`
		B int
	}
	omitEmptyInts struct {
		A int     `json:",omitempty"`
		B bool    `json:"b,omitempty"`
		C [2]uint `json:",omitempty"`
		D Emb     `json:",omitempty"`
	}
	// -0 is empty: it comes back +0.
	omitEmptyFloat struct {
		F float64 `json:",omitempty"`
	}
	omitZeroInts struct {
		A [2]int `json:",omitzero"`
		S Emb    `json:",omitzero"`
	}
	omitZeroFloats struct {
		A [2]float64 `json:",omitzero"`
	}
	alwaysZero     struct{ N int }
	omitZeroMethod struct {
		Z alwaysZero `json:",omitzero"`
	}
	quotedScalars struct {
		I int64   `json:",string"`
		U uint64  `json:",string"`
		B bool    `json:",string"`
		F float64 `json:",string"`
		G float32 `json:"g,string"`
	}
	quotedArray struct {
		A [2]int `json:",string"`
	}
	unexported struct {
		A int
		b int
	}
	blank struct {
		_ struct{}
		A int
		_ [0]func()
	}
	blankInt struct {
		_ int
		A int
	}
	arrays struct {
		A [3]int16
		B [2][2]bool
		C [2]uint8
		D [0]int
	}
	floats struct {
		F float64
		G float32
	}
	floatArrays struct {
		F [2]float64
		A [2]Emb
	}
	f64        float64
	f32        float32
	f64s       [3]float64
	withString struct{ S string }
	strings3   [3]string
	// encoding/json would use the Go name for an invalid tag name; flat
	// does not follow it there.
	badTagName struct {
		A int `json:"a'b"`
	}
	unknownOption struct {
		A int `json:"a,inline"`
	}
	marshals struct{ N int }
	nested   struct {
		P   promoted
		Arr [2]caseOnlyTags
	}
	nestedCollision struct {
		Arr [1]jsonCollision
	}
	withPointer struct{ P *int }
	withSlice   struct{ S []int }
)

func (alwaysZero) IsZero() bool { return true }

func (m marshals) MarshalJSON() ([]byte, error) { return []byte(`{}`), nil }

type flatCase struct {
	name      string
	typ       reflect.Type
	json, gob bool // flat's verdicts
}

func caseFor[T any](name string, json, gob bool) flatCase {
	return flatCase{name: name, typ: reflect.TypeFor[T](), json: json, gob: gob}
}

var flatCases = []flatCase{
	{name: "collision, both tagged", typ: reflect.StructOf([]reflect.StructField{
		{Name: "A", Type: reflect.TypeFor[int](), Tag: `json:"x"`},
		{Name: "B", Type: reflect.TypeFor[int](), Tag: `json:"x"`},
	}), json: false, gob: true},
	{name: "collision, one tagged with options", typ: reflect.StructOf([]reflect.StructField{
		{Name: "A", Type: reflect.TypeFor[int](), Tag: `json:"X,omitempty"`},
		{Name: "X", Type: reflect.TypeFor[int]()},
	}), json: false, gob: true},
	caseFor[jsonCollision]("collision, both tagged, in unexported embedded structs", false, false),
	caseFor[taggedDominates]("tagged dominates untagged", false, true),
	caseFor[untaggedCollision]("collision through embedding, untagged", false, true),
	caseFor[caseOnlyTags]("tags differing in case", true, true),
	caseFor[caseOnlyNames]("names differing in case", true, true),
	caseFor[kelvinTags]("tags folding together (Kelvin sign)", true, true),
	caseFor[promoted]("embedded struct promoted", true, true),
	caseFor[shadowed]("embedded field shadowed", false, true),
	caseFor[embeddedTwice]("struct embedded twice, same depth", false, true),
	caseFor[embeddedTwoDepths]("struct embedded twice, two depths", false, true),
	caseFor[unexportedEmbedded]("embedded unexported struct type", true, false),
	caseFor[embeddedTagged]("embedded struct with a tag name", true, true),
	caseFor[unexportedEmbeddedTagged]("embedded unexported struct type with a tag name", true, false),
	caseFor[embeddedDash]("embedded struct tagged -", false, true),
	caseFor[embeddedOmitEmpty]("embedded struct with options", false, true),
	caseFor[embeddedNum]("embedded exported non-struct", true, true),
	caseFor[embeddedUnexportedNum]("embedded unexported non-struct", false, false),
	caseFor[dash]("json:\"-\" (gob ignores json tags)", false, true),
	caseFor[dashComma]("json:\"-,\"", true, true),
	caseFor[omitEmptyInts]("omitempty on ints, bools, arrays, structs", true, true),
	caseFor[omitEmptyFloat]("omitempty on a float", false, false),
	caseFor[omitZeroInts]("omitzero without floats", true, true),
	caseFor[omitZeroFloats]("omitzero over floats", false, true),
	caseFor[omitZeroMethod]("omitzero with an IsZero method", false, true),
	caseFor[quotedScalars]("string option on scalars", true, false),
	caseFor[quotedArray]("string option on an array", false, true),
	caseFor[unexported]("unexported field", false, false),
	caseFor[blank]("zero-size blank fields", true, true),
	caseFor[blankInt]("blank int field", false, false),
	caseFor[arrays]("arrays", true, true),
	caseFor[floats]("float fields (gob drops -0)", true, false),
	caseFor[floatArrays]("float arrays", true, true),
	caseFor[f64]("top-level float64", true, true),
	caseFor[f32]("top-level float32 (gob quiets signaling NaNs)", true, false),
	caseFor[f64s]("top-level float64 array", true, true),
	caseFor[withString]("string field", false, true),
	caseFor[strings3]("string array", false, true),
	caseFor[badTagName]("tag name encoding/json refuses", false, true),
	caseFor[unknownOption]("unknown tag option", false, true),
	caseFor[marshals]("MarshalJSON", false, false),
	caseFor[nested]("nested structs and arrays", true, true),
	caseFor[nestedCollision]("collision in an array element", false, false),
	caseFor[withPointer]("pointer", false, false),
	caseFor[withSlice]("slice", false, false),
	caseFor[int]("int", true, true),
	caseFor[string]("string", false, true),
}

func TestFlat(t *testing.T) {
	for _, c := range flatCases {
		t.Run(c.name, func(t *testing.T) {
			if got := engine.Flat(c.typ, engine.JSONCodec{}); got != c.json {
				t.Errorf("flat(%v, JSON) = %v, want %v", c.typ, got, c.json)
			}
			if got := engine.Flat(c.typ, engine.GobCodec{}); got != c.gob {
				t.Errorf("flat(%v, gob) = %v, want %v", c.typ, got, c.gob)
			}
		})
	}
	if engine.Flat(reflect.TypeFor[int](), otherCodec{}) {
		t.Error("flat with a codec of the application's: true")
	}
}

// otherCodec is a codec flat knows nothing about.
type otherCodec struct{ engine.JSONCodec }
