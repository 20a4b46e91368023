package ddbfault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Refusals reach the SDK as DynamoDB's own would: the code and status it classifies by, never
// forwarded, and retried by the SDK when retries are on.
func TestRefusalsAreDynamoDBsErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		kind   Kind
		code   string
		status int
	}{
		{"throttle-400", Throttle, "ThrottlingException", 400},
		{"status500-internal-server-error", Status500, "InternalServerError", 500},
		{"status503-service-unavailable", Status503, "ServiceUnavailable", 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			ctx := context.Background()
			f.proxy.Add(Rule{Op: "PutItem", Kind: tc.kind, Times: 2})
			err := f.put(ctx, "refused", noRetry)
			if errorCode(err) != tc.code || httpStatus(err) != tc.status {
				t.Fatalf("put: %v (code %q, status %d), want %s %d", err, errorCode(err), httpStatus(err), tc.code, tc.status)
			}
			if f.stored(t, "refused") {
				t.Fatal("a refused put reached DynamoDB")
			}
			if err := f.put(ctx, "retried"); err != nil {
				t.Fatalf("put retried past one refusal: %v", err)
			}
			if !f.stored(t, "retried") {
				t.Fatal("the retried put is not stored")
			}
			if a, s := f.proxy.Acted("PutItem", tc.kind), f.proxy.Seen("PutItem"); a != 2 || s != 3 {
				t.Fatalf("acted %d, seen %d; want 2 refusals of 3 attempts", a, s)
			}
		})
	}
}

// A reset is a transport failure, a real RST, not a FIN or an answer; the SDK retries it.
func TestResetIsATransportError(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.proxy.Add(Rule{Op: "PutItem", Kind: Reset, Times: 2})
	err := f.put(ctx, "reset", noRetry)
	if !isSendError(err) || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("put: %v, want a send error from a connection reset", err)
	}
	if f.stored(t, "reset") {
		t.Fatal("a reset put reached DynamoDB")
	}
	if err := f.put(ctx, "retried"); err != nil || !f.stored(t, "retried") {
		t.Fatalf("put retried past a reset: %v", err)
	}
	if n := f.proxy.Acted("PutItem", Reset); n != 2 {
		t.Fatalf("acted %d, want 2", n)
	}
}

// A write whose answer is lost has happened: the caller sees a transport error, its retry
// meets its own write.
func TestApplyThenDropAppliesTheWrite(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.proxy.Add(Rule{Op: "PutItem", Kind: ApplyThenDrop, Times: 2})
	err := f.put(ctx, "dropped", noRetry)
	if !isSendError(err) || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("put: %v, want a send error from a connection reset", err)
	}
	if !f.stored(t, "dropped") {
		t.Fatal("the put whose answer was dropped is not stored")
	}
	_, err = f.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(f.table), Item: key("once"),
		ConditionExpression: aws.String("attribute_not_exists(tenant_id)")})
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		t.Fatalf("conditional put retried after its answer was dropped: %v, want its retry to fail the condition", err)
	}
	if a, s := f.proxy.Acted("PutItem", ApplyThenDrop), f.proxy.Seen("PutItem"); a != 2 || s != 3 {
		t.Fatalf("acted %d, seen %d; want 2 dropped answers of 3 attempts", a, s)
	}
}

func TestStallHoldsUntilRelease(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.proxy.Add(Rule{Op: "PutItem", Kind: Stall})
	for round := range 2 { // a stall after a Release waits for the next one
		id := fmt.Sprint("held-", round)
		done := make(chan error, 1)
		go func() { done <- f.put(ctx, id, noRetry) }()
		waitFor(t, "the put to stall", func() bool { return f.proxy.Stalled() == 1 })
		if f.stored(t, id) {
			t.Fatalf("round %d: a stalled put reached DynamoDB", round)
		}
		f.proxy.Release()
		if err := <-done; err != nil {
			t.Fatalf("round %d: put after Release: %v", round, err)
		}
		if !f.stored(t, id) || f.proxy.Stalled() != 0 {
			t.Fatalf("round %d: released put stored %v, still stalled %d", round, f.stored(t, id), f.proxy.Stalled())
		}
	}
	if n := f.proxy.Acted("PutItem", Stall); n != 2 {
		t.Fatalf("acted %d, want 2", n)
	}
}

