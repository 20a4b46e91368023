package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/api"
	"github.com/trigger-api/trigger-api/pkg/client"
)

var event = json.RawMessage(`{"event_type":"order.paid"}`)

func TestErrorEnvelopeIsDecoded(t *testing.T) {
	f := newFake(t, func(int, seen) reply {
		return reply{status: http.StatusConflict, header: map[string]string{"X-Request-Id": "req_header"},
			body: envelope(api.CodeLeaseLost, "the lease no longer holds the event")}
	})
	_, err := f.client(t).Ack(context.Background(), "evt_1", "lse_1")
	e, ok := errors.AsType[*client.Error](err)
	if !ok {
		t.Fatalf("Ack error %v (%T), want *client.Error", err, err)
	}
	want := client.Error{Op: "ack", Status: http.StatusConflict, Code: api.CodeLeaseLost, Message: "the lease no longer holds the event", RequestID: "req_body"}
	if *e != want {
		t.Errorf("error %+v, want %+v", *e, want)
	}
	if !client.IsCode(err, api.CodeLeaseLost) || client.IsCode(err, api.CodeNotFound) || client.Transient(err) {
		t.Errorf("IsCode/Transient misjudge %v", err)
	}
	if got := err.Error(); got != "ack: HTTP 409 lease_lost: the lease no longer holds the event (request_id req_body)" {
		t.Errorf("Error() = %q", got)
	}
}

func TestAnswerWithoutEnvelopeKeepsStatusAndHeaderRequestID(t *testing.T) {
	f := newFake(t, func(int, seen) reply {
		return reply{status: http.StatusBadGateway, header: map[string]string{"X-Request-Id": "req_header"}, body: "<html>bad gateway</html>"}
	})
	_, err := f.client(t, client.WithRetries(0)).GetEvent(context.Background(), "evt_1")
	e, ok := errors.AsType[*client.Error](err)
	if !ok || e.Status != http.StatusBadGateway || e.Code != "" || e.Message != "" || e.RequestID != "req_header" {
		t.Fatalf("error %#v", err)
	}
	if !client.Transient(err) {
		t.Error("a 502 is not judged transient")
	}
}

