package engine

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
)

// Codec turns session values into bytes and back, as Ktor's session
// serializers do. Implementations must be safe for concurrent use.
// Unmarshal gets a pointer to a zero value of the kind's type.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSONCodec is the default Codec: encoding/json.
type JSONCodec struct{}

// Marshal implements Codec.
func (JSONCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal implements Codec.
func (JSONCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// GobCodec encodes values with encoding/gob: compact for Go-only
// deployments, and able to carry types JSON cannot (maps with struct keys,
// say). Values that hold interfaces need their concrete types registered
// with gob.Register.
type GobCodec struct{}

// Marshal implements Codec.
func (GobCodec) Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Unmarshal implements Codec.
func (GobCodec) Unmarshal(data []byte, v any) error {
	return gob.NewDecoder(bytes.NewReader(data)).Decode(v)
}
