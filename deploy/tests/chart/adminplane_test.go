package k8stest

import (
	"path"
	"reflect"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/trigger-api/trigger-api/services/keys-admin/adminapi"
)

// podAt is a pod as a NetworkPolicy sees it: its labels and its namespace's.
type podAt struct {
	namespace string
	labels    map[string]string
}

// peerAdmits reports whether peer, in a policy of namespace policyNS, selects pod. Namespaces
// carry only the kubernetes.io/metadata.name label the API server sets. ipBlocks select no pod
// here: they are meant for addresses outside the cluster.
func peerAdmits(t *testing.T, policyNS string, peer networkingv1.NetworkPolicyPeer, pod podAt) bool {
	t.Helper()
	if peer.IPBlock != nil {
		return false
	}
	matches := func(sel *metav1.LabelSelector, set map[string]string) bool {
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			t.Fatalf("selector %v: %v", sel, err)
		}
		return s.Matches(labels.Set(set))
	}
	if peer.NamespaceSelector == nil {
		if pod.namespace != policyNS {
			return false
		}
	} else if !matches(peer.NamespaceSelector, map[string]string{"kubernetes.io/metadata.name": pod.namespace}) {
		return false
	}
	return peer.PodSelector == nil || matches(peer.PodSelector, pod.labels)
}

// apiPeers are the peers a policy admits to the http port; ok is false when some rule opens it
// to every source (a rule with no peers).
func apiPeers(np *networkingv1.NetworkPolicy) (peers []networkingv1.NetworkPolicyPeer, ok bool) {
	for _, rule := range np.Spec.Ingress {
		for _, port := range openedPorts(rule) {
			if port != "http" && port != "every port" {
				continue
			}
			if len(rule.From) == 0 {
				return nil, false
			}
			peers = append(peers, rule.From...)
		}
	}
	return peers, true
}

func (m *manifest) netpolOf(t *testing.T, component string) *networkingv1.NetworkPolicy {
	t.Helper()
	for _, np := range m.netpols {
		if np.Spec.PodSelector.MatchLabels[labelComponent] == component {
			return np
		}
	}
	t.Fatalf("no NetworkPolicy for %s", component)
	return nil
}

func (m *manifest) podOf(t *testing.T, component string) podAt {
	t.Helper()
	w, ok := m.workload(component)
	if !ok {
		t.Fatalf("no workload %s", component)
	}
	return podAt{namespace: m.namespace, labels: w.pod.Labels}
}

func TestChartNetworkPoliciesOnByDefault(t *testing.T) {
	m := render(t, testRelease, testNamespace, map[string]any{})
	for _, c := range serviceComponents {
		if _, ok := m.workload(c); !ok {
			continue // the worker is off by default
		}
		m.netpolOf(t, c)
	}
	if len(m.netpols) < 3 {
		t.Fatalf("%d NetworkPolicies by default, want one per component", len(m.netpols))
	}
	// Nothing is named by default, so only the helm test Pod may call keys-admin, never everyone.
	peers, ok := apiPeers(m.netpolOf(t, "keys-admin"))
	if got, want := normalize(t, peers), normalize(t, []any{podsOf("helm-test")}); !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("default keys-admin policy admits %v (open to all: %v), want only the helm test Pod", got, !ok)
	}
	// Without the test, nothing: no API rule at all, never an empty one (which would admit everyone).
	m = render(t, testRelease, testNamespace, readValues(t, `tests: {enabled: false}`))
	if peers, ok := apiPeers(m.netpolOf(t, "keys-admin")); !ok || len(peers) != 0 {
		t.Fatalf("keys-admin policy without the helm test admits %v (open to all: %v), want nothing", peers, !ok)
	}
}

func TestChartKeysAdminNeverAdmitsIngestOrInbox(t *testing.T) {
	named := map[string]any{"networkPolicy": map[string]any{"keysAdminFrom": []any{
		map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "platform-ops"}}},
		map[string]any{"podSelector": map[string]any{"matchLabels": map[string]any{"trigger-api/admin-client": "true"}}},
	}}}
	sets := map[string]map[string]any{"named-selectors": named}
	for _, vs := range valueSets(t) {
		sets[vs.name] = vs.values(t)
	}
	for name, vals := range sets {
		t.Run(name, func(t *testing.T) {
			m := render(t, testRelease, testNamespace, vals)
			if !m.enabled("networkPolicy") {
				t.Skip("network policies off in this set")
			}
			np := m.netpolOf(t, "keys-admin")
			peers, ok := apiPeers(np)
			if !ok {
				t.Fatalf("keys-admin's API is open to every source: %+v", np.Spec.Ingress)
			}
			for _, c := range []string{"ingest", "inbox", "worker"} {
				if _, exists := m.workload(c); !exists {
					continue
				}
				pod := m.podOf(t, c)
				for _, p := range peers {
					if peerAdmits(t, np.Namespace, p, pod) {
						t.Errorf("keys-admin admits the %s pods through %+v", c, p)
					}
				}
			}
		})
	}
}