func TestTransientJudgesStatusesAndTransportFailures(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&client.Error{Status: 400}, false},
		{&client.Error{Status: 401}, false},
		{&client.Error{Status: 404}, false},
		{&client.Error{Status: 408}, true},
		{&client.Error{Status: 429}, true},
		{&client.Error{Status: 500}, true},
		{&client.Error{Status: 503}, true},
		{fmt.Errorf("wrapped: %w", &client.Error{Status: 503}), true},
		{errors.New("connection refused"), true},
	} {
		if got := client.Transient(c.err); got != c.want {
			t.Errorf("Transient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// unavailableThenOK answers the first n requests 503 with the given Retry-After ("" for none)
// and the rest with an event.
func unavailableThenOK(n int, retryAfter string) func(int, seen) reply {
	return func(i int, _ seen) reply {
		if i <= n {
			h := map[string]string{}
			if retryAfter != "" {
				h["Retry-After"] = retryAfter
			}
			return reply{status: http.StatusServiceUnavailable, header: h, body: envelope(api.CodeUnavailable, "try later")}
		}
		return reply{status: http.StatusOK, body: `{"event_id":"evt_1"}`}
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	for _, c := range []struct {
		name       string
		status     int
		retryAfter string
		want       time.Duration
	}{
		{"503-seconds", http.StatusServiceUnavailable, "1", time.Second},
		{"429-seconds", http.StatusTooManyRequests, "7", 7 * time.Second},
		{"503-capped", http.StatusServiceUnavailable, "120", client.MaxRetryWait},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(t, func(i int, _ seen) reply {
				if i == 1 {
					return reply{status: c.status, header: map[string]string{"Retry-After": c.retryAfter}, body: envelope("x", "later")}
				}
				return reply{status: http.StatusOK, body: `{"event_id":"evt_1"}`}
			})
			ev, err := f.client(t).GetEvent(context.Background(), "evt_1")
			if err != nil || ev.EventID != "evt_1" {
				t.Fatalf("GetEvent = %+v, %v", ev, err)
			}
			if n := len(f.seen()); n != 2 {
				t.Errorf("%d requests, want 2", n)
			}
			if w := f.waits(); len(w) != 1 || w[0] != c.want {
				t.Errorf("waits %v, want [%v]", w, c.want)
			}
		})
	}
}

// TestRetryAfterWaitsOnTheRealClock: without a stand-in for the clock, the retry comes no
// sooner than the answer asked.
func TestRetryAfterWaitsOnTheRealClock(t *testing.T) {
	t.Parallel()
	f := newFake(t, unavailableThenOK(1, "1"))
	c, err := client.New(f.srv.URL, testKey, client.WithHTTPClient(f.httpClient()))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.GetEvent(context.Background(), "evt_1"); err != nil {
		t.Fatal(err)
	}
	calls := f.seen()
	if len(calls) != 2 {
		t.Fatalf("%d requests, want 2", len(calls))
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("retried after %v, before the 1s Retry-After", took)
	}
}

func TestRetryWithoutRetryAfterBacksOffBriefly(t *testing.T) {
	f := newFake(t, unavailableThenOK(2, ""))
	if _, err := f.client(t).GetEvent(context.Background(), "evt_1"); err != nil {
		t.Fatal(err)
	}
	w := f.waits()
	if len(w) != 2 || w[0] <= 0 || w[0] > time.Second || w[1] <= 0 || w[1] > 2*time.Second {
		t.Errorf("waits %v, want two short backoffs", w)
	}
}

func TestRetryIsNotBegunPastTheDeadline(t *testing.T) {
	f := newFake(t, unavailableThenOK(1, "10"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := f.client(t).GetEvent(ctx, "evt_1")
	if e, ok := errors.AsType[*client.Error](err); !ok || e.Status != http.StatusServiceUnavailable || e.RetryAfter != 10*time.Second {
		t.Fatalf("GetEvent error %v, want the 503 with its Retry-After", err)
	}
	if n, w := len(f.seen()), f.waits(); n != 1 || len(w) != 0 {
		t.Errorf("%d requests and waits %v, want one request and no wait", n, w)
	}
}

func TestRetriesAreBounded(t *testing.T) {
	for _, c := range []struct {
		name string
		opts []client.Option
		want int
	}{
		{"default", nil, client.DefaultRetries + 1},
		{"off", []client.Option{client.WithRetries(0)}, 1},
		{"negative-is-off", []client.Option{client.WithRetries(-3)}, 1},
		{"five", []client.Option{client.WithRetries(5)}, 6},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(t, unavailableThenOK(100, "1"))
			_, err := f.client(t, c.opts...).Inbox(context.Background(), client.InboxQuery{})
			if !client.IsCode(err, api.CodeUnavailable) {
				t.Fatalf("Inbox error %v, want the last 503", err)
			}
			if n := len(f.seen()); n != c.want {
				t.Errorf("%d requests, want %d", n, c.want)
			}
		})
	}
}

func TestOnlyRateLimitsAndUnavailabilityAreRetried(t *testing.T) {
	for _, status := range []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			f := newFake(t, always(status, envelope("x", "no")))
			if _, err := f.client(t).GetEvent(context.Background(), "evt_1"); err == nil {
				t.Fatal("no error")
			}
			if n := len(f.seen()); n != 1 {
				t.Errorf("%d requests for a %d, want 1", n, status)
			}
		})
	}
}

func TestTransportFailureOfASafeCallIsRetried(t *testing.T) {
	f := newFake(t, always(http.StatusOK, settled1))
	f.failFirst = 1
	if _, err := f.client(t).AckIDs(context.Background(), []string{"evt_1"}); err != nil {
		t.Fatalf("AckIDs: %v", err)
	}
	if a, n := f.failures.Load(), len(f.seen()); a != 2 || n != 1 {
		t.Errorf("%d attempts and %d served, want 2 and 1", a, n)
	}
}

