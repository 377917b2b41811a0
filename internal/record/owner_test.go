package record

import (
	"bytes"
	"strings"
	"testing"
)

func TestOwnerRoundTrip(t *testing.T) {
	for _, owner := range []string{"", "u", "user@example.com", strings.Repeat("x", MaxOwnerLen)} {
		for _, payload := range [][]byte{nil, []byte("v"), bytes.Repeat([]byte{0}, 300)} {
			b := Encode(Record{Created: 1, Expires: 2, Payload: payload, Owner: owner})
			r, err := Decode(b)
			if err != nil {
				t.Fatalf("owner %q: %v", owner, err)
			}
			if r.Owner != owner || !bytes.Equal(r.Payload, payload) || r.Created != 1 || r.Expires != 2 {
				t.Fatalf("owner %q payload %d: got %q, %d bytes", owner, len(payload), r.Owner, len(r.Payload))
			}
			if !bytes.Equal(b[len(b)-len(payload):], payload) {
				t.Fatal("the payload does not end the record")
			}
		}
	}
	// An alias carries no owner.
	var d Digest
	if r, err := Decode(Encode(Record{Alias: true, Created: 1, Payload: d[:], Owner: "u"})); err != nil || r.Owner != "" {
		t.Fatalf("alias: %q, %v", r.Owner, err)
	}
}

func TestOwnedMalformed(t *testing.T) {
	b := Encode(Record{Created: 1, Payload: []byte("abc"), Owner: "owner"})
	for _, bad := range [][]byte{b[:HeaderLen], b[:HeaderLen+3], append(append([]byte{}, b[:HeaderLen]...), 0)} {
		if _, err := Decode(bad); err == nil {
			t.Fatalf("Decode(%x) accepted a truncated owned record", bad)
		}
	}
}

func TestOwnPolicyRoundTrip(t *testing.T) {
	own := &Policy{Idle: 3, Lifetime: 4}
	for _, owner := range []string{"", "u"} {
		b := Encode(Record{Created: 1, Expires: 2, Payload: []byte("pay"), Owner: owner, Own: own})
		r, err := Decode(b)
		if err != nil || r.Owner != owner || r.Own == nil || *r.Own != *own || string(r.Payload) != "pay" {
			t.Fatalf("owner %q: %+v, %v", owner, r, err)
		}
	}
	if r, _ := Decode(Encode(Record{Created: 1, Payload: []byte("x")})); r.Own != nil {
		t.Fatal("a plain record has its own policy")
	}
}