// TestChartKeysAdminAdmitsWhatValuesName: the peers of keys-admin's API rule are exactly
// networkPolicy.keysAdminFrom, plus the demo Job's pods when the demo runs.
func TestChartKeysAdminAdmitsWhatValuesName(t *testing.T) {
	ops := map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "platform-ops"}}}
	client := map[string]any{"podSelector": map[string]any{"matchLabels": map[string]any{"trigger-api/admin-client": "true"}}}
	vals := map[string]any{"networkPolicy": map[string]any{"keysAdminFrom": []any{ops, client}}}
	m := render(t, testRelease, testNamespace, vals)
	peers, ok := apiPeers(m.netpolOf(t, "keys-admin"))
	if !ok {
		t.Fatal("keys-admin's API is open to every source")
	}
	if got, want := normalize(t, peers), normalize(t, []any{ops, client, podsOf("helm-test")}); !reflect.DeepEqual(got, want) {
		t.Fatalf("keys-admin admits %v, want exactly %v and the helm test Pod", got, want)
	}
	np := m.netpolOf(t, "keys-admin")
	for _, tc := range []struct {
		name  string
		pod   podAt
		admit bool
	}{
		{"operator-namespace-pod", podAt{"platform-ops", map[string]string{"app": "anything"}}, true},
		{"labelled-pod-here", podAt{testNamespace, map[string]string{"trigger-api/admin-client": "true"}}, true},
		{"unlabelled-pod-here", podAt{testNamespace, map[string]string{"app": "other"}}, false},
		{"labelled-pod-elsewhere", podAt{"other", map[string]string{"trigger-api/admin-client": "true"}}, false},
	} {
		admitted := false
		for _, p := range peers {
			admitted = admitted || peerAdmits(t, np.Namespace, p, tc.pod)
		}
		if admitted != tc.admit {
			t.Errorf("%s: admitted %v, want %v", tc.name, admitted, tc.admit)
		}
	}

	t.Run("dev-values-admit-the-demo-job", func(t *testing.T) {
		vs := valueSet{name: "values-dev.yaml", file: chartDir + "/values-dev.yaml"}
		m := render(t, testRelease, testNamespace, vs.values(t))
		np := m.netpolOf(t, "keys-admin")
		peers, ok := apiPeers(np)
		if !ok || len(peers) == 0 {
			t.Fatalf("dev keys-admin admits %v (open to all: %v), want the demo Job", peers, !ok)
		}
		demo := m.podOf(t, "demo")
		admitted := false
		for _, p := range peers {
			admitted = admitted || peerAdmits(t, np.Namespace, p, demo)
		}
		if !admitted {
			t.Fatalf("the demo Job's pods %v are not admitted by %+v", demo.labels, peers)
		}
	})
}

