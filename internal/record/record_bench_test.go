package record

import "testing"

func BenchmarkDigestOf(b *testing.B) {
	id := "efc1d5f1-fbf9-4c9a-a800-1ff25f21d378"
	var d Digest
	for b.Loop() {
		d = DigestOf(id)
	}
	_ = d
}