// Clear stops new stalls but leaves the stalled where they are.
func TestClearLeavesStalledRequestsStalled(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.proxy.Add(Rule{Op: "PutItem", Kind: Stall})
	done := make(chan error, 1)
	go func() { done <- f.put(ctx, "held", noRetry) }()
	waitFor(t, "the put to stall", func() bool { return f.proxy.Stalled() == 1 })
	f.proxy.Clear()
	if err := f.put(ctx, "after-clear", noRetry); err != nil {
		t.Fatalf("put after Clear: %v", err)
	}
	if f.proxy.Stalled() != 1 || f.stored(t, "held") {
		t.Fatal("Clear let a stalled put go")
	}
	f.proxy.Release()
	if err := <-done; err != nil || !f.stored(t, "held") {
		t.Fatalf("put after Release: %v", err)
	}
}

// A caller that gives up ends its held request, which then never reaches DynamoDB: no write
// lands after the caller was told it failed.
func TestClientGivingUpEndsAHeldRequestUnforwarded(t *testing.T) {
	t.Parallel()
	for _, rule := range []Rule{{Op: "PutItem", Kind: Stall}, {Op: "PutItem", Kind: Delay, Delay: time.Hour}} {
		t.Run(rule.Kind.String(), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.proxy.Add(rule)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if err := f.put(ctx, "abandoned"); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("put: %v, want the caller's deadline", err)
			}
			f.idle(t)
			if f.proxy.Stalled() != 0 || f.proxy.Acted("PutItem", rule.Kind) != 1 {
				t.Fatalf("stalled %d, acted %d; want 0, 1", f.proxy.Stalled(), f.proxy.Acted("PutItem", rule.Kind))
			}
			f.proxy.Release()
			if f.stored(t, "abandoned") {
				t.Fatal("a request its caller gave up on reached DynamoDB")
			}
		})
	}
}

func TestDelayForwardsAfterTheDelay(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const delay = 300 * time.Millisecond
	f.proxy.Add(Rule{Op: "PutItem", Kind: Delay, Delay: delay, Times: 1})
	start := time.Now()
	if err := f.put(context.Background(), "late", noRetry); err != nil {
		t.Fatalf("delayed put: %v", err)
	}
	if took := time.Since(start); took < delay {
		t.Fatalf("delayed put took %v, less than the %v delay", took, delay)
	}
	if !f.stored(t, "late") || f.proxy.Acted("PutItem", Delay) != 1 {
		t.Fatalf("stored %v, acted %d", f.stored(t, "late"), f.proxy.Acted("PutItem", Delay))
	}
}

// Which requests a rule acts on: its operation, its Match, its Times and Rate, its place in
// the order, and whether it is still there.
func TestRulesPickTheirRequests(t *testing.T) {
	t.Parallel()
	for _, tc := range ruleCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newFixture(t))
		})
	}
}

func throttled(err error) bool { return errorCode(err) == "ThrottlingException" }

