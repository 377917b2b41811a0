package redisstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	neturl "net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"
	"github.com/steward-sessions/steward/storage"
)

// Defaults of Options.
const (
	DefaultPrefix      = "steward:"
	DefaultDialTimeout = time.Second
	DefaultTimeout     = time.Second

	// DefaultLocalReadBytes is the default of Options.LocalReadBytes:
	// 64 MiB.
	DefaultLocalReadBytes = 64 << 20
)

// Options configure a Store. The zero value means the defaults given on each
// field.
type Options struct {
	// Prefix goes in front of every session ID to make its key. Give each
	// application (or each session kind sharing one Redis) its own prefix.
	// On Redis Cluster it must not contain a hash tag ("{...}"), which
	// would put every session in one slot. Empty: DefaultPrefix,
	// "steward:".
	Prefix string

	// DialTimeout bounds how long connecting to Redis may take. Zero: the
	// URL's dial_timeout parameter if it has one, else DefaultDialTimeout
	// (one second).
	DialTimeout time.Duration

	// Timeout bounds how long a command waits for Redis to answer before
	// its connection is deemed broken: the command and every other one
	// waiting on that connection fail, and the next command connects anew.
	// A connection that pipelines commands from many callers (and the one
	// of the local reads, always) notices a silent Redis within about
	// twice the Timeout, by a PING of its own after half the Timeout
	// without answers. Zero: the URL's write_timeout parameter if it has
	// one, else DefaultTimeout (one second).
	Timeout time.Duration

	// LocalReads makes a Store on a single Redis server answer a read of
	// a session it has read before from its own memory, after one round
	// trip to Redis that it shares with the other reads in flight and
	// that proves the copy current (see "Local reads" in the package
	// comment). Off by default: under heavy contention for one session
	// between instances it makes compare-and-set conflicts likelier (the
	// package comment says what it costs). A URL with
	// client_cache=0 turns it off whatever this says. On Redis Cluster,
	// with Redis Sentinel, and with a URL of several addresses every read
	// asks Redis.
	LocalReads bool

	// LocalReadBytes bounds the memory the local reads keep, as rueidis
	// estimates it (the values, their keys and a few hundred bytes of
	// bookkeeping each); past it the least recently used entries go.
	// Zero: DefaultLocalReadBytes (64 MiB).
	LocalReadBytes int
}

// Store is a session storage in Redis, shared by every engine instance
// that uses the same Redis and Prefix. It implements storage.BytesStorage
// and storage.Versioned, and storage.Storage through the embedded
// storage.Streams; see the package comment for what it guarantees. Create
// it with New and Close it when done (the engine closes the storages of its
// kinds). A Store is safe for concurrent use.
type Store struct {
	storage.Streams // Read, Write and Invalidate over Load, Save and Delete

	client  rueidis.Client
	local   *localReads // nil when every read asks Redis
	prefix  string
	addr    string // for error messages: never the URL, which may hold a password
	closeMu sync.Mutex
	closed  bool // protected by closeMu
}

