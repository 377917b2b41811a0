package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/transport"
)

// MetadataKey is the call metadata key that carries the signed session ID:
// in the request metadata from client to server, and in the response
// header metadata when the server gives a new ID (a non-empty value) or
// clears the client's (an empty value).
const MetadataKey = "session-id"

const (
	// maxValues bounds how many values of MetadataKey one call may carry
	// and have verified; the rest are ignored. A client that holds one
	// session sends one.
	maxValues = 8
	// maxValueLen bounds a value worth verifying: a signed 128-byte ID
	// (the longest valid one) is 214 bytes of base64url.
	maxValueLen = 256
)

// wire is base64url without padding, in its one canonical form: a value
// has one spelling, and needs no escaping in metadata.
var wire = base64.RawURLEncoding.Strict()

// Sessions carries the sessions of one server-side kind in gRPC call
// metadata, as the transport package's middleware does for HTTP. Install
// its UnaryInterceptor and StreamInterceptor on the grpc.Server; handlers
// then use the kind's request-level methods (Get, Update, Renew, Clear)
// with the call's context, and return engine errors as they come: the
// interceptors map them to status codes.
//
// For each call the interceptors verify the incoming values of MetadataKey,
// bind the call to the first ID that has a session (engine.RawKind.Bind or
// BindCandidates), and put the engine.Binding in the handler's context.
// The binding's outcome goes back in the response header metadata, which
// gRPC sends once, before the first response message:
//
//   - A unary call's outcome is known when its handler returns, and its
//     header goes out with the response (or with the error status), after
//     the interceptor returns: the interceptor takes the outcome then.
//   - A stream's header goes out before its first message, while the
//     handler may go on for long after: the interceptor takes the outcome
//     at the handler's first SendMsg or SendHeader, or when it returns if it
//     sent neither. From then on the binding refuses changes
//     (engine.ErrTooLate, nothing applied): a stream that goes on updating
//     its session does it by ID (see counterService.increment), and can no
//     longer renew or clear it.
//
// Handlers must leave the header to the interceptors: one that calls
// grpc.SendHeader itself sends it without the session, and the call then
// fails with Internal if the session had something to send.
type Sessions struct {
	kind *engine.RawKind
	sign transport.Transformer
	log  *slog.Logger
}

// NewSessions returns the interceptors' state for kind k, a server-side
// kind, signing IDs with key (32 random bytes or more; see transport.Sign).
// A nil log discards.
func NewSessions(k transport.Kind, key []byte, log *slog.Logger) (*Sessions, error) {
	if k == nil || k.Raw() == nil {
		return nil, fmt.Errorf("%w: grpc sessions: nil kind", engine.ErrConfig)
	}
	if k.Raw().ClientSide() {
		return nil, fmt.Errorf("%w: grpc sessions: kind %q is client-side; only server-side kinds have an ID to carry", engine.ErrConfig, k.Raw().Name())
	}
	sign := transport.Sign(key)
	if err := transport.CheckTransformer(sign); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sessions{kind: k.Raw(), sign: sign, log: log}, nil
}

// Seal returns what travels for session id: base64url of the ID and its
// HMAC-SHA256, which covers the kind's name too.
func (s *Sessions) Seal(id string) (string, error) {
	b, err := s.sign.Transform(s.kind.Name(), []byte(id))
	if err != nil {
		return "", err
	}
	return wire.EncodeToString(b), nil
}

// Open returns the session ID that v, a value of MetadataKey, carries, or
// "" if v does not verify. It never panics, whatever v holds.
func (s *Sessions) Open(v string) string {
	if v == "" || len(v) > maxValueLen {
		return ""
	}
	b, err := wire.DecodeString(v)
	if err != nil {
		return ""
	}
	id, err := s.sign.Untransform(s.kind.Name(), b)
	if err != nil || !storage.ValidID(string(id)) {
		return ""
	}
	return string(id)
}

// bind makes the call's Binding from its incoming metadata. forged reports
// that the call carried values of MetadataKey and none verified. A proxy
// may join repeated values into one, separated by commas (which the
// base64url alphabet lacks): each part counts as a value.
func (s *Sessions) bind(ctx context.Context) (b *engine.Binding, forged bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	var ids []string
	seen := 0
	for _, line := range md.Get(MetadataKey) {
		for v := range strings.SplitSeq(line, ",") {
			if seen == maxValues {
				break
			}
			seen++
			if id := s.Open(strings.TrimSpace(v)); id != "" {
				ids = append(ids, id)
			}
		}
	}
	switch len(ids) {
	case 0:
		b = s.kind.Bind("")
	case 1:
		b = s.kind.Bind(ids[0])
	default:
		b = s.kind.BindCandidates(ids)
	}
	return b, seen > 0 && len(ids) == 0
}

// header takes b's outcome (which seals b) and returns the header metadata
// that tells the client, nil when there is nothing to tell. A value that
// did not verify is cleared too, unless a new ID replaces it.
func (s *Sessions) header(b *engine.Binding, forged bool) (metadata.MD, error) {
	o := b.Outcome()
	switch {
	case o.Changed && o.ID != "":
		v, err := s.Seal(o.ID)
		if err != nil {
			s.log.Error("grpc sessions: sealing a session ID", "kind", s.kind.Name(), "error", err)
			return nil, status.Error(codes.Internal, "internal error")
		}
		return metadata.Pairs(MetadataKey, v), nil
	case o.Cleared, forged:
		return metadata.Pairs(MetadataKey, ""), nil
	}
	return nil, nil
}