func TestChartRefusesKeysAdminPeersMatchingTheRelease(t *testing.T) {
	for _, tc := range []struct{ name, peer string }{
		{"whole-namespace", `{podSelector: {}}`},
		{"every-namespace", `{namespaceSelector: {}}`},
		{"release-instance-label", `{podSelector: {matchLabels: {app.kubernetes.io/instance: rel}}}`},
		{"this-namespace-by-name", `{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: trigger-test}}}`},
		{"ingest-by-component", `{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: trigger-test}}, podSelector: {matchLabels: {app.kubernetes.io/component: ingest}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals := readValues(t, `networkPolicy: {keysAdminFrom: [`+tc.peer+`]}`)
			_, err := renderRelease(t, testRelease, testNamespace, vals)
			if err == nil || !strings.Contains(err.Error(), "keysAdminFrom") {
				t.Fatalf("got %v, want a refusal naming networkPolicy.keysAdminFrom", err)
			}
		})
	}
}

// TestChartMountsAdminTokensAsFile: keys-admin reads its tokens from a Secret volume, which the
// kubelet refreshes, and not from an env var or a subPath mount, which never change in a running
// pod.
func TestChartMountsAdminTokensAsFile(t *testing.T) {
	for name, m := range renderSets(t) {
		t.Run(name, func(t *testing.T) {
			w, ok := m.workload("keys-admin")
			if !ok {
				t.Skip("keys-admin off")
			}
			env := m.resolveEnv(t, w)
			file := env["TRIGGER_ADMIN_TOKENS_FILE"]
			if file == "" || env["TRIGGER_ADMIN_TOKENS"] != "" {
				t.Fatalf("TRIGGER_ADMIN_TOKENS_FILE %q, TRIGGER_ADMIN_TOKENS %q: want the file only", file, env["TRIGGER_ADMIN_TOKENS"])
			}
			c := w.pod.Spec.Containers[0]
			var mount *corev1.VolumeMount
			for i := range c.VolumeMounts {
				if c.VolumeMounts[i].MountPath == path.Dir(file) {
					mount = &c.VolumeMounts[i]
				}
			}
			if mount == nil || mount.SubPath != "" || !mount.ReadOnly {
				t.Fatalf("no read-only directory mount (without subPath) at %s: %+v", path.Dir(file), c.VolumeMounts)
			}
			var secret *corev1.SecretVolumeSource
			for _, v := range w.pod.Spec.Volumes {
				if v.Name == mount.Name {
					secret = v.Secret
				}
			}
			if secret == nil || len(secret.Items) != 1 || secret.Items[0].Key != "admin-tokens" || secret.Items[0].Path != path.Base(file) {
				t.Fatalf("volume %s does not hold the Secret's admin-tokens at %s: %+v", mount.Name, file, secret)
			}
			if _, checksum := w.pod.Annotations["checksum/secrets"]; checksum {
				t.Error("keys-admin restarts on token changes although it reads them again on its own")
			}
			if secret.SecretName == m.str("secrets.existingSecret") {
				return
			}
			s := m.secret(secret.SecretName)
			if s == nil {
				t.Fatalf("Secret %s not rendered", secret.SecretName)
			}
			if _, err := adminapi.ParseAdminTokens(adminapi.SplitTokens(string(s.Data["admin-tokens"]))); err != nil {
				t.Fatalf("keys-admin would refuse the rendered tokens: %v", err)
			}
		})
	}
}

func readValues(t *testing.T, doc string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValues([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestChartAdminTokenIsStable: a generated admin token survives upgrades because the chart reads
// it back from the cluster; where it cannot (helm template, Argo CD), the chart refuses to mint
// one rather than replace it on every render, unless the tokens come from values or an existing
// Secret.
func TestChartAdminTokenIsStable(t *testing.T) {
	secretName := testRelease + "-trigger-api-secrets"
	live := func(tokens string) corev1.Secret {
		return corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secretName, Namespace: testNamespace},
			Data: map[string][]byte{"admin-tokens": []byte(tokens)}}
	}
	named := "ops:" + strings.Repeat("k", 40)
	for _, tc := range []struct {
		name    string
		cluster []corev1.Secret // nil: no cluster (helm template)
		online  bool
		vals    string
		want    string // the admin-tokens rendered; "generated" for a fresh token; "" for no Secret
		refusal string
	}{
		{name: "template-refuses-to-mint", vals: `{}`, refusal: "secrets.existingSecret"},
		{name: "template-with-existing-secret", vals: `secrets: {existingSecret: ops-tokens}`},
		{name: "template-with-tokens-from-values", vals: `secrets: {adminTokens: ["` + named + `"]}`, want: named},
		{name: "install-generates", online: true, vals: `{}`, want: "generated"},
		{name: "upgrade-keeps-the-live-token", online: true, cluster: []corev1.Secret{live(named)}, vals: `{}`, want: named},
		{name: "upgrade-names-an-old-unnamed-token", online: true, cluster: []corev1.Secret{live(strings.Repeat("u", 48))}, vals: `{}`, want: "admin:" + strings.Repeat("u", 48)},
		{name: "values-win-over-the-live-token", online: true, cluster: []corev1.Secret{live(named)}, vals: `secrets: {adminTokens: ["ci:` + strings.Repeat("c", 40) + `"]}`, want: "ci:" + strings.Repeat("c", 40)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals := readValues(t, tc.vals)
			var rel *release.Release
			var err error
			if tc.online {
				rel, err = installOn(t, newFakeCluster(t, tc.cluster...), testRelease, testNamespace, vals)
			} else {
				rel, err = renderTemplate(t, testRelease, testNamespace, vals)
			}
			if tc.refusal != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refusal) {
					t.Fatalf("got %v, want a refusal naming %s", err, tc.refusal)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, rendered := adminTokensIn(t, rel.Manifest, secretName)
			switch {
			case tc.want == "":
				if rendered {
					t.Fatalf("rendered Secret %s although the tokens live in an existing Secret", secretName)
				}
			case tc.want == "generated":
				if id, secret, _ := strings.Cut(got, ":"); id != "admin" || len(secret) < 32 {
					t.Fatalf("generated %q, want admin:<at least 32 characters>", got)
				}
			case got != tc.want:
				t.Fatalf("admin-tokens %q, want %q", got, tc.want)
			}
			if tc.want != "" {
				if _, err := adminapi.ParseAdminTokens(adminapi.SplitTokens(got)); err != nil {
					t.Fatalf("keys-admin would refuse %q: %v", got, err)
				}
			}
		})
	}
}

// adminTokensIn finds the Secret name in a rendered manifest and returns its admin-tokens.
func adminTokensIn(t *testing.T, manifest, name string) (string, bool) {
	t.Helper()
	for _, doc := range releaseutil.SplitManifests(manifest) {
		obj, _, err := strictYAML.Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("decode: %v\n%s", err, doc)
		}
		if s, ok := obj.(*corev1.Secret); ok && s.Name == name {
			return string(s.Data["admin-tokens"]), true
		}
	}
	return "", false
}
