package inboxapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/trigger-api/trigger-api/pkg/apitest"
	"github.com/trigger-api/trigger-api/pkg/events"
	eventsdb "github.com/trigger-api/trigger-api/pkg/events/dynamo"
	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/queue"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
	"github.com/trigger-api/trigger-api/pkg/tenant"
	tenantdb "github.com/trigger-api/trigger-api/pkg/tenant/dynamo"
	"github.com/trigger-api/trigger-api/services/inbox/inboxapi"
)

// parkEnv is the inbox served as in production (httpx.ServeListener, which lets long polls
// park), with tenants and their keys. Clients are raw connections: the test's goroutines are
// then the server's alone.
type parkEnv struct {
	addr   string
	auth   *tenant.Authenticator
	inbox  *queue.Inbox
	events events.Store
	keys   map[string]string
	stop   context.CancelFunc
	served chan error
}

func newParkEnv(t *testing.T, tenants int) *parkEnv {
	t.Helper()
	return newParkEnvWith(t, tenants, zap.NewNop(), nil)
}

// newParkEnvWith is newParkEnv logging to log and recording to tel (nil: nothing).
func newParkEnvWith(t *testing.T, tenants int, log *zap.Logger, tel *telemetry.Telemetry) *parkEnv {
	t.Helper()
	return newParkEnvAuth(t, tenants, log, tel, tenant.AuthConfig{})
}

// newParkEnvAuth is newParkEnvWith with the authenticator configured by cfg.
func newParkEnvAuth(t *testing.T, tenants int, log *zap.Logger, tel *telemetry.Telemetry, cfg tenant.AuthConfig) *parkEnv {
	t.Helper()
	tables := shared.Tables(t)
	ts := tenantdb.New(shared.Client, tables)
	e := &parkEnv{events: eventsdb.New(shared.Client, tables), keys: map[string]string{}, served: make(chan error, 1)}
	for i := range tenants {
		id := fmt.Sprintf("park-%03d", i)
		apitest.SeedTenant(t, ts, id, 1)
		e.keys[id] = apitest.SeedKey(t, ts, id, apitest.KeyOptions{})
	}
	e.inbox = queue.NewInbox(e.events, queue.Options{Log: log, Tel: tel})
	e.auth = tenant.NewAuthenticator(ts, cfg, nil)
	h := inboxapi.NewHandler(inboxapi.Deps{Log: log, Inbox: e.inbox, Tel: tel,
		Auth:  e.auth,
		Ready: func(context.Context) error { return nil }})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	ctx, stop := context.WithCancel(context.Background())
	e.stop = stop
	context.AfterFunc(ctx, e.inbox.Drain)
	go func() { e.served <- httpx.ServeListener(ctx, log, ln, time.Minute, h) }()
	t.Cleanup(func() {
		stop()
		if err := <-e.served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return e
}

// rawConn is one client connection, read only when the test expects an answer.
type rawConn struct {
	net.Conn
	r   *bufio.Reader
	key string // the tenant key it calls with, if one
}

func (e *parkEnv) dial(t *testing.T) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{Conn: c, r: bufio.NewReader(c)}
}

func request(method, path, key, body string) string {
	return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: inbox\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		method, path, key, len(body), body)
}

func (c *rawConn) send(t *testing.T, reqs ...string) {
	t.Helper()
	if _, err := io.WriteString(c, strings.Join(reqs, "")); err != nil {
		t.Fatal(err)
	}
}

func (c *rawConn) answer(t *testing.T) (*http.Response, []byte) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer body: %v", err)
	}
	return resp, body
}

func (e *parkEnv) waiting() int {
	n := 0
	for id := range e.keys {
		n += e.inbox.Waiting(id)
	}
	return n
}