func TestPullIsNeverRetried(t *testing.T) {
	pull := api.PullRequest{MaxEvents: api.Int(10)}
	t.Run("503", func(t *testing.T) {
		f := newFake(t, unavailableThenOK(1, "1"))
		if _, err := f.client(t).Pull(context.Background(), pull); !client.IsCode(err, api.CodeUnavailable) {
			t.Fatalf("Pull error %v, want the 503", err)
		}
		if n, w := len(f.seen()), f.waits(); n != 1 || len(w) != 0 {
			t.Errorf("%d requests, waits %v: a pull was repeated", n, w)
		}
	})
	t.Run("transport-failure", func(t *testing.T) {
		f := newFake(t, always(http.StatusOK, `{"events":[]}`))
		f.failFirst = 1
		if _, err := f.client(t).Pull(context.Background(), pull); err == nil || !client.Transient(err) {
			t.Fatalf("Pull error %v, want the transport failure", err)
		}
		if a := f.failures.Load(); a != 1 {
			t.Errorf("%d attempts, want 1", a)
		}
	})
}

func TestPublishIsRetriedOnlyWithAnIdempotencyKey(t *testing.T) {
	t.Run("unkeyed-503", func(t *testing.T) {
		f := newFake(t, unavailableThenOK(1, "1"))
		if _, _, err := f.client(t).Publish(context.Background(), event, ""); !client.IsCode(err, api.CodeUnavailable) {
			t.Fatalf("Publish error %v, want the 503", err)
		}
		if n := len(f.seen()); n != 1 {
			t.Errorf("%d requests: an unkeyed publish was repeated", n)
		}
	})
	t.Run("unkeyed-transport-failure", func(t *testing.T) {
		f := newFake(t, always(http.StatusAccepted, `{"event_id":"evt_1"}`))
		f.failFirst = 1
		if _, _, err := f.client(t).Publish(context.Background(), event, ""); err == nil {
			t.Fatal("Publish succeeded through a failed transport")
		}
		if a := f.failures.Load(); a != 1 {
			t.Errorf("%d attempts, want 1", a)
		}
	})
	t.Run("batch-503", func(t *testing.T) {
		f := newFake(t, unavailableThenOK(1, "1"))
		if _, err := f.client(t).PublishBatch(context.Background(), []json.RawMessage{event}); err == nil {
			t.Fatal("no error")
		}
		if n := len(f.seen()); n != 1 {
			t.Errorf("%d requests: a batch publish was repeated", n)
		}
	})
	t.Run("keyed-503", func(t *testing.T) {
		f := newFake(t, func(i int, s seen) reply {
			if i == 1 {
				return reply{status: http.StatusServiceUnavailable, header: map[string]string{"Retry-After": "2"}, body: envelope("unavailable", "later")}
			}
			return reply{status: http.StatusAccepted, body: `{"event_id":"evt_1","received_at":1,"status":"accepted"}`}
		})
		acc, _, err := f.client(t).Publish(context.Background(), event, "order-7")
		if err != nil || acc.EventID != "evt_1" {
			t.Fatalf("Publish = %+v, %v", acc, err)
		}
		calls := f.seen()
		if len(calls) != 2 || f.waits()[0] != 2*time.Second {
			t.Fatalf("%d requests, waits %v; want 2 requests after a 2s wait", len(calls), f.waits())
		}
		for _, c := range calls {
			if c.header.Get("Idempotency-Key") != "order-7" || string(c.body) != string(event) {
				t.Errorf("attempt sent key %q body %s, want the same key and body each time", c.header.Get("Idempotency-Key"), c.body)
			}
		}
	})
}

func TestIdempotentReplayIsDetected(t *testing.T) {
	for _, c := range []struct {
		name   string
		status int
		header map[string]string
		want   bool
	}{
		{"stored", http.StatusAccepted, nil, false},
		{"replayed", http.StatusOK, map[string]string{"Idempotent-Replayed": "true"}, true},
		{"200-without-header", http.StatusOK, nil, false},
		{"202-with-header", http.StatusAccepted, map[string]string{"Idempotent-Replayed": "true"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(t, func(int, seen) reply {
				return reply{status: c.status, header: c.header, body: `{"event_id":"evt_orig","received_at":1,"status":"accepted"}`}
			})
			acc, replayed, err := f.client(t).Publish(context.Background(), event, "order-1")
			if err != nil || acc.EventID != "evt_orig" || replayed != c.want {
				t.Errorf("Publish = %+v, replayed %v, %v; want replayed %v", acc, replayed, err, c.want)
			}
		})
	}
}

