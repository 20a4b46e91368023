package notify_test

import (
	"context"
	"net"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/events"
	eventsdb "github.com/trigger-api/trigger-api/pkg/events/dynamo"
	"github.com/trigger-api/trigger-api/pkg/notify"
	"github.com/trigger-api/trigger-api/pkg/queue"
	"github.com/trigger-api/trigger-api/pkg/tenant"
)

var shared *ddblocal.Shared

func TestMain(m *testing.M) { ddblocal.Main(m, &shared) }

// deployment is an ingest and inbox replicas over one Events table, every one of them
// notifying every inbox through its notify port, and a count of DynamoDB calls.
type deployment struct {
	publisher *queue.Publisher
	inboxes   []*queue.Inbox
	calls     atomic.Int64
	cut       atomic.Bool // notify ports take requests but drop their notices
}

func deploy(t *testing.T, inboxes int, backstop time.Duration) *deployment {
	t.Helper()
	d := &deployment{}
	client := dynamodb.New(shared.Client.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("count", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				d.calls.Add(1)
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
		})
	})
	store := eventsdb.New(client, shared.Tables(t))
	listeners := make([]net.Listener, inboxes)
	peers := make([]string, inboxes)
	for i := range listeners {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listeners[i], peers[i] = ln, ln.Addr().String()
	}
	sender := func() *notify.Sender {
		s := notify.NewSender(notify.PeersConfig{NotifyPeers: peers}, zap.NewNop(), nil)
		run(t, s)
		waitFor(t, "the sender's peers", func() bool { return len(s.Peers()) == inboxes })
		return s
	}
	d.publisher = queue.NewPublisher(store, queue.Options{Notifier: sender()})
	for _, ln := range listeners {
		inbox := queue.NewInbox(store, queue.Options{Notifier: sender(), LongPollBackstop: backstop})
		port := notify.Handler(queue.NotifierFunc(func(ns ...queue.Notice) {
			if !d.cut.Load() {
				inbox.Notify(ns...)
			}
		}), nil)
		srv := httptest.NewUnstartedServer(port)
		srv.Listener = ln
		srv.Start()
		t.Cleanup(srv.Close)
		d.inboxes = append(d.inboxes, inbox)
	}
	return d
}

var acme = tenant.Principal{TenantID: "acme", Partitions: 2}

// park starts a long poll on inbox and returns once it waits.
func park(t *testing.T, inbox *queue.Inbox) <-chan []events.Event {
	t.Helper()
	before := inbox.Waiting(acme.TenantID)
	done := make(chan []events.Event, 1)
	go func() {
		got, err := inbox.Pull(context.Background(), acme, queue.PullQuery{Max: 10, Visibility: time.Minute, Wait: 20 * time.Second})
		if err != nil {
			t.Errorf("pull: %v", err)
		}
		done <- got
	}()
	waitFor(t, "the pull to park", func() bool { return inbox.Waiting(acme.TenantID) == before+1 })
	return done
}

func (d *deployment) publish(t *testing.T) string {
	t.Helper()
	out, err := d.publisher.Publish(context.Background(), acme, []byte(`{"event_type":"a"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	return out.Event.ID
}

func receive(t *testing.T, done <-chan []events.Event, id string) {
	t.Helper()
	select {
	case got := <-done:
		if len(got) != 1 || got[0].ID != id {
			t.Fatalf("pull answered %+v, want %s", got, id)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the parked pull never got %s", id)
	}
}

// A pull parked on the second inbox gets an event published through ingest when the notice
// arrives: the backstop is too slow to stand in for it here.
func TestParkedPullOnAnotherReplicaGetsTheEvent(t *testing.T) {
	t.Parallel()
	d := deploy(t, 2, time.Hour)
	done := park(t, d.inboxes[1])
	start := time.Now()
	receive(t, done, d.publish(t))
	t.Logf("notified delivery: %v after the publish began", time.Since(start))
}

// With every notice lost, the backstop still finds the event.
func TestLostNoticeIsFoundByTheBackstop(t *testing.T) {
	t.Parallel()
	d := deploy(t, 2, 500*time.Millisecond)
	d.cut.Store(true)
	done := park(t, d.inboxes[1])
	receive(t, done, d.publish(t))
}

// Back-to-back long polls of an idle tenant on both replicas cost one read each, not one per
// poll.
func TestIdleLongPollsCostNoReads(t *testing.T) {
	t.Parallel()
	d := deploy(t, 2, time.Minute)
	before := d.calls.Load()
	for range 100 {
		for _, inbox := range d.inboxes {
			got, err := inbox.Pull(context.Background(), acme, queue.PullQuery{Max: 10, Visibility: time.Minute, Wait: 5 * time.Millisecond})
			if err != nil || len(got) != 0 {
				t.Fatalf("pull: %d events, %v", len(got), err)
			}
		}
	}
	// The first poll on each replica reads both partitions.
	calls := d.calls.Load() - before
	t.Logf("%d DynamoDB calls for 200 idle long polls", calls)
	if calls > 4 {
		t.Fatalf("%d DynamoDB calls for 200 idle long polls, want at most the first read of each replica", calls)
	}
	// Still watching: an event published now reaches the next poll at once.
	done := park(t, d.inboxes[0])
	receive(t, done, d.publish(t))
}