// publish stores an event for tenantID and tells the inbox, as ingest does.
func (e *parkEnv) publish(t *testing.T, tenantID string) events.Event {
	t.Helper()
	ev := events.New(tenantID, "a", []byte(`{"event_type":"a"}`), 1, time.Now().Add(-time.Second))
	if err := e.events.Put(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	e.inbox.Notify(queue.Notice{TenantID: tenantID, Partition: ev.Partition, Count: 1, VisibleAt: ev.VisibleAt})
	return ev
}

const longPoll = `{"wait_seconds":20,"max_events":1,"visibility_timeout_seconds":300}`

type leasedAnswer struct {
	Events []struct {
		EventID       string `json:"event_id"`
		LeaseID       string `json:"lease_id"`
		DeliveryCount int    `json:"delivery_count"`
	} `json:"events"`
}

// checkPull reads a pull's answer: 200 with want events, and the headers the server's own
// answers carry.
func checkPull(t *testing.T, c *rawConn, want int) leasedAnswer {
	t.Helper()
	resp, body := c.answer(t)
	var a leasedAnswer
	if err := json.Unmarshal(body, &a); err != nil || resp.StatusCode != http.StatusOK || len(a.Events) != want {
		t.Fatalf("pull answer %d %s (%v), want 200 with %d events", resp.StatusCode, body, err, want)
	}
	if resp.Header.Get("X-Request-Id") == "" || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" || resp.Header.Get("Date") == "" {
		t.Fatalf("pull answer headers %v", resp.Header)
	}
	if resp.ContentLength != int64(len(body)) {
		t.Fatalf("a pull answer of one piece: Content-Length %d for %d bytes", resp.ContentLength, len(body))
	}
	return a
}

// Parked long polls hold no goroutine: hundreds wait on a handful, each gets a complete answer
// when its event comes, and its connection then serves the next request.
func TestParkedLongPollsHoldNoGoroutines(t *testing.T) {
	const tenants, perTenant = 50, 10
	const polls = tenants * perTenant
	e := newParkEnv(t, tenants)
	before := goroutines()
	start := time.Now()
	conns := map[string][]*rawConn{}
	// One poll per tenant reads its empty inbox; the rest then park without a read.
	for round := range perTenant {
		for id, key := range e.keys {
			c := e.dial(t)
			c.key = key
			c.send(t, request("POST", "/inbox/pull", key, longPoll))
			conns[id] = append(conns[id], c)
		}
		waitFor(t, "the polls to park", func() bool { return e.waiting() == (round+1)*tenants })
	}
	var grown int
	deadline := time.Now().Add(30 * time.Second)
	for grown = goroutines() - before; grown >= polls/10; grown = goroutines() - before {
		if time.Now().After(deadline) {
			var b strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Fatalf("%d parked polls hold %d goroutines; goroutines now:\n%s", polls, grown, b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("%d parked polls, %d goroutines more than before", polls, grown)

	// Events are stored unannounced (the parked polls go on waiting), then announced a few
	// tenants at a time: every poll must answer within its 20 s, under the read gate's bounds.
	t.Logf("parked after %v", time.Since(start))
	stored := e.store(t, perTenant)
	t.Logf("stored after %v", time.Since(start))
	ids := slices.Sorted(maps.Keys(conns))
	leases := map[*rawConn]string{}
	for len(ids) > 0 {
		wave := ids[:min(5, len(ids))]
		ids = ids[len(wave):]
		for _, id := range wave {
			e.inbox.Notify(queue.Notice{TenantID: id, Count: perTenant, VisibleAt: time.Now()})
		}
		for _, id := range wave {
			for _, c := range conns[id] {
				ev := checkPull(t, c, 1).Events[0]
				if !stored[id][ev.EventID] || ev.LeaseID == "" || ev.DeliveryCount != 1 {
					t.Fatalf("pull answer %+v: not one of %s's events, leased for the first time", ev, id)
				}
				delete(stored[id], ev.EventID)
				leases[c] = fmt.Sprintf(`{"event_id":%q,"lease_id":%q}`, ev.EventID, ev.LeaseID)
			}
		}
	}
	t.Logf("answered after %v", time.Since(start))
	// The connections went back to the server: each serves an ack, a wave at a time so that
	// DynamoDB Local keeps up.
	all := slices.Collect(maps.Keys(leases))
	for len(all) > 0 {
		wave := all[:min(50, len(all))]
		all = all[len(wave):]
		for _, c := range wave {
			c.send(t, request("POST", "/ack", c.key, leases[c]))
		}
		for _, c := range wave {
			if resp, body := c.answer(t); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "acknowledged") {
				t.Fatalf("ack on the kept-alive connection: %d %s", resp.StatusCode, body)
			}
		}
	}
}

// goroutines counts the process's goroutines but those of HTTP clients' pooled connections
// (two each): the DynamoDB client keeps up to hundreds, whatever the inbox's callers do.
func goroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	all := bytes.Count(buf, []byte("\ngoroutine ")) + 1
	return all - bytes.Count(buf, []byte("net/http.(*persistConn).readLoop(")) - bytes.Count(buf, []byte("net/http.(*persistConn).writeLoop("))
}

// store puts n events for each tenant without telling the inbox, a few at once.
func (e *parkEnv) store(t *testing.T, n int) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	var all []events.Event
	for id := range e.keys {
		out[id] = map[string]bool{}
		for range n {
			ev := events.New(id, "a", []byte(`{"event_type":"a"}`), 1, time.Now().Add(-time.Second))
			out[id][ev.ID] = true
			all = append(all, ev)
		}
	}
	todo := make(chan events.Event)
	errs := make(chan error, len(all))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ev := range todo {
				errs <- e.events.Put(context.Background(), ev)
			}
		})
	}
	for _, ev := range all {
		todo <- ev
	}
	close(todo)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// A client that left while parked gets nothing leased: the release passes to the next poll,
