package transport_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/steward-sessions/steward/transport"
)

// The fuzz targets below feed client input to the decoders. Their keys are
// fixed so that the checked-in seed corpora under testdata/fuzz/ hold values
// that verify: the fuzzer then mutates valid values as well as garbage.
var (
	fuzzSignKey    = tfKey("fuzz sign", 32)
	fuzzSignOldKey = tfKey("fuzz sign old", 48)
	fuzzAESKey     = tfKey("fuzz aes", 32)
	fuzzAESOldKey  = tfKey("fuzz aes old", 16)
	fuzzSalt       = []byte("fuzz salt")
)

// fuzzSeeds adds, for each of a few session names, valid outputs of tr
// and some broken ones.
func fuzzSeeds(f *testing.F, tr transport.Transformer) {
	f.Helper()
	for _, name := range []string{"SESSION", "", "a\x00b"} {
		for _, v := range [][]byte{nil, []byte("v"), []byte(`{"user":"ada","cart":[1,2,3]}`), bytes.Repeat([]byte{0xfe}, 300)} {
			out, err := tr.Transform(name, v)
			if err != nil {
				continue // a NUL in the name, for Sign
			}
			f.Add(name, out)
			f.Add(name, tfFlip(out, len(out)/2))
			f.Add(name, out[:len(out)-1])
			f.Add(name, append(bytes.Clone(out), 0))
		}
		f.Add(name, []byte{})
		f.Add(name, []byte{1})
		f.Add(name, make([]byte, 29))
		f.Add(name, make([]byte, 32))
	}
}

// fuzzCheck is the property shared by the targets: Untransform never
// panics and never modifies its input; a failure wraps ErrBadValue and
// returns nothing; a success re-transforms and untransforms to the same
// bytes. It returns the untransformed value, or nil and false.
func fuzzCheck(t *testing.T, tr transport.Transformer, name string, data []byte) ([]byte, bool) {
	t.Helper()
	orig := bytes.Clone(data)
	out, err := tr.Untransform(name, data)
	if !bytes.Equal(data, orig) {
		t.Fatal("Untransform modified its input")
	}
	if err != nil {
		if !errors.Is(err, transport.ErrBadValue) {
			t.Fatalf("error %v does not wrap ErrBadValue", err)
		}
		if out != nil {
			t.Fatalf("%d bytes returned with error %v", len(out), err)
		}
		return nil, false
	}
	again, err := tr.Transform(name, out)
	if err != nil {
		t.Fatalf("Transform of an untransformed value: %v", err)
	}
	back, err := tr.Untransform(name, again)
	if err != nil || !bytes.Equal(back, out) {
		t.Fatalf("re-transformed value: %q, %v; want %q", back, err, out)
	}
	return out, true
}

func FuzzSignUntransform(f *testing.F) {
	byNew, byOld := transport.Sign(fuzzSignKey), transport.Sign(fuzzSignOldKey)
	tr := transport.Sign(fuzzSignKey, fuzzSignOldKey)
	fuzzSeeds(f, byNew)
	fuzzSeeds(f, byOld)
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		out, ok := fuzzCheck(t, tr, name, data)
		if !ok {
			return
		}
		// A value that verifies is one of our keys' output for it: a forged
		// MAC never verifies.
		a, errA := byNew.Transform(name, out)
		b, errB := byOld.Transform(name, out)
		if errA != nil || errB != nil || !bytes.Equal(data, a) && !bytes.Equal(data, b) {
			t.Fatalf("accepted %q for session %q, which neither key produces", data, name)
		}
	})
}

func FuzzEncryptUntransform(f *testing.F) {
	tr := transport.Encrypt(fuzzAESKey, fuzzAESOldKey)
	fuzzSeeds(f, tr)
	fuzzSeeds(f, transport.Encrypt(fuzzAESOldKey))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		fuzzCheck(t, tr, name, data)
	})
}

func FuzzDigestUntransform(f *testing.F) {
	tr := transport.Digest(fuzzSalt)
	fuzzSeeds(f, tr)
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		out, ok := fuzzCheck(t, tr, name, data)
		if !ok {
			return
		}
		// Digest is deterministic: what verifies is what it produces.
		if again, _ := tr.Transform(name, out); !bytes.Equal(again, data) {
			t.Fatalf("accepted %q, but Transform gives %q", data, again)
		}
	})
}

func FuzzChainUntransform(f *testing.F) {
	sign, enc := transport.Sign(fuzzSignKey), transport.Encrypt(fuzzAESKey)
	tr := transport.Chain(sign, enc)
	fuzzSeeds(f, tr)
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		out, ok := fuzzCheck(t, tr, name, data)
		if !ok {
			return
		}
		// Both layers verified: inside the ciphertext is exactly what our
		// key signs for out.
		inner, err := enc.Untransform(name, data)
		want, _ := sign.Transform(name, out)
		if err != nil || !bytes.Equal(inner, want) {
			t.Fatalf("accepted a value for session %q whose inner layer is %q, not %q (%v)", name, inner, want, err)
		}
	})
}

// TestFuzzCorpusValid checks that the checked-in seeds named valid_* still
// verify, so that a change of keys or format does not silently leave the
// fuzzers with garbage only (regenerate them then), and that the invalid_*
// ones still fail.
func TestFuzzCorpusValid(t *testing.T) {
	trs := map[string]transport.Transformer{
		"FuzzSignUntransform":    transport.Sign(fuzzSignKey, fuzzSignOldKey),
		"FuzzEncryptUntransform": transport.Encrypt(fuzzAESKey, fuzzAESOldKey),
		"FuzzDigestUntransform":  transport.Digest(fuzzSalt),
		"FuzzChainUntransform":   transport.Chain(transport.Sign(fuzzSignKey), transport.Encrypt(fuzzAESKey)),
	}
	for target, tr := range trs {
		files, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no seed corpus (%v)", target, err)
		}
		for _, file := range files {
			name, data := readFuzzSeed(t, file)
			_, err := tr.Untransform(name, data)
			switch base := filepath.Base(file); {
			case strings.HasPrefix(base, "valid_") && err != nil:
				t.Errorf("%s: %v", file, err)
			case strings.HasPrefix(base, "invalid_") && err == nil:
				t.Errorf("%s: accepted", file)
			}
		}
	}
}

// readFuzzSeed parses a "go test fuzz v1" file holding a string and a
// []byte.
func readFuzzSeed(t *testing.T, file string) (string, []byte) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 || lines[0] != "go test fuzz v1" {
		t.Fatalf("%s: not a two-argument fuzz seed", file)
	}
	unquote := func(line, prefix string) string {
		inner, ok := strings.CutPrefix(line, prefix+"(")
		inner, ok2 := strings.CutSuffix(inner, ")")
		s, err := strconv.Unquote(inner)
		if !ok || !ok2 || err != nil {
			t.Fatalf("%s: bad line %q", file, line)
		}
		return s
	}
	return unquote(lines[1], "string"), []byte(unquote(lines[2], "[]byte"))
}
