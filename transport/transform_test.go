package transport_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/transport"
)

// tfKey returns a deterministic key of n bytes for label, so that tests
// (and the fuzz seed corpora) can rebuild the same transformers.
func tfKey(label string, n int) []byte {
	var out []byte
	for i := 0; len(out) < n; i++ {
		s := sha256.Sum256(fmt.Appendf(nil, "steward transform test %s %d", label, i))
		out = append(out, s[:]...)
	}
	return out[:n]
}

// tfRandom returns n random bytes.
func tfRandom(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// tfFlip returns a copy of b with bit 0 of byte i flipped.
func tfFlip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

// tfMust returns the output of Transform, failing the test on error.
func tfMust(t *testing.T, tr transport.Transformer, name string, data []byte) []byte {
	t.Helper()
	out, err := tr.Transform(name, data)
	if err != nil {
		t.Fatalf("Transform(%q, %d bytes): %v", name, len(data), err)
	}
	return out
}

// tfWantBad checks that Untransform fails with ErrBadValue, returns no
// bytes and leaves its input alone.
func tfWantBad(t *testing.T, tr transport.Transformer, name string, in []byte) {
	t.Helper()
	orig := bytes.Clone(in)
	out, err := tr.Untransform(name, in)
	if err == nil {
		t.Fatalf("Untransform accepted %d hostile bytes, returned %d bytes", len(in), len(out))
	}
	if !errors.Is(err, transport.ErrBadValue) {
		t.Fatalf("Untransform error %v does not wrap ErrBadValue", err)
	}
	if out != nil {
		t.Errorf("Untransform returned %d bytes with its error", len(out))
	}
	if !bytes.Equal(in, orig) {
		t.Errorf("Untransform modified its input")
	}
}

// Keys shared by the tests below.
var (
	tfSignKey   = tfKey("sign", 32)
	tfSignOld   = tfKey("sign old", 64)
	tfAES128    = tfKey("aes128", 16)
	tfAES256    = tfKey("aes256", 32)
	tfAESOld    = tfKey("aes old", 32)
	tfDigestSlt = []byte("steward digest salt")
)

func TestTransformRoundTrip(t *testing.T) {
	ts := []struct {
		name     string
		tr       transport.Transformer
		overhead int // bytes added to the value, -1 if not fixed
	}{
		{"Sign", transport.Sign(tfSignKey), 32},
		{"Sign/rotation", transport.Sign(tfSignKey, tfSignOld), 32},
		{"Encrypt/AES-128", transport.Encrypt(tfAES128), 29},
		{"Encrypt/AES-256", transport.Encrypt(tfAES256), 29},
		{"Encrypt/rotation", transport.Encrypt(tfAES256, tfAES128), 29},
		{"Digest", transport.Digest(tfDigestSlt), 32},
		{"Digest/no salt", transport.Digest(nil), 32},
		{"Chain/empty", transport.Chain(), 0},
		{"Chain/Encrypt", transport.Chain(transport.Encrypt(tfAES256)), 29},
		{"Chain/Sign+Encrypt", transport.Chain(transport.Sign(tfSignKey), transport.Encrypt(tfAES256)), 32 + 29},
		{"Chain/Encrypt+Sign", transport.Chain(transport.Encrypt(tfAES128), transport.Sign(tfSignKey)), 29 + 32},
		{"Chain/Digest+Sign", transport.Chain(transport.Digest(tfDigestSlt), transport.Sign(tfSignKey)), 64},
		{"Chain/Digest+Encrypt+Sign", transport.Chain(transport.Digest(nil), transport.Encrypt(tfAES256), transport.Sign(tfSignKey)), 32 + 29 + 32},
		{"Chain/nested", transport.Chain(transport.Chain(transport.Sign(tfSignKey)), transport.Encrypt(tfAES128)), 32 + 29},
		{"Chain/user", transport.Chain(reverser{}, transport.Encrypt(tfAES128)), 29},
	}
	values := []struct {
		name string
		v    []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"small", []byte(`{"user":"ada","cart":[1,2,3]}`)},
		{"4KB", tfRandom(4096)},
	}
	for _, tc := range ts {
		t.Run(tc.name, func(t *testing.T) {
			if err := transport.CheckTransformer(tc.tr); err != nil {
				t.Fatalf("CheckTransformer: %v", err)
			}
			for _, v := range values {
				t.Run(v.name, func(t *testing.T) {
					in := bytes.Clone(v.v)
					enc := tfMust(t, tc.tr, "SESSION", in)
					if !bytes.Equal(in, v.v) {
						t.Fatal("Transform modified its input")
					}
					if tc.overhead >= 0 && len(enc) != len(in)+tc.overhead {
						t.Errorf("output is %d bytes for %d, want %d more", len(enc), len(in), tc.overhead)
					}
					encCopy := bytes.Clone(enc)
					dec, err := tc.tr.Untransform("SESSION", enc)
					if err != nil {
						t.Fatalf("Untransform: %v", err)
					}
					if !bytes.Equal(dec, v.v) {
						t.Fatalf("round trip gave %q, want %q", dec, v.v)
					}
					if !bytes.Equal(enc, encCopy) {
						t.Fatal("Untransform modified its input")
					}
					// Neither output aliases the input.
					if len(dec) > 0 {
						dec[0] ^= 0xff
						if !bytes.Equal(enc, encCopy) {
							t.Error("Untransform's output aliases its input")
						}
					}
					if len(enc) > 0 && len(in) > 0 {
						enc[0] ^= 0xff
						if !bytes.Equal(in, v.v) {
							t.Error("Transform's output aliases its input")
						}
					}
				})
			}
		})
	}
}