// which gets the event, delivered once.
func TestParkedPollOfGoneClientLeasesNothing(t *testing.T) {
	t.Parallel()
	e := newParkEnv(t, 1)
	id, key := "park-000", e.keys["park-000"]
	gone, next := e.dial(t), e.dial(t)
	gone.send(t, request("POST", "/inbox/pull", key, longPoll))
	waitFor(t, "the first poll to park", func() bool { return e.waiting() == 1 })
	next.send(t, request("POST", "/inbox/pull", key, longPoll))
	waitFor(t, "the second poll to park", func() bool { return e.waiting() == 2 })
	_ = gone.Close()

	ev := e.publish(t, id)
	a := checkPull(t, next, 1)
	if a.Events[0].EventID != ev.ID || a.Events[0].DeliveryCount != 1 {
		t.Fatalf("the waiting poll got %+v, want %s delivered once", a, ev.ID)
	}
}

// A request sent behind a parked poll on the same connection is served after the poll's
// answer, and a stop answers every parked poll at once.
func TestParkedPollsKeepPipelinedRequestsAndAnswerOnStop(t *testing.T) {
	t.Parallel()
	e := newParkEnv(t, 1)
	key := e.keys["park-000"]
	piped := e.dial(t)
	piped.send(t, request("POST", "/inbox/pull", key, longPoll), request("GET", "/inbox?limit=1", key, ""))
	waitFor(t, "the poll to park", func() bool { return e.waiting() == 1 })
	var rest []*rawConn
	for range 9 {
		c := e.dial(t)
		c.send(t, request("POST", "/inbox/pull", key, longPoll))
		rest = append(rest, c)
	}
	waitFor(t, "the polls to park", func() bool { return e.waiting() == 10 })

	ev := e.publish(t, "park-000")
	if a := checkPull(t, piped, 1); a.Events[0].EventID != ev.ID {
		t.Fatalf("pipelined poll got %+v", a)
	}
	if resp, body := piped.answer(t); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"events":[]`) {
		t.Fatalf("the request pipelined behind the poll: %d %s", resp.StatusCode, body)
	}

	start := time.Now()
	e.stop()
	for _, c := range rest {
		resp, body := c.answer(t)
		if resp.StatusCode != http.StatusOK || string(body) != `{"events":[]}` {
			t.Fatalf("parked poll on stop: %d %s, want 200 with no events", resp.StatusCode, body)
		}
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Fatalf("the stop took %v to answer the parked polls", waited)
	}
}

// A parked poll's server span, access line and request metrics end with its answer, once.
func TestParkedPollIsRecordedAtItsAnswer(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	e := newParkEnvWith(t, 1, zap.New(core), tel)
	c := e.dial(t)
	sent := time.Now()
	c.send(t, request("POST", "/inbox/pull", e.keys["park-000"], longPoll))
	waitFor(t, "the poll to park", func() bool { return e.waiting() == 1 })
	// Long enough that a record made when the poll parked would show too short a wait.
	const parked = 300 * time.Millisecond
	waitFor(t, "the poll to have waited", func() bool { return time.Since(sent) > parked })
	e.publish(t, "park-000")
	resp, _ := c.answer(t)

	var spans []sdktrace.ReadOnlySpan
	waitFor(t, "the server span to end", func() bool {
		spans = spans[:0]
		for _, s := range rec.Ended() {
			if s.Name() == "POST /inbox/pull" {
				spans = append(spans, s)
			}
		}
		return len(spans) > 0
	})
	span := spans[0]
	status := ""
	for _, a := range span.Attributes() {
		if a.Key == "http.response.status_code" {
			status = a.Value.Emit()
		}
	}
	if len(spans) != 1 || status != "200" || span.EndTime().Sub(span.StartTime()) < parked {
		t.Fatalf("%d server spans; status %q, lasting %v: want one, 200, lasting the wait", len(spans), status, span.EndTime().Sub(span.StartTime()))
	}
	lines := logs.FilterMessage("request").FilterFieldKey("route").All()
	if len(lines) != 1 || lines[0].ContextMap()["status"] != int64(200) || lines[0].ContextMap()["request_id"] != resp.Header.Get("X-Request-Id") ||
		lines[0].ContextMap()["duration"].(time.Duration) < parked {
		t.Fatalf("access lines %v: want one for the pull, 200, its request id, lasting the wait", lines)
	}

	c.send(t, request("GET", "/metrics", "", ""))
	_, body := c.answer(t)
	var count, sum string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.Contains(line, `http_route="/inbox/pull"`) && strings.Contains(line, `http_response_status_code="200"`) {
			switch {
			case strings.HasPrefix(line, "http_server_request_duration_seconds_count{"):
				count = line[strings.LastIndex(line, " ")+1:]
			case strings.HasPrefix(line, "http_server_request_duration_seconds_sum{"):
				sum = line[strings.LastIndex(line, " ")+1:]
			}
		}
	}
	if secs, err := strconv.ParseFloat(sum, 64); count != "1" || err != nil || secs < parked.Seconds() {
		t.Fatalf("pull duration metric: count %q sum %q, want one request lasting the wait", count, sum)
	}
}

// A long poll past the tenant's parked cap is refused as any tenant limit is: 429 with
// Retry-After, held back by the refusal delay so that a client retrying at once cannot spin.
func TestParkedPollPastTheCapIsRefusedLate(t *testing.T) {
	t.Parallel()
	const delay = 300 * time.Millisecond
	e := newParkEnvAuth(t, 1, zap.NewNop(), nil, tenant.AuthConfig{RefusalDelay: delay, RefusalSlots: 4})
	key := e.keys["park-000"]
	const parkedCap = 50 // the inbox's per-tenant cap, as docs/api.md gives it
	for range parkedCap {
		e.dial(t).send(t, request("POST", "/inbox/pull", key, longPoll))
	}
	waitFor(t, "every poll parked", func() bool { return e.waiting() == parkedCap })

	c := e.dial(t)
	start := time.Now()
	c.send(t, request("POST", "/inbox/pull", key, longPoll))
	waitFor(t, "the refusal held", func() bool { return e.auth.Holding() == 1 })
	resp, body := c.answer(t)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"rate_limited"`) {
		t.Fatalf("poll past the cap: %d %s", resp.StatusCode, body)
	}
	if took := time.Since(start); took < delay {
		t.Fatalf("refused after %v, before the %v delay", took, delay)
	}
}

