package engine_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

// Cart is the session value of the examples.
type Cart struct{ Items []string }

// Register a server-side session kind and update a request's session. In a
// server, the transport middleware makes the binding; here it is made by
// hand.
func ExampleRegister() {
	ctx := context.Background()
	eng, err := engine.New(engine.Options{})
	if err != nil {
		panic(err)
	}
	defer eng.Close(ctx)
	carts, err := engine.Register[Cart](eng, "SESSION_ID", engine.KindOptions{
		Storage: storage.NewMemory(storage.MemoryOptions{}),
	})
	if err != nil {
		panic(err)
	}

	req := engine.WithBindings(ctx, carts.Raw().Bind("")) // a request without a cookie
	cart, err := carts.Update(req, func(c *Cart) error {
		c.Items = append(c.Items, "tea")
		return nil
	})
	fmt.Println(cart.Items, err)
	// Output: [tea] <nil>
}

// Update is read-modify-write, atomic for the session: an operation on
// the same session from inside the function would wait for itself, and is
// refused.
func ExampleKind_Update() {
	ctx := context.Background()
	eng, _ := engine.New(engine.Options{})
	defer eng.Close(ctx)
	carts, _ := engine.Register[Cart](eng, "SESSION_ID", engine.KindOptions{Storage: storage.NewMemory(storage.MemoryOptions{})})
	req := engine.WithBindings(ctx, carts.Raw().Bind(""))

	_, err := carts.Update(req, func(c *Cart) error {
		_, _, inner := carts.Get(req)
		fmt.Println("Get inside Update:", errors.Is(inner, engine.ErrReentrant))
		c.Items = append(c.Items, "milk")
		return nil
	})
	fmt.Println(err)
	// Output:
	// Get inside Update: true
	// <nil>
}

// Renew on login: the request's session moves to a new ID; a later request
// with the old ID gets ErrRenewed and learns nothing.
func ExampleKind_Renew() {
	ctx := context.Background()
	eng, _ := engine.New(engine.Options{})
	defer eng.Close(ctx)
	carts, _ := engine.Register[Cart](eng, "SESSION_ID", engine.KindOptions{Storage: storage.NewMemory(storage.MemoryOptions{})})
	planted, _ := carts.Raw().Create(ctx, []byte(`{"Items":null}`))

	login := carts.Raw().Bind(planted)
	if err := carts.Renew(engine.WithBindings(ctx, login)); err != nil {
		panic(err)
	}
	fmt.Println("new ID sent:", login.Outcome().Changed)

	later := engine.WithBindings(ctx, carts.Raw().Bind(planted))
	_, _, err := carts.Get(later)
	fmt.Println(errors.Is(err, engine.ErrRenewed))
	// Output:
	// new ID sent: true
	// true
}

// Invalidate ends any session by ID ("log out my other devices").
func ExampleKind_Invalidate() {
	ctx := context.Background()
	eng, _ := engine.New(engine.Options{})
	defer eng.Close(ctx)
	carts, _ := engine.Register[Cart](eng, "SESSION_ID", engine.KindOptions{Storage: storage.NewMemory(storage.MemoryOptions{})})
	other, _ := carts.Raw().Create(ctx, []byte(`{"Items":["x"]}`))

	fmt.Println(carts.Invalidate(ctx, other))
	_, err := carts.Raw().Load(ctx, other)
	fmt.Println(errors.Is(err, engine.ErrNoSession))
	// Output:
	// <nil>
	// true
}

// RawKind is the byte-level API keyed by session ID, for transports of
// your own (a line protocol, gRPC metadata).
func ExampleRawKind() {
	ctx := context.Background()
	eng, _ := engine.New(engine.Options{})
	defer eng.Close(ctx)
	counters, _ := engine.RegisterRaw(eng, "COUNTER", engine.KindOptions{Storage: storage.NewMemory(storage.MemoryOptions{})})

	id, _ := counters.Create(ctx, []byte("0"))
	v, _ := counters.Update(ctx, id, func(old []byte) ([]byte, error) {
		return append(old, '+'), nil
	})
	fmt.Printf("%s\n", v)
	_, err := counters.Load(ctx, "never-issued")
	fmt.Println(errors.Is(err, engine.ErrNoSession))
	// Output:
	// 0+
	// true
}

// Bind sessions to their user on login, list the user's devices and log
// out the others.
func ExampleKind_BindOwner() {
	ctx := context.Background()
	eng, err := engine.New(engine.Options{})
	if err != nil {
		panic(err)
	}
	defer eng.Close(ctx)
	carts, err := engine.Register[Cart](eng, "SESSION_ID", engine.KindOptions{
		Storage:     storage.NewMemory(storage.MemoryOptions{}),
		MaxPerOwner: 5,
	})
	if err != nil {
		panic(err)
	}
	login := func() context.Context {
		req := engine.WithBindings(ctx, carts.Raw().Bind(""))
		if err := carts.Set(req, Cart{}); err != nil {
			panic(err)
		}
		if err := carts.BindOwner(req, "ann"); err != nil {
			panic(err)
		}
		return req
	}
	phone, _ := login(), login()
	list, err := carts.Sessions(phone)
	fmt.Println(len(list), err)
	n, err := carts.InvalidateOthers(phone)
	fmt.Println(n, err)
	list, _ = carts.Sessions(phone)
	fmt.Println(len(list), list[0].Current)
	// Output:
	// 2 <nil>
	// 1 <nil>
	// 1 true
}

// Flash messages: added by one request, shown by the next, once.
func ExampleFlash() {
	ctx := context.Background()
	eng, err := engine.New(engine.Options{})
	if err != nil {
		panic(err)
	}
	defer eng.Close(ctx)
	flash, err := engine.RegisterFlash[string](eng, "FLASH", engine.KindOptions{
		Storage: storage.NewMemory(storage.MemoryOptions{}),
	})
	if err != nil {
		panic(err)
	}
	b := flash.Kind().Raw().Bind("")
	if err := flash.Add(engine.WithBindings(ctx, b), "saved"); err != nil {
		panic(err)
	}
	id := b.Outcome().ID // the cookie the client gets

	next := engine.WithBindings(ctx, flash.Kind().Raw().Bind(id))
	fmt.Println(flash.Pop(next))
	again := engine.WithBindings(ctx, flash.Kind().Raw().Bind(id))
	fmt.Println(flash.Pop(again))
	// Output:
	// [saved] <nil>
	// [] <nil>
}