var ruleCases = []struct {
	name string
	run  func(t *testing.T, f fixture)
}{
	{"op-picks-the-operation", func(t *testing.T, f fixture) {
		f.proxy.Add(Rule{Op: "PutItem", Kind: Throttle})
		if err := f.get(t.Context(), "a", noRetry); err != nil {
			t.Fatalf("get under a PutItem rule: %v", err)
		}
		if err := f.put(t.Context(), "a", noRetry); !throttled(err) {
			t.Fatalf("put: %v, want throttled", err)
		}
	}},
	{"match-picks-by-body", func(t *testing.T, f fixture) {
		f.proxy.Add(Rule{Kind: Throttle, Match: func(b []byte) bool { return bytes.Contains(b, []byte(`"k1"`)) }})
		if err := f.put(t.Context(), "k1", noRetry); !throttled(err) {
			t.Fatalf("put k1: %v, want throttled", err)
		}
		if err := f.put(t.Context(), "k2", noRetry); err != nil {
			t.Fatalf("put k2: %v", err)
		}
	}},
	{"times-counts-acted-requests", func(t *testing.T, f fixture) {
		f.proxy.Add(Rule{Kind: Throttle, Times: 2})
		for i, want := range []bool{true, true, false} {
			if err := f.put(t.Context(), "a", noRetry); throttled(err) != want || (!want && err != nil) {
				t.Fatalf("put %d: %v, throttled want %v", i, err, want)
			}
		}
		if n := f.proxy.Acted("", Throttle); n != 2 {
			t.Fatalf("acted %d, want 2", n)
		}
	}},
	{"first-acting-rule-wins", func(t *testing.T, f fixture) {
		f.proxy.Add(Rule{Kind: Status503, Times: 1})
		f.proxy.Add(Rule{Kind: Throttle})
		if err := f.put(t.Context(), "a", noRetry); httpStatus(err) != 503 {
			t.Fatalf("first put: %v, want 503", err)
		}
		if err := f.put(t.Context(), "a", noRetry); !throttled(err) {
			t.Fatalf("second put: %v, want throttled by the next rule", err)
		}
	}},
	{"declining-rule-leaves-it-to-the-next", func(t *testing.T, f fixture) {
		f.proxy.Add(Rule{Kind: Status503, Match: func([]byte) bool { return false }})
		f.proxy.Add(Rule{Kind: Throttle})
		if err := f.put(t.Context(), "a", noRetry); !throttled(err) {
			t.Fatalf("put: %v, want throttled", err)
		}
		if n := f.proxy.Acted("", Status503); n != 0 {
			t.Fatalf("the declining rule acted %d times", n)
		}
	}},
	{"remove-and-clear", func(t *testing.T, f fixture) {
		remove := f.proxy.Add(Rule{Kind: Throttle})
		if err := f.put(t.Context(), "a", noRetry); !throttled(err) {
			t.Fatalf("put: %v, want throttled", err)
		}
		remove()
		remove()
		if err := f.put(t.Context(), "a", noRetry); err != nil {
			t.Fatalf("put after remove: %v", err)
		}
		f.proxy.Add(Rule{Kind: Throttle})
		f.proxy.Add(Rule{Kind: Status500})
		f.proxy.Clear()
		if err := f.put(t.Context(), "a", noRetry); err != nil {
			t.Fatalf("put after Clear: %v", err)
		}
	}},
	{"rate-acts-on-a-share", func(t *testing.T, f fixture) {
		f.proxy.Add(Rule{Op: "GetItem", Kind: Throttle, Rate: 0.5})
		const n = 100
		failed := 0
		for range n {
			if err := f.get(t.Context(), "a", noRetry); throttled(err) {
				failed++
			} else if err != nil {
				t.Fatal(err)
			}
		}
		// Binomial(100, 0.5) falls outside [15, 85] about once in 10^12 runs.
		if acted := f.proxy.Acted("GetItem", Throttle); acted != failed || failed < 15 || failed > 85 {
			t.Fatalf("throttled %d of %d at rate 0.5 (acted %d)", failed, n, acted)
		}
	}},
	{"seen-counts-per-operation", func(t *testing.T, f fixture) {
		f.proxy.Add(Rule{Op: "GetItem", Kind: Throttle})
		_ = f.put(t.Context(), "a", noRetry)
		_ = f.get(t.Context(), "a", noRetry)
		_ = f.get(t.Context(), "a", noRetry)
		if p, g, all := f.proxy.Seen("PutItem"), f.proxy.Seen("GetItem"), f.proxy.Seen(""); p != 1 || g != 2 || all != 3 {
			t.Fatalf("seen PutItem %d, GetItem %d, all %d; want 1, 2, 3", p, g, all)
		}
		if a, all := f.proxy.Acted("PutItem", Throttle), f.proxy.Acted("", Throttle); a != 0 || all != 2 {
			t.Fatalf("acted on PutItem %d, on all %d; want 0, 2", a, all)
		}
	}},
}

func TestAddPanicsOnRulesThatCannotAct(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "http://127.0.0.1:1")
	for _, r := range []Rule{{}, {Kind: ApplyThenDrop + 1}, {Kind: Throttle, Times: -1},
		{Kind: Throttle, Rate: -0.1}, {Kind: Throttle, Rate: 1.5}, {Kind: Delay, Delay: -time.Second}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Add(%+v) accepted it", r)
				}
			}()
			p.Add(r)
		}()
	}
}
