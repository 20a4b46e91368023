package k8stest

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
)

// TestChartHelmTestRunsTheDemo: `helm test` runs `worker demo` in a Pod that is a test hook,
// kept for its logs until the next run, pointed at the release's three Services, reading the
// admin token keys-admin reads, and admitted by each of their NetworkPolicies.
func TestChartHelmTestRunsTheDemo(t *testing.T) {
	for _, tc := range []struct{ name, vals string }{
		{"defaults", `{}`},
		{"existing-secret", `{secrets: {existingSecret: ops-tokens}, image: {tag: "2.0.0"}}`},
		{"production", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals := readValues(t, tc.vals)
			if tc.name == "production" {
				vals = valueSet{name: "production", file: chartDir + "/ci/production-values.yaml"}.values(t)
			}
			rel, err := renderRelease(t, testRelease, testNamespace, vals)
			if err != nil {
				t.Fatal(err)
			}
			checkTestHook(t, rel)
			m := render(t, testRelease, testNamespace, vals)
			if len(m.pods) != 1 {
				t.Fatalf("%d Pods, want the helm test's", len(m.pods))
			}
			checkTestPod(t, m, m.pods[0])
		})
	}
}

func checkTestHook(t *testing.T, rel *release.Release) {
	t.Helper()
	var tests []*release.Hook
	for _, h := range rel.Hooks {
		if slices.Contains(h.Events, release.HookTest) {
			tests = append(tests, h)
		}
	}
	if len(tests) != 1 || tests[0].Kind != "Pod" {
		t.Fatalf("test hooks %v, want one Pod", tests)
	}
	// Deleted before the next run, not on success: `helm test --logs` reads it afterwards.
	if got := tests[0].DeletePolicies; !slices.Equal(got, []release.HookDeletePolicy{release.HookBeforeHookCreation}) {
		t.Errorf("delete policies %v, want only before-hook-creation", got)
	}
}

func checkTestPod(t *testing.T, m *manifest, pod *corev1.Pod) {
	t.Helper()
	c := pod.Spec.Containers[0]
	worker := m.value("image.repository").(string) + "/worker"
	if !slices.Equal(c.Args, []string{"demo"}) || len(c.Command) != 0 || !strings.HasPrefix(c.Image, worker) {
		t.Errorf("runs %s %v %v, want the worker image's `worker demo`", c.Image, c.Command, c.Args)
	}
	if pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %s: a failed demo must fail the test, not run again", pod.Spec.RestartPolicy)
	}
	w := workload{"Pod", pod.Name, "helm-test", &corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec}}
	env := m.resolveEnv(t, w)
	for variable, component := range map[string]string{"TRIGGER_ADMIN_URL": "keys-admin", "TRIGGER_INGEST_URL": "ingest", "TRIGGER_INBOX_URL": "inbox"} {
		u, err := url.Parse(env[variable])
		if err != nil {
			t.Fatalf("%s %q: %v", variable, env[variable], err)
		}
		svc := m.service(u.Hostname())
		if svc == nil || svc.Spec.Selector[labelComponent] != component || u.Port() != strconv.Itoa(int(svc.Spec.Ports[0].Port)) {
			t.Errorf("%s=%s is not %s's Service", variable, env[variable], component)
		}
		np := m.netpolOf(t, component)
		peers, _ := apiPeers(np)
		admitted := false
		for _, p := range peers {
			admitted = admitted || peerAdmits(t, np.Namespace, p, podAt{m.namespace, pod.Labels})
		}
		if !admitted {
			t.Errorf("%s's NetworkPolicy does not admit the test Pod %v", component, pod.Labels)
		}
	}
	// The token keys-admin reads: the same Secret and key as its mounted file.
	var ref *corev1.SecretKeySelector
	for _, e := range c.Env {
		if e.Name == "TRIGGER_ADMIN_TOKENS" && e.ValueFrom != nil {
			ref = e.ValueFrom.SecretKeyRef
		}
	}
	admin, _ := m.workload("keys-admin")
	var mounted *corev1.SecretVolumeSource
	for _, v := range admin.pod.Spec.Volumes {
		if v.Secret != nil {
			mounted = v.Secret
		}
	}
	if ref == nil || mounted == nil || ref.Name != mounted.SecretName || ref.Key != mounted.Items[0].Key {
		t.Errorf("TRIGGER_ADMIN_TOKENS from %+v, want keys-admin's Secret %+v", ref, mounted)
	}
}

// TestChartHelmTestNeedsAllThreeServices: without one of them, or when turned off, no test Pod
// and no NetworkPolicy opening for it.
func TestChartHelmTestNeedsAllThreeServices(t *testing.T) {
	for _, vals := range []string{
		`tests: {enabled: false}`,
		`components: {ingest: {enabled: false}}`,
		`components: {inbox: {enabled: false}}`,
		`components: {keys-admin: {enabled: false}}`,
	} {
		t.Run(vals, func(t *testing.T) {
			m := render(t, testRelease, testNamespace, readValues(t, vals))
			if len(m.pods) != 0 {
				t.Fatalf("rendered a test Pod with %s", vals)
			}
			for _, np := range m.netpols {
				for _, rule := range np.Spec.Ingress {
					for _, p := range rule.From {
						if p.PodSelector != nil && p.PodSelector.MatchLabels[labelComponent] == "helm-test" {
							t.Errorf("NetworkPolicy %s admits a helm test that does not exist", np.Name)
						}
					}
				}
			}
		})
	}
}
