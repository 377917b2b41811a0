package storage

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// ErrHiddenVersioned is returned, wrapped, by CheckVersioned when a wrapper
// hides the compare-and-set capability of the storage it wraps. Check it
// with errors.Is.
var ErrHiddenVersioned = errors.New("storage: a wrapper hides a Versioned storage")

// checkMaxDepth bounds how many fields deep CheckVersioned looks, and
// checkMaxValues how many values it looks at in all.
const (
	checkMaxDepth  = 8
	checkMaxValues = 1000
)

// CheckVersioned returns an error wrapping ErrHiddenVersioned when s hides a
// Versioned storage: VersionedOf(s) is nil, yet s holds a storage whose
// VersionedOf is not. The engine would then write through s with plain
// saves, and the updates that several engine instances make to one
// session would overwrite each other: a wrapper such as a compressing
// Storage around a redisstore.Store silently turns compare-and-set into
// last-write-wins. It is meant for the engine to run when a kind is
// registered, and for the tests of wrappers of your own.
//
// A storage that implements Versioned, or reports the capability of what
// it wraps through a method `Versioned() Versioned` (as Cache and the
// adapters of FromBytes and AsBytes do), passes. Otherwise CheckVersioned
// looks into s, a struct or a pointer to one, up to eight fields deep: it
// reads the fields, exported or not, whose type is an interface or a
// pointer to a storage, and the elements of slices and arrays of those; it
// looks into structs held by value, and into the storages it finds, so that
// it also sees through a wrapper of a wrapper. It never reads other fields
// (which could be changing under another goroutine), never follows maps or
// channels, follows a pointer once, and recovers from a panicking
// Versioned method, so it is safe on any value. The error names the
// innermost storage that hides the Versioned one and the field it holds it
// in.
func CheckVersioned(s any) error {
	if versionedOfSafe(s) != nil {
		return nil
	}
	v := reflect.ValueOf(s)
	if !v.IsValid() {
		return nil
	}
	c := checker{seen: make(map[checkSeen]bool)}
	f, ok := c.fields(v, holder{t: v.Type()}, "", 0)
	if !ok {
		return nil
	}
	wrapper := f.holder.t.String()
	field := f.path
	if f.holder.path != "" {
		wrapper = fmt.Sprintf("%s (in field %s of %T)", wrapper, f.holder.path, s)
		field = strings.TrimPrefix(field, f.holder.path+".")
	}
	return fmt.Errorf("%w: %s holds %s in its field %s but does not report its "+
		"compare-and-set, so the engine would write through it with plain saves and "+
		"lose concurrent updates from other engine instances. Implement "+
		"storage.Versioned on %s (transforming values as its other methods do), or, "+
		"if it passes values through unchanged, give it a method "+
		"`Versioned() storage.Versioned` returning storage.VersionedOf of what it "+
		"wraps; or do not wrap a storage that several instances share",
		ErrHiddenVersioned, wrapper, f.hidden, field, f.holder.t)
}

// versionedOfSafe is VersionedOf, with nil for a Versioned method that
// panics.
func versionedOfSafe(s any) (v Versioned) {
	defer func() {
		if recover() != nil {
			v = nil
		}
	}()
	return VersionedOf(s)
}

var (
	versionedType = reflect.TypeFor[Versioned]()
	versionerType = reflect.TypeFor[interface{ Versioned() Versioned }]()
	storageType   = reflect.TypeFor[Storage]()
	bytesType     = reflect.TypeFor[BytesStorage]()
)

// checker walks the fields of a value for CheckVersioned.
type checker struct {
	seen   map[checkSeen]bool // pointers already followed
	values int                // values looked at
}

// checkSeen identifies a pointer already followed.
type checkSeen struct {
	t reflect.Type
	p uintptr
}

// holder is a storage the walk went through: the checked value, or one
// held in its fields.
type holder struct {
	t    reflect.Type
	path string // its field's, from the checked value; "" for the checked value
}

// finding is a Versioned storage hidden in a field.
type finding struct {
	holder holder // the innermost storage holding the field
	path   string // the field's, from the checked value: Inner, a.b[2]
	hidden string // what the field holds
}

// storageLike reports whether a value of type t is a storage, worth looking
// into.
func storageLike(t reflect.Type) bool {
	return t.Implements(storageType) || t.Implements(bytesType) || t.Implements(versionerType)
}

// follow reports whether the walk reads a field, slice element or array
// element of static type t: interfaces, and pointers to storages. Other
// pointers lead to objects of their own, perhaps changing under other
// goroutines' feet.
func follow(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer:
		return storageLike(t)
	}
	return false
}

// fields looks into the fields of the struct that v is or points to. path
// names v ("" for the checked value itself), h is the innermost storage
// holding it (perhaps v).
func (c *checker) fields(v reflect.Value, h holder, path string, depth int) (finding, bool) {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return finding{}, false
		}
		key := checkSeen{v.Type(), v.Pointer()}
		if c.seen[key] {
			return finding{}, false
		}
		c.seen[key] = true
		v = v.Elem()
	}
	t := v.Type()
	if v.Kind() != reflect.Struct || depth >= checkMaxDepth || t.PkgPath() == "sync" || t.PkgPath() == "sync/atomic" {
		return finding{}, false
	}
	for i := range t.NumField() {
		ft, fv := t.Field(i).Type, v.Field(i)
		name := t.Field(i).Name
		if path != "" {
			name = path + "." + name
		}
		switch {
		case follow(ft):
			if f, ok := c.field(fv, h, name, depth+1); ok {
				return f, true
			}
		case ft.Kind() == reflect.Struct:
			if f, ok := c.fields(fv, h, name, depth+1); ok {
				return f, true
			}
		case (ft.Kind() == reflect.Slice || ft.Kind() == reflect.Array) && follow(ft.Elem()):
			for j := range min(fv.Len(), checkMaxValues) {
				if f, ok := c.field(fv.Index(j), h, fmt.Sprintf("%s[%d]", name, j), depth+1); ok {
					return f, true
				}
			}
		}
	}
	return finding{}, false
}

// field looks at x, read from a field (or element) named path whose type
// is an interface or a pointer, held by h.
func (c *checker) field(x reflect.Value, h holder, path string, depth int) (finding, bool) {
	c.values++
	if x.IsNil() || c.values > checkMaxValues {
		return finding{}, false
	}
	if x.Kind() == reflect.Interface {
		x = x.Elem()
		if x.Kind() == reflect.Pointer && x.IsNil() {
			return finding{}, false
		}
	}
	t := x.Type()
	if x.CanInterface() {
		if vs := versionedOfSafe(x.Interface()); vs != nil {
			return finding{h, path, describe(t, vs)}, true
		}
	} else if t.Implements(versionedType) {
		// Read through an unexported field, so its methods cannot be
		// called; its type says enough. (A wrapper's Versioned method
		// cannot be called either: the walk looks into the wrapper.)
		return finding{h, path, describe(t, nil)}, true
	}
	if !storageLike(t) {
		return finding{}, false
	}
	return c.fields(x, holder{t, path}, path, depth)
}

// describe names a storage of type t whose compare-and-set capability is vs
// (nil: t's own).
func describe(t reflect.Type, vs Versioned) string {
	if vt := reflect.TypeOf(vs); vs != nil && vt != t {
		return fmt.Sprintf("a %s (with the compare-and-set of a %s)", t, vt)
	}
	return "a " + t.String()
}