// A parked pull answered with large events gets them in a chunked answer, written a piece at a
// time, whole and byte for byte; its connection then serves the next request.
func TestParkedAnswerOfLargeEventsIsChunked(t *testing.T) {
	t.Parallel()
	e := newParkEnv(t, 1)
	id := "park-000"
	c := e.dial(t)
	c.send(t, request("POST", "/inbox/pull", e.keys[id], `{"wait_seconds":20,"max_events":10}`))
	waitFor(t, "the poll to park", func() bool { return e.waiting() == 1 })
	payloads := putSized(t, e.events, id, 4, 100<<10, time.Now().Add(-time.Second))
	e.inbox.Notify(queue.Notice{TenantID: id, Partition: 0, Count: len(payloads), VisibleAt: time.Now().Add(-time.Second)})
	resp, body := c.answer(t)
	var a struct {
		Events []struct {
			Payload json.RawMessage `json:"payload"`
		} `json:"events"`
	}
	if err := json.Unmarshal(body, &a); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("parked answer %d (%v)", resp.StatusCode, err)
	}
	if !slices.Equal(resp.TransferEncoding, []string{"chunked"}) || resp.ContentLength != -1 {
		t.Fatalf("parked answer framed by %v, length %d; want chunked", resp.TransferEncoding, resp.ContentLength)
	}
	if len(a.Events) == 0 {
		t.Fatal("the parked pull was answered with no events")
	}
	for i, ev := range a.Events {
		if !bytes.Equal(ev.Payload, payloads[i]) {
			t.Fatalf("event %d's payload changed on the way", i)
		}
	}
	c.send(t, request("GET", "/inbox?limit=1", e.keys[id], ""))
	if resp, body := c.answer(t); resp.StatusCode != http.StatusOK {
		t.Fatalf("the next request on the connection: %d %s", resp.StatusCode, body)
	}
}
