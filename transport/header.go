package transport

import (
	"fmt"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

// HeaderConfig configures the HTTP header that carries a session ID. The
// zero value means the defaults given on each field.
type HeaderConfig struct {
	// Name is the header's name, a token (RFC 9110). Empty: the kind's
	// name. Headers that HTTP itself or proxies interpret (Cookie,
	// Connection, Content-Length, Host, Vary, ...) are refused. Note that
	// some proxies drop headers whose name has an underscore (nginx does by
	// default), which a kind name such as "SESSION_ID" has.
	Name string
}

// Header binds kind k to an HTTP header that carries its session ID, the
// counterpart of Ktor's header<T>(name, storage), for API clients that keep
// the ID themselves. A configuration error is held in the Binding and
// reported by Middleware.
//
// The client sends the ID in the request header; a new or renewed ID comes
// back in the response header of the same name, and a cleared session as
// that header with an empty value (which Ktor's header transport cannot
// express). Each response that carries the header also gets "Vary: <name>"
// and `Cache-Control: no-cache="<name>"`, and a response whose handler read
// the session gets "Vary: <name>" even when nothing is sent. If the
// request has several values (several header lines, or a comma-separated
// list), the first well-formed session ID is used.
func Header(k Kind, cfg HeaderConfig, ts ...Transformer) Binding {
	raw, err := rawOf(k)
	if err != nil {
		return Binding{err: err}
	}
	name := cfg.Name
	if name == "" {
		name = raw.Name()
	}
	if !isToken(name) {
		return Binding{err: fmt.Errorf("%w: transport: session %q: header %q: not a valid header name (set HeaderConfig.Name)", engine.ErrConfig, raw.Name(), name)}
	}
	key := textproto.CanonicalMIMEHeaderKey(name)
	if reserved(key) {
		return Binding{err: fmt.Errorf("%w: transport: session %q: header %q is interpreted by HTTP or proxies and cannot carry a session ID", engine.ErrConfig, raw.Name(), name)}
	}
	t := &headerTransport{key: key, noCache: `no-cache="` + key + `"`, max: storage.MaxIDLen}
	b := Binding{kind: raw, transport: t, slot: "header " + key, vary: key}.withTransformers(ts, 0)
	if b.seal != nil {
		t.max = MaxValueLen
	}
	return b
}

// reserved reports whether the canonical header name key is one a session
// header cannot take.
func reserved(key string) bool {
	switch key {
	case "Cache-Control", "Connection", "Content-Length", "Content-Type", "Cookie",
		"Host", "Keep-Alive", "Proxy-Connection", "Set-Cookie", "Te", "Trailer",
		"Transfer-Encoding", "Upgrade", "Vary":
		return true
	}
	return false
}

// headerTransport is the Transport of Header.
type headerTransport struct {
	key     string // the canonical header name
	noCache string // `no-cache="<key>"`
	max     int    // the longest value accepted: an ID, or a sealed value
}

// Receive implements Transport: the first well-formed ID among the header's
// values, found without allocating.
func (t *headerTransport) Receive(r *http.Request) string {
	first, _ := t.receiveAll(r)
	return first
}

// receiveAll implements multiReceiver.
func (t *headerTransport) receiveAll(r *http.Request) (first string, all []string) {
	for _, line := range r.Header[t.key] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ",")
			if part = textproto.TrimString(part); !validWire(part, t.max) {
				continue
			}
			switch {
			case first == "":
				first = part
			case len(all) == 0:
				all = append(all, first, part)
			case len(all) < maxValues:
				all = append(all, part)
			}
		}
	}
	return first, all
}

// Send implements Transport.
func (t *headerTransport) Send(w http.ResponseWriter, id string) {
	if !validWire(id, t.max) {
		return
	}
	t.set(w.Header(), id)
}

// Clear implements Transport: the header is sent with an empty value.
func (t *headerTransport) Clear(w http.ResponseWriter) {
	t.set(w.Header(), "")
}

func (t *headerTransport) set(h http.Header, value string) {
	h[t.key] = []string{value}
	addToken(h, "Vary", t.key)
	addToken(h, "Cache-Control", t.noCache)
}
