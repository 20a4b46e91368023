package ddb

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// blockingDynamoDB answers every call with an empty GetItem once release closes, and counts
// how many it holds at once.
type blockingDynamoDB struct {
	release   chan struct{}
	now, most atomic.Int32
	arrived   chan struct{}
}

func (b *blockingDynamoDB) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := b.now.Add(1)
	defer b.now.Add(-1)
	for m := b.most.Load(); n > m && !b.most.CompareAndSwap(m, n); m = b.most.Load() {
	}
	b.arrived <- struct{}{}
	<-b.release
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_, _ = w.Write([]byte(`{}`))
}

func slotsClient(t *testing.T, url string) *dynamodb.Client {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	c, err := NewClient(t.Context(), Settings{Region: "us-east-1", Endpoint: url, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Calls under one set of slots run at most that many at once; the rest start as those end.
// Calls without slots are not held back by them.
func TestCallSlotsBoundConcurrentCalls(t *testing.T) {
	srv := &blockingDynamoDB{release: make(chan struct{}), arrived: make(chan struct{}, 16)}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	client := slotsClient(t, ts.URL)
	ctx := WithCallSlots(t.Context(), make(chan struct{}, 2))
	get := func(ctx context.Context) error {
		_, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("t"), Key: Item{"k": S("v")}})
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 5 {
		wg.Go(func() { errs <- get(ctx) })
	}
	<-srv.arrived
	<-srv.arrived
	// A call of no tenant's reaches DynamoDB while the two slots are taken.
	wg.Go(func() { errs <- get(t.Context()) })
	select {
	case <-srv.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("a call without slots did not reach DynamoDB while another caller's slots were taken")
	}
	if n := srv.now.Load(); n != 3 {
		t.Fatalf("%d calls at DynamoDB, want the 2 slots' and the free one", n)
	}
	close(srv.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if m := srv.most.Load(); m != 3 {
		t.Fatalf("at most %d calls at once, want 3 (2 slots + 1 free)", m)
	}
}

// A call waiting for a slot gives up with its context.
func TestCallSlotsWaitEndsWithTheContext(t *testing.T) {
	srv := &blockingDynamoDB{release: make(chan struct{}), arrived: make(chan struct{}, 4)}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer close(srv.release)
	client := slotsClient(t, ts.URL)
	slots := make(chan struct{}, 1)
	slots <- struct{}{} // taken by a call still running
	ctx, cancel := context.WithTimeout(WithCallSlots(t.Context(), slots), 50*time.Millisecond)
	defer cancel()
	_, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("t"), Key: Item{"k": S("v")}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's deadline", err)
	}
	if n := srv.most.Load(); n != 0 {
		t.Fatalf("%d calls reached DynamoDB without a slot", n)
	}
}
