package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"

	"github.com/trigger-api/trigger-api/deploy/tests/chart/cluster"
)

const (
	releaseName = "trigger-api"
	namespace   = "trigger"
)

// release is the chart installed in the test namespace, with the values it was given last.
type release struct {
	c     *cluster.Cluster
	cs    kubernetes.Interface
	cfg   *action.Configuration
	chart *chart.Chart
	vals  map[string]any
}

func newRelease(t *testing.T, c *cluster.Cluster, root, ddbEndpoint string) *release {
	dir := filepath.Join(root, "charts", "trigger-api")
	ch, err := loader.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := chartutil.ReadValuesFile(filepath.Join(dir, "ci", "cluster-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	vals := v.AsMap()
	vals["dynamodb"].(map[string]any)["endpoint"] = ddbEndpoint
	flags := genericclioptions.NewConfigFlags(false)
	kubeconfig, ns := c.Kubeconfig, namespace
	flags.KubeConfig, flags.Namespace = &kubeconfig, &ns
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, namespace, "secret", func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	return &release{c: c, cs: c.Client, cfg: cfg, chart: ch, vals: vals}
}

// install labels the namespace for the restricted Pod Security Standard, so the API server
// refuses any pod that breaks it, installs the release and waits for every Deployment to be
// Available and every Job to complete, reporting when each Deployment got there.
func (r *release) install(t *testing.T, ctx context.Context) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest",
	}}}
	if _, err := r.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	in := action.NewInstall(r.cfg)
	in.ReleaseName, in.Namespace = releaseName, namespace
	began := time.Now()
	if _, err := in.RunWithContext(ctx, r.chart, r.vals); err != nil {
		t.Fatalf("helm install: %v", err)
	}
	r.waitSettled(t, ctx, began, 1)
	r.checkPodsRestricted(t, ctx)
}

