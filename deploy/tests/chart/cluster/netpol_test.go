package cluster_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

const componentLabel = "app.kubernetes.io/component"

// networkPolicies checks the release's policies against the pods the API holds. The CNI bridge
// plugin enforces no NetworkPolicy, so no packet is dropped here whatever they say; what can be
// checked is that each policy selects pods that exist, each peer resolves to pods that exist,
// each port name is a port those pods declare, and no policy admits an ingest or inbox pod to
// keys-admin.
func (r *release) networkPolicies(t *testing.T, ctx context.Context) {
	pols, err := r.cs.NetworkingV1().NetworkPolicies(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := r.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pols.Items) == 0 {
		t.Fatal("no NetworkPolicy in the release")
	}
	for _, p := range pols.Items {
		selected := matching(t, &p.Spec.PodSelector, pods.Items)
		if len(selected) == 0 {
			t.Errorf("%s selects no pod", p.Name)
			continue
		}
		guardsAdmin := hasComponent(selected, "keys-admin")
		for i, rule := range p.Spec.Ingress {
			checkPorts(t, p.Name, rule.Ports, selected)
			for _, peer := range rule.From {
				from := peerPods(t, p.Name, peer, pods.Items)
				if len(from) == 0 {
					t.Errorf("%s rule %d: peer %v matches no pod", p.Name, i, peer)
				}
				if guardsAdmin && (hasComponent(from, "ingest") || hasComponent(from, "inbox")) {
					t.Errorf("%s rule %d admits ingest or inbox pods to keys-admin: %v", p.Name, i, peer)
				}
			}
		}
		t.Logf("%s: selects %d pods, %d ingress rules resolved", p.Name, len(selected), len(p.Spec.Ingress))
	}
}

func matching(t *testing.T, sel *metav1.LabelSelector, pods []corev1.Pod) []corev1.Pod {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range pods {
		if s.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	return out
}

// peerPods resolves a peer to this namespace's pods; the chart's values here name no other
// namespace and no address block, so such a peer is an error.
func peerPods(t *testing.T, policy string, peer networkingv1.NetworkPolicyPeer, pods []corev1.Pod) []corev1.Pod {
	if peer.NamespaceSelector != nil || peer.IPBlock != nil || peer.PodSelector == nil {
		t.Errorf("%s: peer %v reaches outside the namespace", policy, peer)
		return nil
	}
	return matching(t, peer.PodSelector, pods)
}

func hasComponent(pods []corev1.Pod, component string) bool {
	for _, p := range pods {
		if p.Labels[componentLabel] == component {
			return true
		}
	}
	return false
}

// checkPorts: a named port a pod does not declare admits nothing on that pod.
func checkPorts(t *testing.T, policy string, ports []networkingv1.NetworkPolicyPort, pods []corev1.Pod) {
	for _, port := range ports {
		if port.Port == nil || port.Port.StrVal == "" {
			continue
		}
		for _, p := range pods {
			if !declares(&p, port.Port.StrVal) {
				t.Errorf("%s: pod %s declares no port %q", policy, p.Name, port.Port.StrVal)
			}
		}
	}
}

func declares(p *corev1.Pod, name string) bool {
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == name {
				return true
			}
		}
	}
	return false
}