func TestAnswersAreBounded(t *testing.T) {
	t.Run("settle-answer", func(t *testing.T) {
		huge := `{"results":[{"event_id":"evt_1","status":"` + strings.Repeat("x", 2<<20) + `"}]}`
		f := newFake(t, always(http.StatusOK, huge))
		if _, err := f.client(t).AckIDs(context.Background(), []string{"evt_1"}); !errors.Is(err, client.ErrAnswerTooLarge) {
			t.Errorf("AckIDs error %v, want ErrAnswerTooLarge", err)
		}
	})
	t.Run("event-answer", func(t *testing.T) {
		huge := `{"event_id":"evt_1","payload":{"k":"` + strings.Repeat("x", api.MaxEventBytes+128<<10) + `"}}`
		f := newFake(t, always(http.StatusOK, huge))
		if _, err := f.client(t).GetEvent(context.Background(), "evt_1"); !errors.Is(err, client.ErrAnswerTooLarge) {
			t.Errorf("GetEvent error %v, want ErrAnswerTooLarge", err)
		}
	})
	t.Run("full-pull-page-fits", func(t *testing.T) {
		// The largest page the API sends: as many events as a pull may lease, each as large as
		// an event may be.
		payload := `{"event_type":"big","pad":"` + strings.Repeat("x", api.MaxEventBytes-40) + `"}`
		var b strings.Builder
		b.WriteString(`{"events":[`)
		for i := range api.MaxPullEvents {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"event_id":"evt_%03d","event_type":"big","payload":%s,"timestamp":1,"received_at":1,"status":"undelivered","delivery_count":1,"lease_id":"lse_%03d","lease_expires_at":1}`, i, payload, i)
		}
		b.WriteString(`]}`)
		f := newFake(t, always(http.StatusOK, b.String()))
		page, err := f.client(t).Pull(context.Background(), api.PullRequest{})
		if err != nil || len(page.Events) != api.MaxPullEvents || len(page.Events[99].Payload) != len(payload) {
			t.Errorf("Pull of a full page: %d events, %v", len(page.Events), err)
		}
	})
}

// TestSettleFallsBackWithoutItemContexts: an inbox older than per-item trace contexts answers
// 400 naming the field. The call is sent again without them, once, and later calls leave them
// out from the start.
func TestSettleFallsBackWithoutItemContexts(t *testing.T) {
	f := newFake(t, func(_ int, s seen) reply {
		if strings.Contains(string(s.body), "trace_context") {
			return reply{status: http.StatusBadRequest, body: envelope("invalid_request", `json: unknown field "trace_context"`)}
		}
		return reply{status: http.StatusOK, body: settled1}
	})
	c := f.client(t)
	leases := []api.LeaseRef{{EventID: "evt_1", LeaseID: "lse_1", TraceContext: &api.TraceContext{Traceparent: traceTP}}}
	ctx := context.Background()
	if _, err := c.AckLeases(ctx, leases); err != nil {
		t.Fatalf("AckLeases: %v", err)
	}
	if _, err := c.Nack(ctx, api.NackRequest{Leases: leases, DelaySeconds: api.Int(0)}); err != nil {
		t.Fatalf("Nack: %v", err)
	}
	if _, err := c.AckLeases(ctx, leases); err != nil {
		t.Fatalf("second AckLeases: %v", err)
	}
	var with, without []string
	for _, s := range f.seen() {
		if strings.Contains(string(s.body), "trace_context") {
			with = append(with, s.path)
		} else {
			without = append(without, s.path)
		}
	}
	if len(with) != 1 || with[0] != "/ack" || strings.Join(without, " ") != "/ack /nack /ack" {
		t.Errorf("sent with contexts to %v, without to %v; want one refused ack, then every call without", with, without)
	}
	if leases[0].TraceContext == nil {
		t.Error("the caller's leases were changed")
	}
}

func TestSettleDoesNotFallBackForOtherRefusals(t *testing.T) {
	leases := []api.LeaseRef{{EventID: "evt_1", LeaseID: "lse_1", TraceContext: &api.TraceContext{Traceparent: traceTP}}}
	for _, c := range []struct {
		name    string
		message string
		leases  []api.LeaseRef
	}{
		{"other-400", "leases: evt_1 appears twice", leases},
		{"no-contexts-sent", `unknown field "trace_context"`, []api.LeaseRef{{EventID: "evt_1", LeaseID: "lse_1"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(t, always(http.StatusBadRequest, envelope("invalid_request", c.message)))
			if _, err := f.client(t).AckLeases(context.Background(), c.leases); err == nil {
				t.Fatal("no error")
			}
			if n := len(f.seen()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestSettleAnswerMustPairWithItsItems(t *testing.T) {
	for name, answer := range map[string]string{
		"short":     `{"results":[]}`,
		"reordered": `{"results":[{"event_id":"evt_2","status":"acknowledged"},{"event_id":"evt_1","status":"acknowledged"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			f := newFake(t, always(http.StatusOK, answer))
			if _, err := f.client(t).AckIDs(context.Background(), []string{"evt_1", "evt_2"}); err == nil {
				t.Error("an answer that does not pair with the items was accepted")
			}
		})
	}
}