// reverser is a user-written Transformer: it reverses the bytes.
type reverser struct{}

func (reverser) Transform(_ string, data []byte) ([]byte, error) {
	out := make([]byte, len(data))
	for i, b := range data {
		out[len(data)-1-i] = b
	}
	return out, nil
}

func (r reverser) Untransform(name string, data []byte) ([]byte, error) {
	return r.Transform(name, data)
}

// failing is a user-written Transformer whose Untransform fails with an
// error of its own.
type failing struct{}

var errFailing = errors.New("failing: no")

func (failing) Transform(_ string, data []byte) ([]byte, error) { return bytes.Clone(data), nil }
func (failing) Untransform(string, []byte) ([]byte, error)      { return nil, errFailing }

func TestTransformHostile(t *testing.T) {
	const name = "SESSION"
	value := []byte(`{"user":"ada","admin":false}`)
	big := tfRandom(1 << 20)

	sign := transport.Sign(tfSignKey)
	signed := tfMust(t, sign, name, value)
	signedEmpty := tfMust(t, sign, name, nil)

	enc := transport.Encrypt(tfAES256)
	encrypted := tfMust(t, enc, name, value)
	const nonceAt, ctAt = 1, 13
	tagAt := len(encrypted) - 16

	dig := transport.Digest(tfDigestSlt)
	digested := tfMust(t, dig, name, value)

	signThenEnc := transport.Chain(sign, enc) // read: decrypt, then verify
	encThenSign := transport.Chain(enc, sign) // read: verify, then decrypt
	chained := tfMust(t, signThenEnc, name, value)

	// The ambiguity a NUL in the session name would open: name "a" with
	// value "b\x00X" and name "a\x00b" with value "X" MAC the same bytes.
	nulConfusion := tfMust(t, sign, "a", []byte("b\x00X"))
	nulConfusion = append([]byte("X"), nulConfusion[len(nulConfusion)-32:]...)

	withVersion := func(b []byte, v byte) []byte { c := bytes.Clone(b); c[0] = v; return c }
	bigWithVersion := withVersion(big, 1)

	cases := []struct {
		name string
		tr   transport.Transformer
		sess string
		in   []byte
	}{
		// Sign.
		{"sign/flipped bit in data", sign, name, tfFlip(signed, 3)},
		{"sign/flipped bit in MAC", sign, name, tfFlip(signed, len(signed)-1)},
		{"sign/flipped first MAC bit", sign, name, tfFlip(signed, len(value))},
		{"sign/truncated by 1 byte", sign, name, signed[:len(signed)-1]},
		{"sign/truncated to 0", sign, name, signed[:0]},
		{"sign/shorter than the MAC", sign, name, signed[:31]},
		{"sign/MAC only, data dropped", sign, name, signed[len(value):]},
		{"sign/extended by one byte", sign, name, append(bytes.Clone(signed), 0)},
		{"sign/extended in front", sign, name, append([]byte{'x'}, signed...)},
		{"sign/wrong key", transport.Sign(tfSignOld), name, signed},
		{"sign/key removed after rotation", transport.Sign(tfKey("sign new", 32)), name, tfMust(t, transport.Sign(tfSignOld), name, value)},
		{"sign/moved to another session name", sign, "OTHER", signed},
		{"sign/moved to a name of the same length", sign, "SESSIOM", signed},
		{"sign/moved to a prefix of the name", sign, "SESSIO", signed},
		{"sign/empty value moved to another name", sign, "OTHER", signedEmpty},
		{"sign/NUL in session name", sign, "a\x00b", nulConfusion},
		{"sign/empty input", sign, name, []byte{}},
		{"sign/nil input", sign, name, nil},
		{"sign/random bytes", sign, name, tfRandom(100)},
		{"sign/all zero, right length", sign, name, make([]byte, len(signed))},
		{"sign/all zero, MAC length", sign, name, make([]byte, 32)},
		{"sign/1 MB random", sign, name, big},
		{"sign/Digest output", sign, name, digested},

		// Encrypt.
		{"encrypt/flipped bit in ciphertext", enc, name, tfFlip(encrypted, ctAt+2)},
		{"encrypt/flipped bit in nonce", enc, name, tfFlip(encrypted, nonceAt+5)},
		{"encrypt/flipped bit in tag", enc, name, tfFlip(encrypted, tagAt+7)},
		{"encrypt/version byte 0", enc, name, withVersion(encrypted, 0)},
		{"encrypt/version byte 2", enc, name, withVersion(encrypted, 2)},
		{"encrypt/version byte 0xff", enc, name, withVersion(encrypted, 0xff)},
		{"encrypt/truncated by 1 byte", enc, name, encrypted[:len(encrypted)-1]},
		{"encrypt/truncated to 0", enc, name, encrypted[:0]},
		{"encrypt/shorter than nonce", enc, name, encrypted[:12]},
		{"encrypt/version, nonce and tag only", enc, name, encrypted[:29]},
		{"encrypt/one byte short of overhead", enc, name, encrypted[:28]},
		{"encrypt/extended by one byte", enc, name, append(bytes.Clone(encrypted), 0)},
		{"encrypt/wrong key", transport.Encrypt(tfAESOld), name, encrypted},
		{"encrypt/AES-128 key for an AES-256 value", transport.Encrypt(tfAES128), name, encrypted},
		{"encrypt/key removed after rotation", transport.Encrypt(tfKey("aes new", 32)), name, tfMust(t, transport.Encrypt(tfAESOld), name, value)},
		{"encrypt/moved to another session name", enc, "OTHER", encrypted},
		{"encrypt/moved to a name of the same length", enc, "SESSIOM", encrypted},
		{"encrypt/moved to the empty name", enc, "", encrypted},
		{"encrypt/empty input", enc, name, []byte{}},
		{"encrypt/nil input", enc, name, nil},
		{"encrypt/random bytes", enc, name, tfRandom(100)},
		{"encrypt/all zero, right length", enc, name, make([]byte, len(encrypted))},
		{"encrypt/all zero but version", enc, name, withVersion(make([]byte, len(encrypted)), 1)},
		{"encrypt/1 MB random", enc, name, big},
		{"encrypt/1 MB random, right version", enc, name, bigWithVersion},
		{"encrypt/Sign output", enc, name, signed},

		// Digest.
		{"digest/flipped bit in data", dig, name, tfFlip(digested, 0)},
		{"digest/flipped bit in digest", dig, name, tfFlip(digested, len(digested)-1)},
		{"digest/truncated by 1 byte", dig, name, digested[:len(digested)-1]},
		{"digest/shorter than the digest", dig, name, digested[:31]},
		{"digest/other salt", transport.Digest([]byte("other salt")), name, digested},
		{"digest/no salt", transport.Digest(nil), name, digested},
		{"digest/empty input", dig, name, []byte{}},
		{"digest/nil input", dig, name, nil},
		{"digest/all zero, right length", dig, name, make([]byte, len(digested))},
		{"digest/1 MB random", dig, name, big},

		// Chains.
		{"chain/flipped bit", signThenEnc, name, tfFlip(chained, 20)},
		{"chain/moved to another session name", signThenEnc, "OTHER", chained},
		{"chain/Sign+Encrypt, valid ciphertext over garbage", signThenEnc, name, tfMust(t, enc, name, []byte("garbage, no MAC here"))},
		{"chain/Sign+Encrypt, valid ciphertext over a short inner value", signThenEnc, name, tfMust(t, enc, name, []byte("x"))},
		{"chain/Encrypt+Sign, valid MAC over garbage", encThenSign, name, tfMust(t, sign, name, []byte("garbage, not a ciphertext"))},
		{"chain/Encrypt+Sign, valid MAC over a versioned garbage", encThenSign, name, tfMust(t, sign, name, withVersion(tfRandom(64), 1))},
		{"chain/Encrypt+Sign, valid MAC over nothing", encThenSign, name, signedEmpty},
		{"chain/Encrypt+Sign, valid MAC over a value of another name", encThenSign, name, tfMust(t, sign, name, tfMust(t, enc, "OTHER", value))},
		{"chain/layers in the wrong order", encThenSign, name, chained},
		{"chain/one layer only", signThenEnc, name, encrypted},
		{"chain/empty input", signThenEnc, name, nil},
		{"chain/1 MB random", signThenEnc, name, big},
		{"chain/user error is wrapped", transport.Chain(failing{}, sign), name, signed},
	}
	if len(cases) < 20 {
		t.Fatalf("only %d hostile cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tfWantBad(t, tc.tr, tc.sess, tc.in)
		})
	}

	// The valid originals still verify: the cases did not pass by luck.
	for _, ok := range []struct {
		tr transport.Transformer
		in []byte
	}{{sign, signed}, {enc, encrypted}, {dig, digested}, {signThenEnc, chained}} {
		if got, err := ok.tr.Untransform(name, ok.in); err != nil || !bytes.Equal(got, value) {
			t.Errorf("valid value: %q, %v", got, err)
		}
	}
}

