package slots_test

import (
	"context"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/slots"
)

// A key's places are its own: a full key makes its next caller wait, not another key's; a
// place given back lets the waiter in; an idle Keyed forgets every key.
func TestKeyedBoundsEachKey(t *testing.T) {
	k := slots.NewKeyed(2)
	ctx := context.Background()
	var held []func()
	for range 2 {
		leave, ok := k.Enter(ctx, "a")
		if !ok {
			t.Fatal("a place within the key's bound was refused")
		}
		held = append(held, leave)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, ok := k.Enter(short, "a"); ok {
		t.Fatal("a third place for a key of two")
	}
	other, ok := k.Enter(ctx, "b")
	if !ok {
		t.Fatal("another key waited for the full one")
	}
	other()

	got := make(chan bool)
	go func() {
		leave, ok := k.Enter(ctx, "a")
		if ok {
			leave()
		}
		got <- ok
	}()
	deadline := time.Now().Add(30 * time.Second)
	for k.Users("a") != 3 {
		if time.Now().After(deadline) {
			t.Fatal("the third caller never came to wait")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-got:
		t.Fatal("a third caller got in while both places were held")
	default:
	}
	held[0]()
	if !<-got {
		t.Fatal("the waiter did not get the place given back")
	}
	held[1]()
	if n := k.Busy(); n != 0 {
		t.Fatalf("idle Keyed still tracks %d keys", n)
	}
}

// A free place goes to a caller whose context has just ended, rather than a refusal.
func TestAcquireTakesAFreePlaceWhateverTheContext(t *testing.T) {
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	sem := make(chan struct{}, 1)
	if !slots.Acquire(ended, sem) {
		t.Fatal("a free place was refused to an ended context")
	}
	if slots.Acquire(ended, sem) {
		t.Fatal("a full semaphore gave a place")
	}
}
