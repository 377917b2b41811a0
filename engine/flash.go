package engine

import "context"

// Flash keeps one-time messages for a client, such as "saved" after a
// redirect: a request adds them, and the next request that pops them gets
// them, exactly once even when several of that client's requests pop at
// the same moment (on a server-side kind). It is a kind of its own (its
// own cookie or header): bind Kind() to the transport like any other.
type Flash[T any] struct{ kind *Kind[[]T] }

// RegisterFlash registers a kind holding flash messages of type T. The
// options are those of Register; a short IdleTimeout suits messages that
// are shown on the next page.
func RegisterFlash[T any](e *Engine, name string, opts KindOptions) (*Flash[T], error) {
	k, err := Register[[]T](e, name, opts)
	if err != nil {
		return nil, err
	}
	return &Flash[T]{kind: k}, nil
}

// Kind returns the kind the messages are kept in, for the transport.
func (f *Flash[T]) Kind() *Kind[[]T] { return f.kind }

// Add appends msgs to the current request's flash messages.
func (f *Flash[T]) Add(ctx context.Context, msgs ...T) error {
	_, err := f.kind.Update(ctx, func(v *[]T) error {
		*v = append(*v, msgs...)
		return nil
	})
	return err
}

// Pop returns the current request's flash messages and removes them; nil
// if there are none.
func (f *Flash[T]) Pop(ctx context.Context) ([]T, error) {
	v, _, err := f.kind.Pop(ctx)
	return v, err
}