// TestTransformUserErrorWrapped checks that a chain keeps a user-written
// Transformer's own error while wrapping ErrBadValue.
func TestTransformUserErrorWrapped(t *testing.T) {
	_, err := transport.Chain(failing{}).Untransform("S", []byte("x"))
	if !errors.Is(err, transport.ErrBadValue) || !errors.Is(err, errFailing) {
		t.Fatalf("error %v: want both ErrBadValue and the user's error", err)
	}
}

func TestTransformRotation(t *testing.T) {
	const name = "SESSION"
	value := []byte("rotate me")
	oldKey, newKey := tfKey("rot old", 32), tfKey("rot new", 32)
	tests := []struct {
		name     string
		old      transport.Transformer // the old key only
		both     transport.Transformer // new key first, old key kept
		newOnly  transport.Transformer // rotation ended
		oldFirst transport.Transformer // old key first (before the rotation)
	}{
		{"Sign", transport.Sign(oldKey), transport.Sign(newKey, oldKey), transport.Sign(newKey), transport.Sign(oldKey, newKey)},
		{"Encrypt", transport.Encrypt(oldKey), transport.Encrypt(newKey, oldKey), transport.Encrypt(newKey), transport.Encrypt(oldKey, newKey)},
		{"Encrypt/AES-128 to AES-256", transport.Encrypt(oldKey[:16]), transport.Encrypt(newKey, oldKey[:16]), transport.Encrypt(newKey), transport.Encrypt(oldKey[:16], newKey)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tfMust(t, tc.old, name, value)

			// During the rotation the old value still reads.
			got, err := tc.both.Untransform(name, before)
			if err != nil || !bytes.Equal(got, value) {
				t.Fatalf("old value under (new, old): %q, %v", got, err)
			}
			// It is re-transformed under the new key...
			after := tfMust(t, tc.both, name, got)
			if got, err := tc.newOnly.Untransform(name, after); err != nil || !bytes.Equal(got, value) {
				t.Fatalf("re-transformed value under (new): %q, %v", got, err)
			}
			// ... which a transformer with the old key only cannot read.
			tfWantBad(t, tc.old, name, after)
			// Values made before the rotation by a transformer that already
			// knew the new key (second) are still made with the old one.
			if got, err := tc.old.Untransform(name, tfMust(t, tc.oldFirst, name, value)); err != nil || !bytes.Equal(got, value) {
				t.Fatalf("(old, new) did not transform under old: %q, %v", got, err)
			}
			// Once the old key is dropped, the old value no longer reads.
			tfWantBad(t, tc.newOnly, name, before)
		})
	}

	// Signing is deterministic: (new, old) signs exactly as (new) does.
	a := tfMust(t, transport.Sign(newKey, oldKey), name, value)
	b := tfMust(t, transport.Sign(newKey), name, value)
	if !bytes.Equal(a, b) {
		t.Error("Sign(new, old) does not sign with new")
	}
}

