package main

import (
	"context"
	"errors"
	"io"
	"math"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/steward-sessions/steward/engine"
)

// Count is the session value.
type Count struct {
	N int64 `json:"n"`
}

// errOverflow is returned by an increment of a counter at math.MaxInt64.
var errOverflow = errors.New("grpc: counter overflow")

// incr is the update function of every increment; it runs inside the
// session's actor.
func incr(c *Count) error {
	if c.N == math.MaxInt64 {
		return errOverflow
	}
	c.N++
	return nil
}

// serviceName is the full name of the service in counter.proto.
const serviceName = "steward.examples.counter.v1.Counter"

// counterServer is the service's handler type, what grpc checks the
// registered implementation against.
type counterServer interface {
	Get(context.Context, *emptypb.Empty) (*wrapperspb.Int64Value, error)
	Increment(context.Context, *emptypb.Empty) (*wrapperspb.Int64Value, error)
	Renew(context.Context, *emptypb.Empty) (*wrapperspb.Int64Value, error)
	Logout(context.Context, *emptypb.Empty) (*emptypb.Empty, error)
	IncrementStream(grpc.BidiStreamingServer[emptypb.Empty, wrapperspb.Int64Value]) error
}

// serviceDesc is what protoc-gen-go-grpc would generate from
// counter.proto, written by hand: the messages are well-known types, so
// there is nothing else to generate. TestServiceDescMatchesProto keeps the
// two in step.
var serviceDesc = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*counterServer)(nil),
	Methods: []grpc.MethodDesc{
		unaryMethod("Get", counterServer.Get),
		unaryMethod("Increment", counterServer.Increment),
		unaryMethod("Renew", counterServer.Renew),
		unaryMethod("Logout", counterServer.Logout),
	},
	Streams: []grpc.StreamDesc{{
		StreamName:    "IncrementStream",
		ServerStreams: true,
		ClientStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			return srv.(counterServer).IncrementStream(&grpc.GenericServerStream[emptypb.Empty, wrapperspb.Int64Value]{ServerStream: stream})
		},
	}},
	Metadata: "counter.proto",
}

// unaryMethod describes the unary method name, served by call.
func unaryMethod[Req, Res any](name string, call func(counterServer, context.Context, *Req) (*Res, error)) grpc.MethodDesc {
	fullMethod := "/" + serviceName + "/" + name
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(Req)
			if err := dec(in); err != nil {
				return nil, err
			}
			handler := func(ctx context.Context, req any) (any, error) {
				res, err := call(srv.(counterServer), ctx, req.(*Req))
				if err != nil {
					return nil, err
				}
				return res, nil
			}
			if interceptor == nil {
				return handler(ctx, in)
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: fullMethod}, handler)
		},
	}
}

// counterService implements counterServer on one session kind. Its
// handlers find the call's session through the Binding that Sessions put
// in the context, and return engine errors for Sessions to map.
type counterService struct {
	counts *engine.Kind[Count]
	codec  engine.Codec // the kind's, for updates by ID
}

// Get returns the count; a call without a session gets ErrNoSession.
func (c *counterService) Get(ctx context.Context, _ *emptypb.Empty) (*wrapperspb.Int64Value, error) {
	n, ok, err := c.counts.Get(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, engine.ErrNoSession
	}
	return wrapperspb.Int64(n.N), nil
}

// Increment adds one, creating the session if the call has none.
func (c *counterService) Increment(ctx context.Context, _ *emptypb.Empty) (*wrapperspb.Int64Value, error) {
	n, err := c.counts.Update(ctx, incr)
	if err != nil {
		return nil, err
	}
	return wrapperspb.Int64(n.N), nil
}

// Renew moves the session to a new ID, sent in the header, and returns the
// count.
func (c *counterService) Renew(ctx context.Context, _ *emptypb.Empty) (*wrapperspb.Int64Value, error) {
	if err := c.counts.Renew(ctx); err != nil {
		return nil, err
	}
	return c.Get(ctx, nil)
}

// Logout ends the session; the header tells the client to forget its ID.
func (c *counterService) Logout(ctx context.Context, _ *emptypb.Empty) (*emptypb.Empty, error) {
	if err := c.counts.Clear(ctx); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// IncrementStream adds one per client message and answers each with the
// new count, until the client closes its side.
func (c *counterService) IncrementStream(stream grpc.BidiStreamingServer[emptypb.Empty, wrapperspb.Int64Value]) error {
	ctx := stream.Context()
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		n, err := c.increment(ctx)
		if err != nil {
			return err
		}
		if err := stream.Send(wrapperspb.Int64(n.N)); err != nil {
			return err
		}
	}
}

// increment adds one to the call's session. While the call's header is
// not sent it goes through the call's Binding, so that a session it
// creates is announced in the header. Once the header is out (a stream's
// first reply) the Binding refuses changes with ErrTooLate, having applied
// nothing, and the session is updated by its ID through the byte-level
// API. By ID, an operation begins when it is made: after a renewal in
// another call it gets ErrRenewed at once, without the grace that calls in
// flight get, and after a logout ErrNoSession; the stream then ends.
func (c *counterService) increment(ctx context.Context) (Count, error) {
	n, err := c.counts.Update(ctx, incr)
	if !errors.Is(err, engine.ErrTooLate) {
		return n, err
	}
	raw := c.counts.Raw()
	b := engine.BindingOf(ctx, raw)
	if b == nil {
		return Count{}, engine.ErrNoBinding
	}
	id := b.ID()
	if id == "" {
		// No session when the header went: one made now could not reach
		// the client.
		return Count{}, engine.ErrNoSession
	}
	data, err := raw.Update(ctx, id, func(old []byte) ([]byte, error) {
		var v Count
		if err := c.codec.Unmarshal(old, &v); err != nil {
			return nil, err
		}
		if err := incr(&v); err != nil {
			return nil, err
		}
		return c.codec.Marshal(&v)
	})
	if err != nil {
		return Count{}, err
	}
	var v Count
	err = c.codec.Unmarshal(data, &v)
	return v, err
}
