package transport

import (
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

// CookieConfig configures the cookie that carries a session ID. The zero
// value means the defaults given on each field: a host-only, HttpOnly,
// SameSite=Lax session cookie named after the kind, on path "/".
//
// Names starting with "__Host-" or "__Secure-" (compared
// case-insensitively) get the checks browsers apply: both need Secure, and
// a __Host- cookie also needs Path "/" and no Domain. SameSite=None and
// Partitioned need Secure as well. A configuration that breaks these rules
// is reported by Middleware.
type CookieConfig struct {
	// Name is the cookie's name, a token (RFC 6265). Empty: the kind's
	// name.
	Name string

	// Path is the cookie's path; it must start with '/'. Empty: "/".
	Path string

	// Domain is the cookie's domain. Empty: none, a host-only cookie
	// (which is what you want unless subdomains must share the session).
	Domain string

	// MaxAge is the cookie's lifetime in seconds. Zero: a session cookie,
	// dropped when the browser closes. When positive, the cookie is sent
	// again each time the session's idle expiry moves forward, so that it
	// slides with the session. Negative values are a configuration error.
	MaxAge int

	// Secure restricts the cookie to HTTPS. Default: false; set it in
	// production.
	Secure bool

	// DisableHTTPOnly lets scripts read the cookie. Default: false, the
	// cookie is HttpOnly.
	DisableHTTPOnly bool

	// SameSite is the cookie's SameSite attribute. Zero: http.SameSiteLaxMode.
	// http.SameSiteDefaultMode omits the attribute (the browser's default
	// applies).
	SameSite http.SameSite

	// Partitioned sets the Partitioned attribute (CHIPS): the cookie is
	// kept per top-level site. It needs Secure.
	Partitioned bool
}

// Cookie binds kind k to a cookie that carries its session ID, the
// counterpart of Ktor's cookie<T>(name, storage). This is what most
// applications use. A configuration error is held in the Binding and
// reported by Middleware.
//
// The cookie transport sends Set-Cookie only when the ID changed (first
// Set, Renew, a request that used a renewed ID), when the session is
// cleared (the cookie is expired), and, for a cookie with a MaxAge, when the
// session's expiry was refreshed. Each response that carries Set-Cookie
// also gets "Vary: Cookie" and `Cache-Control: no-cache="Set-Cookie"`, so
// that shared caches never hand one client's cookie to another; a response
// whose handler read the session gets "Vary: Cookie" even when nothing is
// sent.
//
// On the request side, if several cookies have the name (a cookie set for
// another path or a parent domain, say), the first whose value is a
// well-formed session ID is used; other values are ignored.
func Cookie(k Kind, cfg CookieConfig, ts ...Transformer) Binding {
	raw, err := rawOf(k)
	if err != nil {
		return Binding{err: err}
	}
	t, err := newCookieTransport(raw.Name(), cfg)
	if err != nil {
		return Binding{err: err}
	}
	b := Binding{
		kind:      raw,
		transport: t,
		refresh:   t.SendsOnRefresh(),
		vary:      "Cookie",
		slot:      "cookie " + t.name + " (path " + t.path + ", domain " + strings.ToLower(strings.TrimPrefix(t.domain, ".")) + ")",
	}.withTransformers(ts, len(t.prefix)+len(t.suffix))
	if b.seal != nil {
		t.max = MaxValueLen - b.seal.overhead
	}
	return b
}

// cookieTransport is the Transport of Cookie. Its Set-Cookie lines are
// computed once, when it is made.
type cookieTransport struct {
	name, path, domain string
	maxAge             int
	max                int    // the longest value accepted: an ID, or a sealed value
	prefix             string // "name="
	suffix             string // "; Path=...; ..." after the value
	suffixNoAge        string // the same without Max-Age, for a session's own expiry
	clear              string // the whole Set-Cookie line that expires the cookie
}

func newCookieTransport(kindName string, cfg CookieConfig) (*cookieTransport, error) {
	c := http.Cookie{
		Name:        cfg.Name,
		Path:        cfg.Path,
		Domain:      cfg.Domain,
		MaxAge:      cfg.MaxAge,
		Secure:      cfg.Secure,
		HttpOnly:    !cfg.DisableHTTPOnly,
		SameSite:    cfg.SameSite,
		Partitioned: cfg.Partitioned,
	}
	if c.Name == "" {
		c.Name = kindName
	}
	if c.Path == "" {
		c.Path = "/"
	}
	if c.SameSite == 0 {
		c.SameSite = http.SameSiteLaxMode
	}
	fail := func(format string, args ...any) (*cookieTransport, error) {
		return nil, fmt.Errorf("%w: transport: session %q: cookie %q: %s", engine.ErrConfig, kindName, c.Name, fmt.Sprintf(format, args...))
	}
	lower := strings.ToLower(c.Name)
	switch {
	case !isToken(c.Name):
		return fail("the name is not a valid cookie name (set CookieConfig.Name)")
	case c.Path[0] != '/':
		return fail("Path %q does not start with '/'", c.Path)
	case c.MaxAge < 0:
		return fail("negative MaxAge %d", c.MaxAge)
	case c.SameSite < http.SameSiteDefaultMode || c.SameSite > http.SameSiteNoneMode:
		return fail("unknown SameSite value %d", c.SameSite)
	case strings.HasPrefix(lower, "__host-") && !c.Secure:
		return fail("a __Host- cookie needs Secure")
	case strings.HasPrefix(lower, "__host-") && c.Domain != "":
		return fail("a __Host- cookie cannot have a Domain")
	case strings.HasPrefix(lower, "__host-") && c.Path != "/":
		return fail("a __Host- cookie needs Path \"/\"")
	case strings.HasPrefix(lower, "__secure-") && !c.Secure:
		return fail("a __Secure- cookie needs Secure")
	case c.SameSite == http.SameSiteNoneMode && !c.Secure:
		return fail("SameSite=None needs Secure")
	case c.Partitioned && !c.Secure:
		return fail("Partitioned needs Secure")
	}
	// Valid checks the path's and the domain's characters.
	if err := c.Valid(); err != nil {
		return fail("%v", err)
	}
	line := c.String() // "name=" and the attributes: the value is empty
	noAge := c
	noAge.MaxAge = 0
	t := &cookieTransport{
		name:        c.Name,
		path:        c.Path,
		domain:      c.Domain,
		maxAge:      c.MaxAge,
		prefix:      c.Name + "=",
		suffix:      line[len(c.Name)+1:],
		suffixNoAge: noAge.String()[len(c.Name)+1:],
		max:         storage.MaxIDLen,
	}
	c.MaxAge = -1
	c.Expires = time.Unix(0, 0)
	t.clear = c.String()
	return t, nil
}

// SendsOnRefresh implements Refresher: a cookie with a MaxAge is sent again
// when the session's expiry moves.
func (t *cookieTransport) SendsOnRefresh() bool { return t.maxAge > 0 }

// Receive implements Transport. It scans the Cookie headers in place,
// without allocating, and returns the first value of the cookie that is a
// well-formed session ID.
func (t *cookieTransport) Receive(r *http.Request) string {
	first, _ := t.values(r, nil)
	return first
}

// receiveAll implements multiReceiver.
func (t *cookieTransport) receiveAll(r *http.Request) (string, []string) { return t.values(r, nil) }

// values returns the first well-formed value of the cookie and, only if
// there are several, all of them (at most maxValues).
func (t *cookieTransport) values(r *http.Request, all []string) (string, []string) {
	first := ""
	for _, line := range r.Header["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = textproto.TrimString(part)
			name, val, ok := strings.Cut(part, "=")
			if !ok || textproto.TrimString(name) != t.name {
				continue
			}
			val = textproto.TrimString(val)
			if len(val) > 1 && val[0] == '"' && val[len(val)-1] == '"' {
				val = val[1 : len(val)-1]
			}
			if !validWire(val, t.max) {
				continue
			}
			switch {
			case first == "":
				first = val
			case len(all) == 0:
				all = append(all, first, val)
			case len(all) < maxValues:
				all = append(all, val)
			}
		}
	}
	return first, all
}

