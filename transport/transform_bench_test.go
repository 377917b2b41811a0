package transport_test

import (
	"testing"

	"github.com/steward-sessions/steward/transport"
)

// BenchmarkTransform measures each transformer on a ~100-byte session
// value, the size of a small client-side session.
func BenchmarkTransform(b *testing.B) {
	value := []byte(`{"user":"ada@example.com","roles":["reader","writer"],"cart":[101,202,303],"csrf":"k3J9x"}`)
	trs := []struct {
		name string
		tr   transport.Transformer
	}{
		{"Sign", transport.Sign(tfSignKey)},
		{"Encrypt/AES-128", transport.Encrypt(tfAES128)},
		{"Encrypt/AES-256", transport.Encrypt(tfAES256)},
		{"Digest", transport.Digest(tfDigestSlt)},
		{"Chain/Sign+Encrypt", transport.Chain(transport.Sign(tfSignKey), transport.Encrypt(tfAES128))},
	}
	for _, tc := range trs {
		out, err := tc.tr.Transform("SESSION", value)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name+"/Transform", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(value)))
			for b.Loop() {
				if _, err := tc.tr.Transform("SESSION", value); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/Untransform", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(value)))
			for b.Loop() {
				if _, err := tc.tr.Untransform("SESSION", out); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/Untransform-bad", func(b *testing.B) {
			bad := tfFlip(out, len(out)-1)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.tr.Untransform("SESSION", bad); err == nil {
					b.Fatal("accepted")
				}
			}
		})
	}
}