// New connects to the Redis at url and returns a Store on it. The URL has
// the form redis://[[user]:password@]host[:port][/db] (rediss:// for TLS,
// unix:///path/to/socket for a Unix socket), read by rueidis.ParseURL: its
// query may also set dial_timeout and write_timeout (which Options
// override), client_name, client_cache=0 (no local reads), and more seed
// nodes (addr=host:port). Command retries of rueidis stay off whatever the
// URL says, and its client-side cache serves only the local reads (see
// the package comment). A URL naming a node of a Redis Cluster gets a
// cluster client.
//
// New pings Redis and returns an error if it cannot be reached: connecting
// is bounded by the DialTimeout, the ping by the Timeout and ctx.
func New(ctx context.Context, url string, opts Options) (*Store, error) {
	if opts.DialTimeout < 0 || opts.Timeout < 0 || opts.LocalReadBytes < 0 {
		return nil, errors.New("redisstore: negative DialTimeout, Timeout or LocalReadBytes")
	}
	if u, err := neturl.Parse(url); err == nil && u.Path == "/" {
		// rueidis reads the empty database number after the slash as an
		// error: "redis://host:6379/" means database 0.
		u.Path = ""
		url = u.String()
	}
	copt, err := rueidis.ParseURL(url)
	if err != nil {
		// The URL may hold a password: do not repeat it.
		var uerr *neturl.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("redisstore: bad Redis URL: %w", err)
	}
	switch {
	case opts.DialTimeout > 0:
		copt.Dialer.Timeout = opts.DialTimeout
	case copt.Dialer.Timeout <= 0:
		copt.Dialer.Timeout = DefaultDialTimeout
	}
	switch {
	case opts.Timeout > 0:
		copt.ConnWriteTimeout = opts.Timeout
	case copt.ConnWriteTimeout <= 0:
		copt.ConnWriteTimeout = DefaultTimeout
	}
	// Once a connection runs its commands in the background, as the local
	// reads' one always does and the others do under concurrency, rueidis
	// notices a hung Redis only by a PING it sends when nothing has come
	// back for Dialer.KeepAlive, and that PING waits for the Timeout.
	// Half the Timeout keeps the whole within about twice the Timeout
	// (rueidis's default, a second, would take up to Timeout+2s). It is
	// also the TCP keep-alive period of the connection.
	if copt.Dialer.KeepAlive == 0 {
		copt.Dialer.KeepAlive = copt.ConnWriteTimeout / 2
	}
	// A command that failed is not sent again: a write whose answer was
	// lost may have been applied, and a blind retry of a compare-and-set
	// could apply it twice. The error goes to the caller at once instead.
	copt.DisableRetry = true
	local := opts.LocalReads && !copt.DisableCache
	// The cache of rueidis serves only the local reads, on a client of
	// their own (see newReadClient).
	copt.DisableCache = true
	addr := strings.Join(copt.InitAddress, ",")

	ctx, cancel := context.WithTimeout(ctx, copt.Dialer.Timeout+copt.ConnWriteTimeout)
	defer cancel()
	client, single, err := connect(ctx, copt)
	if err != nil {
		return nil, fmt.Errorf("redisstore: connecting to Redis at %s: %w", addr, err)
	}
	if err := client.Do(ctx, client.B().Ping().Build()).Error(); err != nil {
		client.Close()
		return nil, fmt.Errorf("redisstore: Redis at %s does not answer PING: %w", addr, err)
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	s := &Store{client: client, prefix: prefix, addr: addr}
	if local && single {
		cacheBytes := opts.LocalReadBytes
		if cacheBytes == 0 {
			cacheBytes = DefaultLocalReadBytes
		}
		reads, err := newReadClient(copt, cacheBytes)
		if err != nil {
			client.Close()
			return nil, fmt.Errorf("redisstore: connecting to Redis at %s: %w", addr, err)
		}
		if reads != nil {
			s.local = newLocalReads(reads, copt.ConnWriteTimeout)
		}
	}
	s.Streams = storage.NewStreams(s)
	return s, nil
}

// connect returns a client for copt: a Redis Cluster client when the one
// address given is a node of a cluster (or several are given), else a
// client of the single server, and then single is true. (Left to guess,
// rueidis tries a cluster client first and keeps its topology hooks on the
// single server's connection: a goroutine that outlives Close after every
// disconnection.)
func connect(ctx context.Context, copt rueidis.ClientOption) (client rueidis.Client, single bool, err error) {
	if len(copt.InitAddress) != 1 || copt.Sentinel.MasterSet != "" {
		client, err = rueidis.NewClient(copt)
		return client, false, err
	}
	sopt := copt
	sopt.ForceSingleClient = true
	c, err := rueidis.NewClient(sopt)
	if err != nil {
		if c != nil { // ForceSingleClient returns the client with the error
			c.Close()
		}
		return nil, false, err
	}
	info, err := c.Do(ctx, c.B().Info().Section("cluster").Build()).ToString()
	if err != nil {
		c.Close()
		return nil, false, err
	}
	if !strings.Contains(info, "cluster_enabled:1") {
		return c, true, nil
	}
	c.Close()
	client, err = rueidis.NewClient(copt)
	return client, false, err
}

// newReadClient returns the client of the local reads of the single server
// of copt: the client-side cache of rueidis, cacheBytes large, over one
// connection that carries the reads, their barriers and the invalidations
// Redis sends for the keys they read. It returns nil and no error when the
// server cannot track keys (no RESP3: Redis before 6).
//
// Writes go on the Store's other client. Redis sends an invalidation to a
// tracking connection as it executes the write that causes it, whoever
// wrote, so a barrier on this connection sees it all the same; and the
// other client, without a cache, keeps running an uncontended command on
// its caller's goroutine, where a cached one would always hand it to a
// background goroutine and back (measurably more conflicts between
// instances updating one session).
func newReadClient(copt rueidis.ClientOption, cacheBytes int) (rueidis.Client, error) {
	copt.ForceSingleClient = true
	copt.DisableCache = false
	copt.CacheSizeEachConn = cacheBytes
	// One connection, so that a barrier (a PING) goes where the
	// invalidations come: left to itself, rueidis spreads commands over
	// several connections per server.
	copt.PipelineMultiplex = -1
	// The default tracking of rueidis: OPTIN, keys tracked only for the
	// reads that ask for it; no NOLOOP (a Store's own writes, made on its
	// other connection, are someone else's to Redis anyway).
	copt.ClientTrackingOptions = nil
	c, err := rueidis.NewClient(copt)
	if err != nil && c != nil {
		c.Close()
	}
	if errors.Is(err, rueidis.ErrNoCache) {
		return nil, nil
	}
	return c, err
}

// Close closes the connections to Redis and stops the client's goroutines
// (a Redis Cluster client leaves one that ends within a second). Calls made
// afterwards fail. Calling Close again does nothing and returns nil.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if !s.closed {
		s.closed = true
		if s.local != nil {
			s.local.client.Close()
		}
		s.client.Close()
	}
	return nil
}

