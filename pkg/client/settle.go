package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/trigger-api/trigger-api/pkg/api"
)

// Ack acknowledges one event, under leaseID if it is not "": a lease that no longer holds the
// event is an *Error with code api.CodeLeaseLost. Acknowledging twice is not an error.
func (c *Client) Ack(ctx context.Context, eventID, leaseID string) (api.AckAnswer, error) {
	req := api.AckRequest{EventID: &eventID}
	if leaseID != "" {
		req.LeaseID = &leaseID
	}
	body, err := json.Marshal(req)
	if err != nil {
		return api.AckAnswer{}, err
	}
	var out api.AckAnswer
	_, err = c.c.do(ctx, request{
		op: "ack", method: http.MethodPost, path: "/ack", body: body,
		want: []int{http.StatusOK}, limit: maxSmallBytes, retry: true,
	}, &out)
	return out, err
}

// AckLeases acknowledges events under the leases that hold them; each item's outcome is in
// the answer, in order. An item's TraceContext puts the inbox's settle span in that event's
// trace.
func (c *Client) AckLeases(ctx context.Context, leases []api.LeaseRef) (api.SettleAnswer, error) {
	return c.settleLeases(ctx, "ack", "/ack", leases, refIDs(leases), func(ls []api.LeaseRef) any {
		return api.AckRequest{Leases: ls}
	})
}

// AckIDs acknowledges events whatever lease holds them.
func (c *Client) AckIDs(ctx context.Context, eventIDs []string) (api.SettleAnswer, error) {
	return c.settle(ctx, "ack", "/ack", api.AckRequest{EventIDs: eventIDs}, eventIDs)
}

// Extend moves the expiry of the leases to req.VisibilityTimeoutSeconds from now.
func (c *Client) Extend(ctx context.Context, req api.ExtendRequest) (api.SettleAnswer, error) {
	return c.settleLeases(ctx, "extend", "/inbox/extend", req.Leases, refIDs(req.Leases), func(ls []api.LeaseRef) any {
		r := req
		r.Leases = ls
		return r
	})
}

// Nack hands events back, visible again after req.DelaySeconds.
func (c *Client) Nack(ctx context.Context, req api.NackRequest) (api.SettleAnswer, error) {
	ids := req.EventIDs
	if req.Leases != nil {
		ids = refIDs(req.Leases)
	}
	return c.settleLeases(ctx, "nack", "/nack", req.Leases, ids, func(ls []api.LeaseRef) any {
		r := req
		r.Leases = ls
		return r
	})
}

// Redrive makes dead letters undelivered again, with a fresh delivery count.
func (c *Client) Redrive(ctx context.Context, eventIDs []string) (api.SettleAnswer, error) {
	return c.settle(ctx, "redrive", "/inbox/redrive", api.RedriveRequest{EventIDs: eventIDs}, eventIDs)
}

// RedriveAll redrives up to api.MaxRedriveAll dead letters; call it again while More is true.
// A retried call redrives whatever is dead by then, and counts only its own.
func (c *Client) RedriveAll(ctx context.Context) (api.RedriveAllAnswer, error) {
	all := true
	body, err := json.Marshal(api.RedriveRequest{All: &all})
	if err != nil {
		return api.RedriveAllAnswer{}, err
	}
	var out api.RedriveAllAnswer
	_, err = c.c.do(ctx, request{
		op: "redrive_all", method: http.MethodPost, path: "/inbox/redrive", body: body,
		want: []int{http.StatusOK}, limit: maxSmallBytes, retry: true,
	}, &out)
	return out, err
}

// settleLeases sends a call naming leases. If the inbox refuses the items' trace_context (an
// inbox older than the field) the call is sent once more without it, and from then on never
// with it.
func (c *Client) settleLeases(ctx context.Context, op, path string, leases []api.LeaseRef, ids []string, body func([]api.LeaseRef) any) (api.SettleAnswer, error) {
	send := leases
	if c.noItemContexts.Load() {
		send = withoutContexts(leases)
	}
	out, err := c.settle(ctx, op, path, body(send), ids)
	if refusesContexts(err) && slices.ContainsFunc(send, func(r api.LeaseRef) bool { return r.TraceContext != nil }) {
		c.noItemContexts.Store(true)
		out, err = c.settle(ctx, op, path, body(withoutContexts(leases)), ids)
	}
	return out, err
}

// refusesContexts recognises an older inbox's refusal of the unknown field.
func refusesContexts(err error) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && e.Status == http.StatusBadRequest && strings.Contains(e.Message, `"trace_context"`)
}

func withoutContexts(leases []api.LeaseRef) []api.LeaseRef {
	if leases == nil {
		return nil
	}
	out := make([]api.LeaseRef, len(leases))
	for i, l := range leases {
		out[i] = api.LeaseRef{EventID: l.EventID, LeaseID: l.LeaseID}
	}
	return out
}

func refIDs(leases []api.LeaseRef) []string {
	ids := make([]string, len(leases))
	for i, l := range leases {
		ids[i] = l.EventID
	}
	return ids
}

// settle sends a call that settles several events. Its answer must hold one result per item,
// in order, since callers pair them up; one that does not is an error, returned with it.
func (c *Client) settle(ctx context.Context, op, path string, req any, ids []string) (api.SettleAnswer, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return api.SettleAnswer{}, err
	}
	var out api.SettleAnswer
	_, err = c.c.do(ctx, request{
		op: op, method: http.MethodPost, path: path, body: body,
		want: []int{http.StatusOK}, limit: maxSmallBytes, retry: true,
	}, &out)
	if err != nil {
		return api.SettleAnswer{}, err
	}
	if len(out.Results) != len(ids) {
		return out, fmt.Errorf("%s: %d results for %d items", op, len(out.Results), len(ids))
	}
	for i, r := range out.Results {
		if r.EventID != ids[i] {
			return out, fmt.Errorf("%s: result %d names %q, want %q", op, i+1, r.EventID, ids[i])
		}
	}
	return out, nil
}