// waitSettled waits until every Deployment is Available with all its replicas updated and no old
// ones left, and the Jobs of this revision have completed; it logs when each Deployment got there.
func (r *release) waitSettled(t *testing.T, ctx context.Context, since time.Time, revision int) {
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	availableAt := map[string]time.Duration{}
	err := cluster.Poll(wctx, "the release to settle", 250*time.Millisecond, func(ctx context.Context) error {
		deps, err := r.cs.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		var waiting []string
		for _, d := range deps.Items {
			if _, seen := availableAt[d.Name]; !seen && rolledOut(&d) {
				availableAt[d.Name] = time.Since(since)
				t.Logf("deployment %-28s Available after %s", d.Name, seconds(availableAt[d.Name]))
			}
			if !rolledOut(&d) {
				waiting = append(waiting, d.Name)
			}
		}
		if len(deps.Items) == 0 {
			return fmt.Errorf("no Deployments")
		}
		if len(waiting) > 0 {
			return fmt.Errorf("not rolled out: %v", waiting)
		}
		return r.jobsComplete(ctx, revision)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func rolledOut(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.AvailableReplicas == want && s.Replicas == want
}

// jobsComplete checks the Jobs of the given revision (each carries it in its name) completed.
func (r *release) jobsComplete(ctx context.Context, revision int) error {
	jobs, err := r.cs.BatchV1().Jobs(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	suffix := fmt.Sprintf("-%d", revision)
	found := 0
	for _, j := range jobs.Items {
		if !strings.HasSuffix(j.Name, suffix) {
			continue
		}
		found++
		if !jobDone(&j) {
			return fmt.Errorf("job %s not complete", j.Name)
		}
	}
	if found != 2 {
		return fmt.Errorf("want the tables and demo Jobs of revision %d, found %d", revision, found)
	}
	return nil
}

func jobDone(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// checkPodsRestricted: the namespace's enforce label already made the API server refuse any
// pod that breaks the standard; this checks the label held and every pod is Ready or done.
func (r *release) checkPodsRestricted(t *testing.T, ctx context.Context) {
	ns, err := r.cs.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Fatalf("namespace labels %v", ns.Labels)
	}
	pods, err := r.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodSucceeded && !podReady(&p) {
			t.Errorf("pod %s: %s, not Ready", p.Name, p.Status.Phase)
		}
	}
	t.Logf("%d pods admitted under restricted, all Ready or Succeeded", len(pods.Items))
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// helmTest is `helm test --logs`.
func (r *release) helmTest(t *testing.T, ctx context.Context) {
	rt := action.NewReleaseTesting(r.cfg)
	rt.Namespace, rt.Timeout = namespace, 3*time.Minute
	rel, err := rt.Run(releaseName)
	var logs bytes.Buffer
	if rel != nil {
		if lerr := rt.GetPodLogs(&logs, rel); lerr != nil {
			t.Logf("test pod logs: %v", lerr)
		}
	}
	t.Logf("helm test logs:\n%s", logs.String())
	if err != nil {
		t.Fatalf("helm test: %v", err)
	}
}

// upgrade changes values that reach every ConfigMap (so every Deployment rolls) and both Jobs,
// whose pod templates are immutable: the chart must give each revision Jobs of its own.
func (r *release) upgrade(t *testing.T, ctx context.Context) {
	r.vals["logLevel"] = "debug"
	r.vals["tablesJob"].(map[string]any)["backoffLimit"] = 11
	r.vals["demo"].(map[string]any)["backoffLimit"] = 11
	up := action.NewUpgrade(r.cfg)
	up.Namespace = namespace
	began := time.Now()
	rel, err := up.RunWithContext(ctx, releaseName, r.chart, r.vals)
	if err != nil {
		t.Fatalf("helm upgrade: %v", err)
	}
	r.waitSettled(t, ctx, began, rel.Version)
	jobs, err := r.cs.BatchV1().Jobs(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs.Items {
		if !strings.HasSuffix(j.Name, fmt.Sprintf("-%d", rel.Version)) {
			t.Errorf("job %s of an older revision is still there", j.Name)
		}
	}
}

// uninstall removes the release and lists every namespaced kind the API serves: nothing of the
// release may remain but what Helm never deletes by design (test hooks, reported).
func (r *release) uninstall(t *testing.T, ctx context.Context) {
	if _, err := action.NewUninstall(r.cfg).Run(releaseName); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	var left []string
	err := cluster.Poll(ctx, "the release's objects to go", time.Second, func(ctx context.Context) error {
		var err error
		left, err = leftovers(ctx, r.c, namespace)
		for _, o := range left {
			if err == nil && !strings.HasPrefix(o, "hook:") {
				err = fmt.Errorf("left: %v", left)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Logf("Helm deletes no hook on uninstall; left until the namespace goes: %v", left)
	}
	if err := r.cs.CoreV1().Namespaces().Delete(ctx, namespace, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// dump logs what a failed step leaves to look at: events and pods with their containers' states.
func (r *release) dump(t *testing.T, ctx context.Context) {
	evs, err := r.cs.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{})
	if err == nil {
		sort.Slice(evs.Items, func(i, j int) bool { return evs.Items[i].LastTimestamp.Before(&evs.Items[j].LastTimestamp) })
		var b strings.Builder
		for _, e := range evs.Items {
			if e.Type != corev1.EventTypeNormal {
				fmt.Fprintf(&b, "%s %s/%s: %s: %s\n", e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
			}
		}
		t.Logf("warning events:\n%s", b.String())
	}
	// Evicted pods (Failed, ContainerStatusUnknown) and Pending replacements point at the node:
	// a pressure condition taints it, and its message names the resource.
	if n, err := r.cs.CoreV1().Nodes().Get(ctx, cluster.NodeName, metav1.GetOptions{}); err == nil {
		for _, c := range n.Status.Conditions {
			t.Logf("node %s=%s: %s", c.Type, c.Status, c.Message)
		}
		t.Logf("node taints: %v", n.Spec.Taints)
	}
	pods, err := r.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, p := range pods.Items {
		t.Logf("pod %s: %s", p.Name, p.Status.Phase)
		for _, s := range p.Status.ContainerStatuses {
			t.Logf("  %s ready=%v restarts=%d state=%+v last=%+v", s.Name, s.Ready, s.RestartCount, s.State, s.LastTerminationState)
			tail := int64(20)
			out, err := r.cs.CoreV1().Pods(namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: s.Name, TailLines: &tail}).DoRaw(ctx)
			if err == nil {
				t.Logf("  logs:\n%s", out)
			}
		}
	}
}
