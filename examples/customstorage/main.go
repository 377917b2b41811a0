// Command customstorage shows the two ways to write a Steward storage: Gzip
// wraps any storage through the streaming interface, and MapStore is a
// backend of three byte-slice methods turned into a storage by
// storage.FromBytes. The program stores one large session through
// Gzip(MapStore) and prints how much the stored bytes shrank.
//
//	go run ./examples/customstorage
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/storage"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "customstorage:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx := context.Background()
	backend := &MapStore{}
	eng, err := engine.New(engine.Options{})
	if err != nil {
		return err
	}
	defer eng.Close(ctx)
	carts, err := engine.RegisterRaw(eng, "CART", engine.KindOptions{
		Storage: Gzip{Inner: storage.FromBytes(backend)},
	})
	if err != nil {
		return err
	}
	value := []byte(strings.Repeat(`{"sku":"A-1234","qty":1},`, 400))
	id, err := carts.Create(ctx, value)
	if err != nil {
		return err
	}
	stored, err := backend.Load(ctx, id)
	if err != nil {
		return err
	}
	back, err := carts.Load(ctx, id)
	if err != nil {
		return err
	}
	fmt.Printf("session %s: %d bytes, %d stored, read back intact: %v\n",
		id, len(value), len(stored), string(back) == string(value))
	return nil
}