// Prefix returns the prefix of the Store's keys: the key of session id is
// Prefix()+id.
func (s *Store) Prefix() string { return s.prefix }

// A record is what is stored under a session's key: the version, 8 bytes
// big-endian, then the value. One Redis string holds both, so a value and
// its version are read and written together, and take less memory than a
// hash would (a hash converts to its large encoding past 64-byte fields).
const versionLen = 8

// errBadRecord is wrapped when a key under the prefix holds something this
// package did not write.
var errBadRecord = errors.New("redisstore: the key does not hold a session record")

// saveIf is the compare-and-set write, one script on one key (so it runs on
// Redis Cluster too): KEYS[1] is the session's key, ARGV[1] the expected
// version, ARGV[2] the new record, ARGV[3] the TTL in milliseconds (0: none,
// -1: the expiry is past, delete). Versions are compared as 8-byte strings:
// a Lua number cannot hold 64 bits. A stored record is never shorter than 8
// bytes, so the empty string stands for version 0, nothing stored. It
// answers 1 when it wrote, and otherwise the current record (nil when there
// is none). rueidis sends it with EVALSHA, and with EVAL when Redis answers
// NOSCRIPT (after a restart).
var saveIf = rueidis.NewLuaScript(`
local cur = redis.call('GETRANGE', KEYS[1], 0, 7)
if cur ~= ARGV[1] then
	return redis.call('GET', KEYS[1])
end
local ttl = tonumber(ARGV[3])
if ttl < 0 then
	redis.call('DEL', KEYS[1])
elseif ttl > 0 then
	redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
else
	redis.call('SET', KEYS[1], ARGV[2])
end
return 1
`)

func (s *Store) key(id string) string { return s.prefix + id }

// newRecord returns a record of n value bytes (to be filled in) under a
// fresh random version, and that version. Random versions, never reused,
// mean that a session deleted and created again never makes a version read
// before the deletion valid again.
func newRecord(n int) ([]byte, uint64) {
	v := rand.Uint64()
	for v == 0 {
		v = rand.Uint64()
	}
	rec := make([]byte, versionLen, versionLen+n)
	binary.BigEndian.PutUint64(rec, v)
	return rec, v
}

