package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestBarrierRounds: reads that arrive while no round trip is in flight
// share the next one; a read that arrives while one is in flight waits for
// the one after it, which is sent when the first comes back.
func TestBarrierRounds(t *testing.T) {
	sent := make(chan chan error) // each round trip, to be answered by the test
	b := &barrier{timeout: time.Minute, ping: func(ctx context.Context) error {
		answer := make(chan error)
		sent <- answer
		return <-answer
	}}
	waitFor := func() <-chan error {
		ch := make(chan error, 1)
		go func() { ch <- b.wait(context.Background()) }()
		return ch
	}
	notYet := func(ch <-chan error, what string) {
		t.Helper()
		select {
		case err := <-ch:
			t.Fatalf("%s returned (%v) before its round trip came back", what, err)
		case <-time.After(20 * time.Millisecond):
		}
	}

	first := waitFor()
	round1 := <-sent
	late := waitFor() // arrives while round 1 is in flight
	notYet(first, "the first read")
	select {
	case <-sent:
		t.Fatal("a second round trip was sent while the first was in flight")
	case <-time.After(20 * time.Millisecond):
	}
	round1 <- nil
	if err := <-first; err != nil {
		t.Fatalf("first read: %v", err)
	}
	notYet(late, "a read that arrived during round 1")
	round2 := <-sent // sent because the late read waits
	later := waitFor()
	notYet(late, "a read that arrived during round 1")
	round2 <- errors.New("connection lost")
	if err := <-late; err == nil || err.Error() != "connection lost" {
		t.Fatalf("late read = %v, want round 2's error", err)
	}
	round3 := <-sent
	round3 <- nil
	if err := <-later; err != nil {
		t.Fatalf("later read: %v", err)
	}
	if n := b.rounds.Load(); n != 3 {
		t.Fatalf("%d round trips, want 3", n)
	}

	// A read whose context ends leaves without waiting for its round.
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- b.wait(ctx) }()
	round4 := <-sent
	cancel()
	if err := <-ch; !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with a cancelled context = %v, want context.Canceled", err)
	}
	round4 <- nil
	// The sender finishes by itself: nothing waits any more.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		b.mu.Lock()
		flying := b.flying
		b.mu.Unlock()
		if !flying {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the barrier still has a round in flight")
		}
	}
}
