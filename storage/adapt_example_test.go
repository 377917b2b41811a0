package storage_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/steward-sessions/steward/storage"
)

// notes is a BytesStorage that embeds storage.Streams, and so is a
// storage.Storage too.
type notes struct {
	storage.Streams // Read, Write and Invalidate over Load, Save and Delete

	mu sync.Mutex // protects m
	m  map[string][]byte
}

func newNotes() *notes {
	n := &notes{m: make(map[string][]byte)}
	n.Streams = storage.NewStreams(n)
	return n
}

// Load, Save and Delete check the ID themselves: the engine calls them
// directly, not through Streams.
func (n *notes) Load(_ context.Context, id string) ([]byte, error) {
	if !storage.ValidID(id) {
		return nil, storage.ErrInvalidID
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	data, ok := n.m[id]
	if !ok {
		return nil, storage.ErrNotFound
	}
	return data, nil
}

func (n *notes) Save(_ context.Context, id string, data []byte, _ time.Time) error {
	if !storage.ValidID(id) {
		return storage.ErrInvalidID
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.m[id] = data
	return nil
}

func (n *notes) Delete(_ context.Context, id string) error {
	if !storage.ValidID(id) {
		return storage.ErrInvalidID
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.m, id)
	return nil
}

func ExampleStreams() {
	ctx := context.Background()
	var s storage.Storage = newNotes()
	_ = s.Write(ctx, "a", time.Time{}, func(w io.Writer) error {
		_, err := io.WriteString(w, "hello")
		return err
	})
	_ = s.Read(ctx, "a", func(r io.Reader) error {
		_, err := io.Copy(os.Stdout, r)
		return err
	})
	fmt.Println()
	fmt.Println(s.Invalidate(ctx, "../a"))
	// Output:
	// hello
	// storage: invalid session ID
}
