package transport

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
)

// encryptVersion is the first byte of Encrypt's output: the format is
// version || nonce (12 bytes) || ciphertext || tag (16 bytes).
const encryptVersion byte = 1

// encryptOverhead is what Encrypt adds to a value: version, nonce and tag.
const encryptOverhead = 1 + 12 + 16

var (
	errEncryptShort   = fmt.Errorf("%w (encrypted: too short)", ErrBadValue)
	errEncryptVersion = fmt.Errorf("%w (encrypted: unknown format version)", ErrBadValue)
	errEncryptOpen    = fmt.Errorf("%w (encrypted: authentication failed)", ErrBadValue)
)

// Encrypt returns a Transformer that encrypts and authenticates a value
// with AES-GCM, the counterpart of Ktor's SessionTransportTransformerEncrypt
// (which uses AES-CBC and a separate MAC). Use it for client-side sessions,
// where the whole value travels in the cookie: the client can neither read
// nor change it. It needs no Sign alongside; it authenticates on its own.
//
// Each Transform draws a fresh random 96-bit nonce from the system's
// cryptographic random source (that of crypto/rand), so the same value
// encrypts differently every time. The output is a version byte (1), the
// nonce, then the ciphertext and its 16-byte tag: 29 bytes more than the
// value. The version byte and the session's name are authenticated as
// associated data, so a value encrypted for one session kind is refused by
// another, and a later format cannot be confused with this one.
//
// The first key encrypts; Untransform tries every key, in order, so that
// keys can be rotated: put the new key first and keep the old one after it
// until every value encrypted with it has expired, then drop it. Keys must
// be 16 (AES-128) or 32 (AES-256) random bytes, from crypto/rand; an empty
// list, any other length (24-byte AES-192 keys included) or an all-zero key
// is a configuration error, reported by CheckTransformer and returned by
// every call. The keys are copied. With random nonces, one key must not
// encrypt more than 2^32 values: rotate long before.
//
// Encryption hides the value but not its length, and does not expire it:
// a client can replay an older value it was given until the key is
// dropped. Put an expiry inside the value when that matters.
func Encrypt(keys ...[]byte) Transformer {
	if len(keys) == 0 {
		return configError("Encrypt: no key (give at least one 16- or 32-byte random key)")
	}
	var errs []error
	for i, k := range keys {
		switch {
		case len(k) != 16 && len(k) != 32:
			errs = append(errs, fmt.Errorf("Encrypt: key %d is %d bytes; AES-GCM keys must be 16 (AES-128) or 32 (AES-256) random bytes", i, len(k)))
		case allZero(k):
			errs = append(errs, fmt.Errorf("Encrypt: key %d is all zero bytes (was it ever filled?)", i))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return configError("%v", err)
	}
	e := &encrypter{aeads: make([]cipher.AEAD, len(keys))}
	for i, k := range keys {
		// The AEAD keeps its own expanded key: nothing retains k.
		block, err := aes.NewCipher(k)
		if err != nil {
			return configError("Encrypt: key %d: %v", i, err)
		}
		if e.aeads[i], err = cipher.NewGCMWithRandomNonce(block); err != nil {
			return configError("Encrypt: key %d: %v", i, err)
		}
	}
	return e
}

// encrypter is the Transformer of Encrypt. A cipher.AEAD from crypto/cipher
// is safe for concurrent use.
type encrypter struct {
	aeads []cipher.AEAD // one per key, the encrypting key first
}

func (e *encrypter) configErr() error { return nil }

// buffer returns a slice of n bytes for the output, with capacity n, and
// what Encrypt authenticates besides the value, version || name, placed
// after it in the same allocation: one allocation per call.
func buffer(n int, name string) (out, ad []byte) {
	buf := make([]byte, n+1+len(name))
	ad = buf[n:]
	ad[0] = encryptVersion
	copy(ad[1:], name)
	return buf[:n:n], ad
}

// Transform implements Transformer.
func (e *encrypter) Transform(name string, data []byte) ([]byte, error) {
	out, ad := buffer(len(data)+encryptOverhead, name)
	out[0] = encryptVersion
	return e.aeads[0].Seal(out[:1], nil, data, ad), nil
}

// Untransform implements Transformer. It makes one allocation, the size of
// the value, whatever the number of keys.
func (e *encrypter) Untransform(name string, data []byte) ([]byte, error) {
	if len(data) < encryptOverhead {
		return nil, errEncryptShort
	}
	if data[0] != encryptVersion {
		return nil, errEncryptVersion
	}
	out, ad := buffer(len(data)-encryptOverhead, name)
	for _, aead := range e.aeads {
		if v, err := aead.Open(out[:0], nil, data[1:], ad); err == nil {
			return v, nil
		}
	}
	return nil, errEncryptOpen
}