// Send implements Transport. A cookie with a MaxAge carries the matching
// Expires as well, for clients that do not know Max-Age.
func (t *cookieTransport) Send(w http.ResponseWriter, id string) {
	if !validWire(id, t.max) {
		return // never put what could be an attribute into the header
	}
	line := t.prefix + id + t.suffix
	if t.maxAge > 0 {
		line += "; Expires=" + time.Now().Add(time.Duration(t.maxAge)*time.Second).UTC().Format(http.TimeFormat)
	}
	t.set(w.Header(), line)
}

// SendUntil implements ExpirySender: the cookie's Max-Age (and Expires)
// say when the session itself expires, whatever the configured MaxAge.
func (t *cookieTransport) SendUntil(w http.ResponseWriter, id string, expires time.Time) {
	if !validWire(id, t.max) {
		return
	}
	secs := int64(time.Until(expires)+time.Second-1) / int64(time.Second)
	if secs < 1 {
		secs = 1
	}
	line := t.prefix + id + t.suffixNoAge + "; Max-Age=" + strconv.FormatInt(secs, 10) +
		"; Expires=" + time.Now().Add(time.Duration(secs)*time.Second).UTC().Format(http.TimeFormat)
	t.set(w.Header(), line)
}

// Clear implements Transport: the cookie is expired.
func (t *cookieTransport) Clear(w http.ResponseWriter) {
	t.set(w.Header(), t.clear)
}

func (t *cookieTransport) set(h http.Header, line string) {
	h["Set-Cookie"] = append(h["Set-Cookie"], line)
	addToken(h, "Vary", "Cookie")
	addToken(h, "Cache-Control", `no-cache="Set-Cookie"`)
}
