package main

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Jar keeps a gRPC client's session, as a browser's cookie jar keeps a
// session cookie: its interceptors send the value it holds with every call
// and take a new one, or an empty one (forget it), from the response
// header. Give both to grpc.NewClient with grpc.WithUnaryInterceptor and
// grpc.WithStreamInterceptor. A Jar is safe for concurrent use; the zero
// value holds no session.
type Jar struct {
	mu    sync.Mutex // protects value
	value string     // the signed session ID, "" for none
}

// Value returns the session value the jar holds, "" for none.
func (j *Jar) Value() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.value
}

// SetValue replaces the session value the jar holds.
func (j *Jar) SetValue(v string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.value = v
}

// outgoing returns ctx with the jar's session in its outgoing metadata.
func (j *Jar) outgoing(ctx context.Context) context.Context {
	if v := j.Value(); v != "" {
		return metadata.AppendToOutgoingContext(ctx, MetadataKey, v)
	}
	return ctx
}

// take keeps what a response header says about the session, if anything.
func (j *Jar) take(md metadata.MD) {
	if vs := md.Get(MetadataKey); len(vs) > 0 {
		j.SetValue(vs[len(vs)-1])
	}
}

// UnaryInterceptor returns the jar's interceptor for unary calls.
func (j *Jar) UnaryInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		var header metadata.MD
		err := invoker(j.outgoing(ctx), method, req, reply, cc, append(opts, grpc.Header(&header))...)
		j.take(header) // also on error: a call that found no session clears it
		return err
	}
}

// StreamInterceptor returns the jar's interceptor for streaming calls: the
// header is taken when the first message (or the end of the stream)
// arrives.
func (j *Jar) StreamInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(j.outgoing(ctx), desc, cc, method, opts...)
		if err != nil {
			return nil, err
		}
		return &jarStream{ClientStream: cs, j: j}, nil
	}
}

// jarStream takes the header of its stream once the header has arrived.
type jarStream struct {
	grpc.ClientStream
	j    *Jar
	once sync.Once
}

// RecvMsg receives m; once it returns, the header has arrived or the
// stream has ended, so reading it does not wait.
func (s *jarStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	s.once.Do(func() {
		if md, herr := s.ClientStream.Header(); herr == nil {
			s.j.take(md)
		}
	})
	return err
}

// counterClient calls the Counter service on conn.
type counterClient struct{ conn grpc.ClientConnInterface }

func (c counterClient) unary(ctx context.Context, method string, opts ...grpc.CallOption) (int64, error) {
	out := new(wrapperspb.Int64Value)
	if err := c.conn.Invoke(ctx, "/"+serviceName+"/"+method, &emptypb.Empty{}, out, opts...); err != nil {
		return 0, err
	}
	return out.GetValue(), nil
}

// Get calls Get.
func (c counterClient) Get(ctx context.Context, opts ...grpc.CallOption) (int64, error) {
	return c.unary(ctx, "Get", opts...)
}

// Increment calls Increment.
func (c counterClient) Increment(ctx context.Context, opts ...grpc.CallOption) (int64, error) {
	return c.unary(ctx, "Increment", opts...)
}

// Renew calls Renew.
func (c counterClient) Renew(ctx context.Context, opts ...grpc.CallOption) (int64, error) {
	return c.unary(ctx, "Renew", opts...)
}

// Logout calls Logout.
func (c counterClient) Logout(ctx context.Context, opts ...grpc.CallOption) error {
	return c.conn.Invoke(ctx, "/"+serviceName+"/Logout", &emptypb.Empty{}, new(emptypb.Empty), opts...)
}

// IncrementStream opens an IncrementStream.
func (c counterClient) IncrementStream(ctx context.Context, opts ...grpc.CallOption) (grpc.BidiStreamingClient[emptypb.Empty, wrapperspb.Int64Value], error) {
	cs, err := c.conn.NewStream(ctx, &serviceDesc.Streams[0], "/"+serviceName+"/IncrementStream", opts...)
	if err != nil {
		return nil, err
	}
	return &grpc.GenericClientStream[emptypb.Empty, wrapperspb.Int64Value]{ClientStream: cs}, nil
}