func TestEncryptNonceFreshness(t *testing.T) {
	enc := transport.Encrypt(tfAES128)
	value := []byte("same value")
	const n = 1000
	seen := make(map[string]bool, n)
	for range n {
		out := tfMust(t, enc, "S", value)
		nonce := string(out[1:13])
		if seen[nonce] {
			t.Fatalf("nonce %x repeated", nonce)
		}
		seen[nonce] = true
	}
	a, b := tfMust(t, enc, "S", value), tfMust(t, enc, "S", value)
	if bytes.Equal(a, b) {
		t.Fatal("encrypting the same value twice gave the same output")
	}
	if bytes.Equal(a[13:], b[13:]) {
		t.Fatal("same ciphertext under different nonces")
	}
}

func TestTransformConfigErrors(t *testing.T) {
	good32 := tfKey("good", 32)
	bad := []struct {
		name string
		tr   transport.Transformer
	}{
		{"Sign/no keys", transport.Sign()},
		{"Sign/nil key", transport.Sign(nil)},
		{"Sign/empty key", transport.Sign([]byte{})},
		{"Sign/31 bytes", transport.Sign(tfKey("s", 31))},
		{"Sign/16 bytes", transport.Sign(tfKey("s", 16))},
		{"Sign/all-zero key", transport.Sign(make([]byte, 32))},
		{"Sign/good then short", transport.Sign(good32, tfKey("s", 8))},
		{"Encrypt/no keys", transport.Encrypt()},
		{"Encrypt/nil key", transport.Encrypt(nil)},
		{"Encrypt/15 bytes", transport.Encrypt(tfKey("e", 15))},
		{"Encrypt/24 bytes (AES-192)", transport.Encrypt(tfKey("e", 24))},
		{"Encrypt/33 bytes", transport.Encrypt(tfKey("e", 33))},
		{"Encrypt/64 bytes", transport.Encrypt(tfKey("e", 64))},
		{"Encrypt/all-zero key", transport.Encrypt(make([]byte, 16))},
		{"Encrypt/good then 24 bytes", transport.Encrypt(good32, tfKey("e", 24))},
		{"Chain/nil element", transport.Chain(transport.Sign(good32), nil)},
		{"Chain/bad element", transport.Chain(transport.Encrypt(tfKey("e", 24)), transport.Sign(good32))},
		{"Chain/nested bad element", transport.Chain(transport.Chain(transport.Sign()))},
		{"nil", nil},
		{"typed nil", (*userPtr)(nil)},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := transport.CheckTransformer(tc.tr)
			if !errors.Is(err, engine.ErrConfig) {
				t.Fatalf("CheckTransformer = %v, want an error wrapping engine.ErrConfig", err)
			}
			if errors.Is(err, transport.ErrBadValue) {
				t.Errorf("configuration error %v wraps ErrBadValue", err)
			}
			if tc.tr == nil || tc.name == "typed nil" {
				return
			}
			out, err := tc.tr.Transform("S", []byte("v"))
			if !errors.Is(err, engine.ErrConfig) || out != nil {
				t.Errorf("Transform = %q, %v; want the configuration error", out, err)
			}
			out, err = tc.tr.Untransform("S", []byte("some value that is long enough to be anything at all"))
			if !errors.Is(err, engine.ErrConfig) || !errors.Is(err, transport.ErrBadValue) || out != nil {
				t.Errorf("Untransform = %q, %v; want the configuration error, wrapping ErrBadValue", out, err)
			}
		})
	}

	// The message says what is wrong and never holds the key.
	key := []byte("0123456789abcdef01234567") // 24 bytes
	err := transport.CheckTransformer(transport.Encrypt(key))
	if msg := err.Error(); !bytes.Contains([]byte(msg), []byte("24 bytes")) || bytes.Contains([]byte(msg), key) {
		t.Errorf("message %q", msg)
	}

	good := []struct {
		name string
		tr   transport.Transformer
	}{
		{"Sign/32 bytes", transport.Sign(good32)},
		{"Sign/64 bytes", transport.Sign(tfKey("s", 64))},
		{"Sign/rotation", transport.Sign(good32, tfKey("s", 48))},
		{"Encrypt/16 bytes", transport.Encrypt(tfKey("e", 16))},
		{"Encrypt/32 bytes", transport.Encrypt(good32)},
		{"Encrypt/mixed rotation", transport.Encrypt(good32, tfKey("e", 16))},
		{"Digest/salt", transport.Digest([]byte("salt"))},
		{"Digest/nil salt", transport.Digest(nil)},
		{"Chain/empty", transport.Chain()},
		{"Chain/Sign+Encrypt", transport.Chain(transport.Sign(good32), transport.Encrypt(tfKey("e", 16)))},
		{"user-written", reverser{}},
	}
	for _, tc := range good {
		if err := transport.CheckTransformer(tc.tr); err != nil {
			t.Errorf("%s: CheckTransformer = %v", tc.name, err)
		}
	}
}