// errHeaderSent is the status of a call whose handler sent the header
// itself before the session's outcome could join it.
var errHeaderSent = status.Error(codes.Internal, "internal error")

// UnaryInterceptor returns the interceptor for unary calls; see Sessions.
func (s *Sessions) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		b, forged := s.bind(ctx)
		resp, err := handler(engine.WithBindings(ctx, b), req)
		md, herr := s.header(b, forged)
		if herr == nil && md != nil {
			if serr := grpc.SetHeader(ctx, md); serr != nil {
				s.log.Error("grpc sessions: the handler sent the header itself; the session's change could not join it",
					"method", info.FullMethod, "error", serr)
				herr = errHeaderSent
			}
		}
		if herr != nil {
			return nil, herr
		}
		if err != nil {
			return nil, s.statusOf(ctx, info.FullMethod, err)
		}
		return resp, nil
	}
}

// StreamInterceptor returns the interceptor for streaming calls; see
// Sessions.
func (s *Sessions) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		b, forged := s.bind(ss.Context())
		w := &sessionStream{ServerStream: ss, ctx: engine.WithBindings(ss.Context(), b), s: s, b: b, forged: forged, method: info.FullMethod}
		err := handler(srv, w)
		// A stream that sent nothing: the header goes out with the status.
		if herr := w.apply(); herr != nil {
			return herr
		}
		if err != nil {
			return s.statusOf(w.ctx, info.FullMethod, err)
		}
		return nil
	}
}

// sessionStream is the grpc.ServerStream a streaming handler gets: its
// context carries the call's Binding, and the binding's outcome joins the
// header before the first message.
type sessionStream struct {
	grpc.ServerStream
	ctx    context.Context
	s      *Sessions
	b      *engine.Binding
	forged bool
	method string

	mu      sync.Mutex // protects applied and err
	applied bool       // the outcome was taken
	err     error      // what taking it returned
}

// Context returns the call's context with its Binding.
func (w *sessionStream) Context() context.Context { return w.ctx }

// apply takes the outcome, once, and sets it in the header to be sent. It
// returns the same error to every caller.
func (w *sessionStream) apply() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.applied {
		return w.err
	}
	w.applied = true
	md, err := w.s.header(w.b, w.forged)
	if err == nil && md != nil {
		if serr := w.ServerStream.SetHeader(md); serr != nil {
			w.s.log.Error("grpc sessions: the handler sent the header itself; the session's change could not join it",
				"method", w.method, "error", serr)
			err = errHeaderSent
		}
	}
	w.err = err
	return err
}

// SendHeader sends md with the session's outcome.
func (w *sessionStream) SendHeader(md metadata.MD) error {
	if err := w.apply(); err != nil {
		return err
	}
	return w.ServerStream.SendHeader(md)
}

// SendMsg sends m, after the header with the session's outcome if this is
// the first message.
func (w *sessionStream) SendMsg(m any) error {
	if err := w.apply(); err != nil {
		return err
	}
	return w.ServerStream.SendMsg(m)
}

// statusOf maps a handler's error to the status the client gets, and logs
// the ones the client cannot fix. A status error of the handler's own
// passes unchanged. Messages name only the class of the failure: an error
// from a storage may hold a path or an address.
func (s *Sessions) statusOf(ctx context.Context, method string, err error) error {
	var (
		code  codes.Code
		msg   string
		level = slog.LevelDebug
	)
	switch {
	case errors.Is(err, engine.ErrNoSession):
		code, msg = codes.Unauthenticated, "no session"
	case errors.Is(err, engine.ErrRenewed):
		code, msg = codes.Aborted, "session renewed: retry with the new session ID"
	case errors.Is(err, engine.ErrMaybeApplied):
		// Before the context's errors, which it wraps.
		code, msg, level = codes.Unknown, "the call may have been applied: read the count before retrying", slog.LevelWarn
	case errors.Is(err, engine.ErrConflict):
		// Before ErrStorage, which it wraps: nothing was applied.
		code, msg, level = codes.Aborted, "too many conflicting writes: retry", slog.LevelWarn
	case errors.Is(err, engine.ErrStorage):
		code, msg, level = codes.Unavailable, "storage unavailable", slog.LevelError
	case errors.Is(err, engine.ErrClosed):
		code, msg = codes.Unavailable, "shutting down"
	case errors.Is(err, errOverflow):
		code, msg = codes.OutOfRange, "counter overflow"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		st := status.FromContextError(err)
		code, msg = st.Code(), st.Message()
	default:
		if st, ok := status.FromError(err); ok {
			return st.Err()
		}
		code, msg, level = codes.Internal, "internal error", slog.LevelError
	}
	s.log.Log(ctx, level, "grpc sessions: call failed", "method", method, "code", code.String(), "error", err)
	return status.Error(code, msg)
}