// ttlArg turns an expiry into a TTL: 0 for none, past for an expiry
// already past, else the milliseconds left, rounded up. The TTL is
// relative, so the expiry follows this machine's clock however far Redis's
// clock is from it.
func ttlArg(expires time.Time) (ttl int64, past bool) {
	if expires.IsZero() {
		return 0, false
	}
	d := time.Until(expires)
	if d <= 0 {
		return 0, true
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond), false
}

// parseRecord splits a stored record into its value and version.
func parseRecord(rec []byte) ([]byte, uint64, error) {
	if len(rec) < versionLen {
		return nil, 0, errBadRecord
	}
	v := binary.BigEndian.Uint64(rec)
	if v == 0 {
		return nil, 0, errBadRecord
	}
	return rec[versionLen:], v, nil
}

// wrap adds the operation to an error from Redis. The session ID is left
// out: it is a credential, and errors get logged. An error that is not
// Redis's answer (a timeout, a connection lost or refused) also wraps
// storage.ErrUnavailable: the command may have reached Redis all the same.
func (s *Store) wrap(op string, err error) error {
	if _, answered := rueidis.IsRedisErr(err); !answered && !errors.Is(err, errBadRecord) {
		return fmt.Errorf("redisstore: %s on Redis at %s: %w: %w", op, s.addr, storage.ErrUnavailable, err)
	}
	return fmt.Errorf("redisstore: %s on Redis at %s: %w", op, s.addr, err)
}

// LocalReads reports whether the Store answers reads from its own memory
// (see "Local reads" in the package comment): true if Options.LocalReads
// asked for it and the URL did not turn it off (client_cache=0), Redis is
// a single server, and it has RESP3 (Redis 6 or later).
func (s *Store) LocalReads() bool { return s.local != nil }

// LoadVersioned implements storage.Versioned: it returns the value stored
// under id and its version, or an error wrapping storage.ErrNotFound. With
// local reads, a value this Store has read before comes from its memory
// once a round trip to Redis has proven it current; without, it asks
// Redis. Either way the answer is as fresh as Redis's when the call began.
// The returned slice must not be modified.
func (s *Store) LoadVersioned(ctx context.Context, id string) ([]byte, uint64, error) {
	if !storage.ValidID(id) {
		return nil, 0, storage.ErrInvalidID
	}
	var res rueidis.RedisResult
	if s.local != nil {
		res = s.local.get(ctx, s.key(id))
	} else {
		res = s.client.Do(ctx, s.client.B().Get().Key(s.key(id)).Build())
	}
	rec, err := res.AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, 0, storage.ErrNotFound
	}
	if err != nil {
		return nil, 0, s.wrap("GET", err)
	}
	data, v, err := parseRecord(rec)
	if err != nil {
		return nil, 0, s.wrap("GET", err)
	}
	return data, v, nil
}

// SaveIf implements storage.Versioned. If the version stored under id is
// version (0: nothing is stored), it stores data there until expires (the
// zero time: no expiry) and returns the new version, a random one; an
// expires already past deletes the key instead and returns 0. Otherwise it
// stores nothing and returns an error wrapping storage.ErrConflict with
// the current value and version (nil and 0 if nothing is stored). Check
// and write are one atomic script in Redis.
//
// An error other than a conflict leaves the outcome unknown when the
// command reached Redis but its answer did not come back: the write may
// have been applied. SaveIf does not send it again.
func (s *Store) SaveIf(ctx context.Context, id string, data []byte, expires time.Time, version uint64) (uint64, []byte, uint64, error) {
	if !storage.ValidID(id) {
		return 0, nil, 0, storage.ErrInvalidID
	}
	var expected [versionLen]byte
	exp := ""
	if version != 0 {
		binary.BigEndian.PutUint64(expected[:], version)
		exp = string(expected[:])
	}
	ttl, past := ttlArg(expires)
	rec, newVersion := newRecord(len(data))
	ttlStr := strconv.FormatInt(ttl, 10)
	if past {
		ttlStr, newVersion = "-1", 0
	} else {
		rec = append(rec, data...)
	}
	res := saveIf.Exec(ctx, s.client, []string{s.key(id)}, []string{exp, rueidis.BinaryString(rec), ttlStr})
	if _, err := res.AsInt64(); err == nil {
		return newVersion, nil, 0, nil
	}
	cur, err := res.AsBytes()
	if rueidis.IsRedisNil(err) {
		return 0, nil, 0, fmt.Errorf("redisstore: SaveIf: %w: nothing is stored", storage.ErrConflict)
	}
	if err != nil {
		return 0, nil, 0, s.wrap("SaveIf", err)
	}
	curData, curVersion, err := parseRecord(cur)
	if err != nil {
		return 0, nil, 0, s.wrap("SaveIf", err)
	}
	return 0, curData, curVersion, fmt.Errorf("redisstore: SaveIf: %w", storage.ErrConflict)
}