// userPtr is a user-written Transformer with a pointer receiver.
type userPtr struct{}

func (*userPtr) Transform(_ string, data []byte) ([]byte, error) { return bytes.Clone(data), nil }
func (*userPtr) Untransform(_ string, data []byte) ([]byte, error) {
	return bytes.Clone(data), nil
}

// TestSignNULName checks that Sign refuses a session name that would make
// its MAC input ambiguous.
func TestSignNULName(t *testing.T) {
	_, err := transport.Sign(tfSignKey).Transform("a\x00b", []byte("v"))
	if !errors.Is(err, engine.ErrConfig) {
		t.Fatalf("Transform with a NUL in the name: %v, want a configuration error", err)
	}
}

// TestTransformKeysCopied checks that changing a key slice after the
// constructor returned changes nothing.
func TestTransformKeysCopied(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func([]byte) transport.Transformer
		n    int
	}{
		{"Sign", func(k []byte) transport.Transformer { return transport.Sign(k) }, 32},
		{"Encrypt", func(k []byte) transport.Transformer { return transport.Encrypt(k) }, 32},
		{"Digest", transport.Digest, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := tfKey("copied", tc.n)
			reference := tc.make(bytes.Clone(k))
			tr := tc.make(k)
			for i := range k {
				k[i] = 0xAA
			}
			// Enough calls, from several goroutines, that the pools make
			// new hashers after the change.
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for range 50 {
						out, err := tr.Transform("S", []byte("v"))
						if err != nil {
							t.Error(err)
							return
						}
						if _, err := reference.Untransform("S", out); err != nil {
							t.Errorf("the caller's key change reached the transformer: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

// TestTransformConcurrent uses each transformer from many goroutines at
// once; run it with -race.
func TestTransformConcurrent(t *testing.T) {
	trs := map[string]transport.Transformer{
		"Sign":    transport.Sign(tfSignKey, tfSignOld),
		"Encrypt": transport.Encrypt(tfAES256, tfAES128),
		"Digest":  transport.Digest(tfDigestSlt),
		"Chain":   transport.Chain(transport.Sign(tfSignKey), transport.Encrypt(tfAES128)),
	}
	for name, tr := range trs {
		t.Run(name, func(t *testing.T) {
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					for i := range 200 {
						v := fmt.Appendf(nil, "goroutine %d value %d", g, i)
						sess := fmt.Sprintf("S%d", i%3)
						out, err := tr.Transform(sess, v)
						if err != nil {
							t.Error(err)
							return
						}
						got, err := tr.Untransform(sess, out)
						if err != nil || !bytes.Equal(got, v) {
							t.Errorf("round trip: %q, %v", got, err)
							return
						}
						if _, err := tr.Untransform(sess, tfFlip(out, i%len(out))); err == nil {
							t.Error("flipped value accepted")
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

// TestUntransformLargeAllocs checks that reading a 1 MB value, valid or
// not, allocates about its size once, however many keys are tried.
func TestUntransformLargeAllocs(t *testing.T) {
	const name = "S"
	value := tfRandom(1 << 20)
	sign := transport.Sign(tfKey("a", 32), tfKey("b", 32), tfSignKey)
	enc := transport.Encrypt(tfKey("a", 32), tfKey("b", 16), tfAES256)
	dig := transport.Digest(tfDigestSlt)
	signed := tfMust(t, transport.Sign(tfSignKey), name, value)
	encrypted := tfMust(t, transport.Encrypt(tfAES256), name, value)
	digested := tfMust(t, dig, name, value)
	garbage := tfRandom(1 << 20)
	garbage[0] = 1 // Encrypt's version byte

	for _, tc := range []struct {
		name string
		tr   transport.Transformer
		in   []byte
		ok   bool
	}{
		{"Sign/valid, last key", sign, signed, true},
		{"Sign/garbage", sign, garbage, false},
		{"Encrypt/valid, last key", enc, encrypted, true},
		{"Encrypt/garbage", enc, garbage, false},
		{"Digest/valid", dig, digested, true},
		{"Digest/garbage", dig, garbage, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			per := tfBytesPerRun(10, func() {
				_, err := tc.tr.Untransform(name, tc.in)
				if (err == nil) != tc.ok {
					t.Fatalf("Untransform: %v", err)
				}
			})
			if limit := uint64(len(tc.in)) + 64<<10; per > limit {
				t.Errorf("%d bytes allocated per Untransform of %d bytes, want at most %d", per, len(tc.in), limit)
			}
		})
	}
}

// tfBytesPerRun returns the fewest bytes the process allocated during one
// call of f, over runs calls.
func tfBytesPerRun(runs int, f func()) uint64 {
	f() // warm up pools
	best := ^uint64(0)
	var before, after runtime.MemStats
	for range runs {
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		best = min(best, after.TotalAlloc-before.TotalAlloc)
	}
	return best
}

// A client-side session value is encrypted before it goes into the cookie,
// and anything the client changed reads as "no session".
func ExampleEncrypt() {
	key := make([]byte, 32) // in production: from a secret store, made with crypto/rand
	rand.Read(key)
	enc := transport.Encrypt(key)
	if err := transport.CheckTransformer(enc); err != nil {
		panic(err) // at start-up
	}

	sealed, _ := enc.Transform("CART", []byte(`{"items":[42]}`))
	value, err := enc.Untransform("CART", sealed)
	fmt.Printf("%s %v\n", value, err)

	sealed[len(sealed)-1] ^= 1 // the client tampers with the cookie
	_, err = enc.Untransform("CART", sealed)
	fmt.Println(errors.Is(err, transport.ErrBadValue))
	// Output:
	// {"items":[42]} <nil>
	// true
}

// Keys are rotated by putting the new key first and keeping the old one
// until the values it made have expired.
func ExampleSign_rotation() {
	oldKey, newKey := make([]byte, 32), make([]byte, 32)
	rand.Read(oldKey)
	rand.Read(newKey)

	signed, _ := transport.Sign(oldKey).Transform("SESSION_ID", []byte("user=ada"))

	during := transport.Sign(newKey, oldKey) // signs with newKey, verifies with both
	value, err := during.Untransform("SESSION_ID", signed)
	fmt.Printf("%s %v\n", value, err)

	after := transport.Sign(newKey) // the old key is dropped
	_, err = after.Untransform("SESSION_ID", signed)
	fmt.Println(err != nil)
	// Output:
	// user=ada <nil>
	// true
}

// Configuration errors are found at start-up, not on the first request.
func ExampleCheckTransformer() {
	t := transport.Encrypt(make([]byte, 24)) // AES-192: not accepted
	err := transport.CheckTransformer(t)
	fmt.Println(errors.Is(err, engine.ErrConfig))
	// Output:
	// true
}