func TestBatchRefusesInvalidJSONWithoutACall(t *testing.T) {
	f := newFake(t, always(http.StatusOK, `{}`))
	_, err := f.client(t).PublishBatch(context.Background(), []json.RawMessage{event, []byte(`{"event_type":`)})
	if err == nil || !strings.Contains(err.Error(), "event 2") {
		t.Errorf("PublishBatch error %v, want one naming event 2", err)
	}
	if n := len(f.seen()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

// TestCredentialsNeverShow: neither errors nor a formatted Client or Admin show the key or the
// token.
func TestCredentialsNeverShow(t *testing.T) {
	f := newFake(t, always(http.StatusUnauthorized, envelope(api.CodeUnauthorized, "invalid API key")))
	c, a := f.client(t), f.admin(t)
	_, errKey := c.GetEvent(context.Background(), "evt_1")
	_, errToken := a.GetTenant(context.Background(), "acme")
	f.failFirst = 100
	_, transport := c.GetEvent(context.Background(), "evt_1")
	texts := []string{
		fmt.Sprint(errKey), fmt.Sprint(errToken), fmt.Sprint(transport),
		fmt.Sprintf("%v %+v %#v", c, c, c), fmt.Sprintf("%v %+v %#v", a, a, a),
	}
	if errKey == nil || errToken == nil || transport == nil {
		t.Fatalf("errors %v, %v, %v", errKey, errToken, transport)
	}
	for _, s := range texts {
		if strings.Contains(s, testKey) || strings.Contains(s, testToken) || strings.Contains(s, "s3cr3t") {
			t.Errorf("credential shown: %s", s)
		}
	}
}

func TestNewRefusesBadInput(t *testing.T) {
	for _, c := range []struct {
		name, url, key string
	}{
		{"relative-url", "/api", testKey},
		{"ftp-url", "ftp://example.com", testKey},
		{"no-host", "http://", testKey},
		{"credentials-in-url", "https://user:hunter2@example.com", testKey},
		{"query", "https://example.com?x=1", testKey},
		{"empty-key", "https://example.com", ""},
		{"key-with-newline", "https://example.com", "tenant_a_live_x\r\nX-Evil: 1"},
		{"key-with-space", "https://example.com", "tenant a"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := client.New(c.url, c.key)
			_, adminErr := client.NewAdmin(c.url, c.key)
			if err == nil || adminErr == nil {
				t.Fatalf("New: %v, NewAdmin: %v; want both refused", err, adminErr)
			}
			if strings.Contains(err.Error(), "hunter2") || (c.key != "" && strings.Contains(err.Error(), c.key)) {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}
