package dynamo

import (
	"testing"
	"time"
)

func TestClaimsKeepPullsOffEachOthersCandidates(t *testing.T) {
	c := newClaims()
	now := time.Unix(1_700_000_000, 0)
	c.now = func() time.Time { return now }

	if !c.take("acme", "evt_1") || c.take("acme", "evt_1") {
		t.Fatal("an event under a lease attempt was claimed twice")
	}
	if !c.take("globex", "evt_1") {
		t.Fatal("another tenant's entry of the same key was refused")
	}
	// A failed attempt frees the event at once: it may be another pull's to try.
	c.done("acme", "evt_1", false)
	if !c.take("acme", "evt_1") {
		t.Fatal("an event whose attempt failed stayed claimed")
	}
	// A leased one stays claimed while a concurrent pull's index read may still show it.
	c.done("acme", "evt_1", true)
	now = now.Add(claimRetention - time.Millisecond)
	if c.take("acme", "evt_1") {
		t.Fatal("a just-leased event was claimable")
	}
	now = now.Add(time.Millisecond)
	if !c.take("acme", "evt_1") {
		t.Fatal("a lapsed claim still held")
	}
}

func TestClaimsSweepLapsedOnes(t *testing.T) {
	c := newClaims()
	now := time.Unix(1_700_000_000, 0)
	c.now = func() time.Time { return now }
	for i := range 1022 {
		id := string(rune('a'+i%26)) + time.Duration(i).String()
		c.take("acme", id)
		c.done("acme", id, true)
	}
	c.take("acme", "held")
	now = now.Add(claimRetention)
	// The 1024th entry triggers a sweep: every lapsed claim goes, the one in flight stays.
	c.take("acme", "new")
	if len(c.held) != 2 || c.take("acme", "held") {
		t.Fatalf("after the sweep %d claims held", len(c.held))
	}
}
