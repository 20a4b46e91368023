package cluster_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trigger-api/trigger-api/deploy/tests/chart/cluster"
)

// rateShared checks the fleet-wide tenant rate end to end: every ingest and inbox pod resolves
// its component's peers Service through the cluster's DNS and shares each tenant's rate among
// as many replicas as its Deployment runs.
func (r *release) rateShared(t *testing.T, ctx context.Context) {
	for _, component := range []string{"ingest", "inbox"} {
		dep, err := r.cs.AppsV1().Deployments(namespace).Get(ctx, releaseName+"-"+component, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := int(*dep.Spec.Replicas)
		if want < 2 {
			t.Fatalf("%s runs %d replica: the check needs at least 2", component, want)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		err = cluster.Poll(wctx, component+" pods to count "+fmt.Sprint(want)+" replicas", 500*time.Millisecond, func(ctx context.Context) error {
			pods, err := r.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: componentLabel + "=" + component})
			if err != nil {
				return err
			}
			for _, p := range pods.Items {
				if p.DeletionTimestamp != nil {
					continue
				}
				logs, err := r.cs.CoreV1().Pods(namespace).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
				if err != nil {
					return err
				}
				if got := lastReplicaCount(logs); got != want {
					return fmt.Errorf("pod %s shares tenant rates among %d replicas, want %d", p.Name, got, want)
				}
			}
			return nil
		})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: every pod shares tenant rates among %d replicas", component, want)
	}
}

// lastReplicaCount is the count of a pod's last "shared among replicas" line; 1 (its own
// share) before any.
func lastReplicaCount(logs []byte) int {
	n := 1
	sc := bufio.NewScanner(bytes.NewReader(logs))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg   string `json:"msg"`
			Count int    `json:"count"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "tenant rate: shared among replicas" {
			n = line.Count
		}
	}
	return n
}

func TestLastReplicaCount(t *testing.T) {
	logs := []byte(`{"level":"info","msg":"starting"}
not json
{"level":"info","msg":"tenant rate: shared among replicas","count":3,"was":1}
{"level":"info","msg":"tenant rate: shared among replicas","count":2,"was":3}
{"level":"warn","msg":"tenant rate: counting the replicas failed; keeping the last count","count":2}
`)
	if got := lastReplicaCount(logs); got != 2 {
		t.Errorf("got %d, want the last line's 2", got)
	}
	if got := lastReplicaCount([]byte(`{"msg":"starting"}`)); got != 1 {
		t.Errorf("got %d before any count, want 1", got)
	}
}
