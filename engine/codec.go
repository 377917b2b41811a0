package engine

import "encoding/json"

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
