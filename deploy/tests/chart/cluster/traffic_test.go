package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/trigger-api/trigger-api/deploy/tests/chart/cluster"
)

// tally counts what the producers got back.
type tally struct {
	accepted, retried503, retried429, transport, other5xx, other atomic.Int64
	mu                                                           sync.Mutex
	ids                                                          []string
}

// rollingRestart restarts ingest and inbox as `kubectl rollout restart` does while producers
// post events for a demo tenant and the release's worker consumes them. The producers run on the
// node and call the ingest Service's ClusterIP through kube-proxy, the path pods take, so each
// new connection goes to whichever pods the endpoints hold at that moment; a port-forward would
// pin one pod and never see the rollout. Every accepted event must end delivered, and no answer
// may be a 5xx other than 503 with Retry-After; a connection error counts as lost.
func (r *release) rollingRestart(t *testing.T, ctx context.Context) {
	key := r.demoKey(t, ctx, "acme")
	ingest := r.serviceURL(t, ctx, "ingest")
	var tl tally
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); produce(pctx, ingest, key, p, &tl) }()
	}
	// Load before, during and after the rollout.
	waitCount(ctx, &tl.accepted, 20)
	began := time.Now()
	for _, c := range []string{"ingest", "inbox"} {
		patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339Nano))
		if _, err := r.cs.AppsV1().Deployments(namespace).Patch(ctx, releaseName+"-"+c, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			stop()
			t.Fatal(err)
		}
	}
	r.waitSettled(t, ctx, began, r.revision(t))
	mark := tl.accepted.Load()
	waitCount(ctx, &tl.accepted, mark+20)
	stop()
	wg.Wait()
	t.Logf("during the restart: %d events accepted; retried: %d answers 503 and %d 429, with Retry-After; %d connection errors, %d other 5xx, %d other answers",
		tl.accepted.Load(), tl.retried503.Load(), tl.retried429.Load(), tl.transport.Load(), tl.other5xx.Load(), tl.other.Load())
	if tl.transport.Load() != 0 || tl.other5xx.Load() != 0 || tl.other.Load() != 0 {
		t.Errorf("requests failed during the rolling restart")
	}
	r.waitDelivered(t, ctx, ingest, key, tl.ids)
}

// produce posts events, at a pace the node's DynamoDB Local keeps up with, until ctx ends. Each
// event has an Idempotency-Key, so a retry after a 503 or 429 can never make a second event.
func produce(ctx context.Context, base, key string, p int, tl *tally) {
	client := &http.Client{Timeout: 15 * time.Second}
	pace := time.NewTicker(40 * time.Millisecond)
	defer pace.Stop()
	for n := 0; ctx.Err() == nil; n++ {
		select {
		case <-ctx.Done():
			return
		case <-pace.C:
		}
		idem := fmt.Sprintf("restart-%d-%d-%d", p, n, time.Now().UnixNano())
		body := fmt.Sprintf(`{"event_type":"cluster.restart","producer":%d,"n":%d}`, p, n)
		for ctx.Err() == nil {
			status, retryAfter, id, err := post(client, base+"/events", key, idem, body)
			switch {
			case err != nil:
				tl.transport.Add(1)
			case status == http.StatusAccepted || status == http.StatusOK:
				tl.accepted.Add(1)
				tl.mu.Lock()
				tl.ids = append(tl.ids, id)
				tl.mu.Unlock()
			case (status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests) && retryAfter != "":
				if status == http.StatusTooManyRequests {
					tl.retried429.Add(1)
				} else {
					tl.retried503.Add(1)
				}
				secs, _ := strconv.Atoi(retryAfter)
				time.Sleep(time.Duration(min(max(secs, 0), 2)) * time.Second)
				continue
			case status >= 500:
				tl.other5xx.Add(1)
			default:
				tl.other.Add(1)
			}
			break
		}
	}
}

func post(client *http.Client, url, key, idem, body string) (int, string, string, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
	if err != nil {
		return 0, "", "", err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", idem)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	var out struct {
		EventID string `json:"event_id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, resp.Header.Get("Retry-After"), out.EventID, nil
}

// waitCount waits, without sleeping blind, until c reaches n.
func waitCount(ctx context.Context, c *atomic.Int64, n int64) {
	_ = cluster.Poll(ctx, "events", 50*time.Millisecond, func(context.Context) error {
		if c.Load() < n {
			return fmt.Errorf("%d of %d", c.Load(), n)
		}
		return nil
	})
}

// waitDelivered waits until the worker has acknowledged every accepted event.
func (r *release) waitDelivered(t *testing.T, ctx context.Context, base, key string, ids []string) {
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	client := &http.Client{Timeout: 10 * time.Second}
	pending := append([]string(nil), ids...)
	err := cluster.Poll(wctx, "every event delivered", 500*time.Millisecond, func(ctx context.Context) error {
		var still []string
		for _, id := range pending {
			if status, err := eventStatus(ctx, client, base, key, id); err != nil || status != "delivered" {
				still = append(still, id)
			}
		}
		pending = still
		if len(pending) > 0 {
			return fmt.Errorf("%d of %d not delivered, e.g. %s", len(pending), len(ids), pending[0])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("all %d accepted events delivered", len(ids))
}

func eventStatus(ctx context.Context, client *http.Client, base, key, id string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events/"+id, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var ev struct {
		Status string `json:"status"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /events/%s: %s", id, resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&ev)
	return ev.Status, err
}

// demoKey is the API key the demo Job stored for tenant.
func (r *release) demoKey(t *testing.T, ctx context.Context, tenant string) string {
	s, err := r.cs.CoreV1().Secrets(namespace).Get(ctx, releaseName+"-demo-keys", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	key := string(s.Data["tenant-"+tenant])
	if key == "" {
		t.Fatalf("no key for %s in the demo keys Secret", tenant)
	}
	return key
}

// serviceURL is a component's Service by its ClusterIP, which kube-proxy serves on the node.
func (r *release) serviceURL(t *testing.T, ctx context.Context, component string) string {
	svc, err := r.cs.CoreV1().Services(namespace).Get(ctx, releaseName+"-"+component, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(svc.Spec.Ports[0].Port)))
}

func (r *release) revision(t *testing.T) int {
	rel, err := r.cfg.Releases.Last(releaseName)
	if err != nil {
		t.Fatal(err)
	}
	return rel.Version
}