// Load implements storage.BytesStorage: it returns the value stored under
// id, or an error wrapping storage.ErrNotFound, as LoadVersioned does. The
// returned slice must not be modified.
func (s *Store) Load(ctx context.Context, id string) ([]byte, error) {
	data, _, err := s.LoadVersioned(ctx, id)
	return data, err
}

// Save implements storage.BytesStorage: it stores data under id until
// expires (the zero time: no expiry) under a new version, whatever is
// stored there; an expires already past deletes the key instead. Unlike
// SaveIf it can overwrite another instance's write: the engine uses SaveIf.
func (s *Store) Save(ctx context.Context, id string, data []byte, expires time.Time) error {
	if !storage.ValidID(id) {
		return storage.ErrInvalidID
	}
	rec, _ := newRecord(len(data))
	rec = append(rec, data...)
	return s.set(ctx, id, rec, expires)
}

// set stores the record rec under the valid id, replacing whatever is
// there.
func (s *Store) set(ctx context.Context, id string, rec []byte, expires time.Time) error {
	b := s.client.B()
	ttl, past := ttlArg(expires)
	var cmd rueidis.Completed
	switch {
	case past:
		cmd = b.Del().Key(s.key(id)).Build()
	case ttl > 0:
		cmd = b.Set().Key(s.key(id)).Value(rueidis.BinaryString(rec)).PxMilliseconds(ttl).Build()
	default: // SET without an expiry clears the previous one
		cmd = b.Set().Key(s.key(id)).Value(rueidis.BinaryString(rec)).Build()
	}
	if err := s.client.Do(ctx, cmd).Error(); err != nil {
		return s.wrap("SET", err)
	}
	return nil
}

// Delete implements storage.BytesStorage: it removes the key of id.
// Deleting an unknown id is not an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	if !storage.ValidID(id) {
		return storage.ErrInvalidID
	}
	if err := s.client.Do(ctx, s.client.B().Del().Key(s.key(id)).Build()).Error(); err != nil {
		return s.wrap("DEL", err)
	}
	return nil
}

// Interface checks.
var (
	_ storage.Storage      = (*Store)(nil)
	_ storage.BytesStorage = (*Store)(nil)
	_ storage.Versioned    = (*Store)(nil)
	_ io.Closer            = (*Store)(nil)
)

// Keys implements storage.Lister: it SCANs each node for the Store's keys
// (500 at a time) and calls fn with their IDs. In a Cluster with replicas
// an ID may be given more than once.
func (s *Store) Keys(ctx context.Context, fn func(id string) bool) error {
	pattern := globEscape(s.prefix) + "*"
	for _, node := range s.client.Nodes() {
		var cursor uint64
		for {
			entry, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(pattern).Count(500).Build()).AsScanEntry()
			if err != nil {
				return s.wrap("SCAN", err)
			}
			for _, key := range entry.Elements {
				if id, ok := strings.CutPrefix(key, s.prefix); ok && storage.ValidID(id) && !fn(id) {
					return nil
				}
			}
			if cursor = entry.Cursor; cursor == 0 {
				break
			}
		}
	}
	return nil
}

// globEscape escapes the characters that are special in a SCAN pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}
