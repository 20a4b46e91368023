package k8stest

import (
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// TestChartPodMonitors: with metrics.podMonitor on, each enabled binary, the worker included, has
// one PodMonitor that selects exactly its own pods in the release's namespace and scrapes the
// port its binary serves /metrics on, with the labels, timing and formats the values name. Off,
// there is none.
func TestChartPodMonitors(t *testing.T) {
	covered := map[string]bool{}
	for name, m := range renderSets(t) {
		t.Run(name, func(t *testing.T) {
			if !m.enabled("metrics.podMonitor") {
				if len(m.podMonitors) != 0 {
					t.Errorf("%d PodMonitors although metrics.podMonitor is off", len(m.podMonitors))
				}
				return
			}
			byComponent := map[string]*monitoringv1.PodMonitor{}
			for _, pm := range m.podMonitors {
				byComponent[pm.Labels[labelComponent]] = pm
			}
			for _, w := range m.workloads() {
				bin, ours := binaries[w.component]
				if !ours || w.kind != "Deployment" {
					continue
				}
				pm := byComponent[w.component]
				if pm == nil {
					t.Errorf("%s: no PodMonitor", describe(w))
					continue
				}
				delete(byComponent, w.component)
				covered[w.component] = true
				checkPodMonitor(t, m, w, pm, metricsPort(t, m, w, bin))
			}
			for c := range byComponent {
				t.Errorf("PodMonitor for %s, which runs no pods", c)
			}
		})
	}
	for _, c := range serviceComponents {
		if !covered[c] {
			t.Errorf("no value set renders a PodMonitor for %s", c)
		}
	}
}

func checkPodMonitor(t *testing.T, m *manifest, w workload, pm *monitoringv1.PodMonitor, port string) {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
	if err != nil {
		t.Fatalf("PodMonitor %s: %v", pm.Name, err)
	}
	for _, other := range m.workloads() {
		if got, want := sel.Matches(labels.Set(other.pod.Labels)), other.component == w.component; got != want {
			t.Errorf("PodMonitor %s selects %s: %v, want %v", pm.Name, describe(other), got, want)
		}
	}
	if got := pm.Spec.NamespaceSelector.MatchNames; !slices.Equal(got, []string{m.namespace}) || pm.Spec.NamespaceSelector.Any {
		t.Errorf("PodMonitor %s looks in namespaces %v (any %v), want only %s", pm.Name, got, pm.Spec.NamespaceSelector.Any, m.namespace)
	}
	for k, v := range mapOf(m.value("metrics.podMonitor.labels")) {
		if pm.Labels[k] != v {
			t.Errorf("PodMonitor %s: label %s=%q, want %q from values", pm.Name, k, pm.Labels[k], v)
		}
	}
	var protocols []monitoringv1.ScrapeProtocol
	for _, p := range sliceOf(m.value("metrics.podMonitor.scrapeProtocols")) {
		protocols = append(protocols, monitoringv1.ScrapeProtocol(p))
	}
	if !reflect.DeepEqual(pm.Spec.ScrapeProtocols, protocols) {
		t.Errorf("PodMonitor %s: scrapeProtocols %v, want %v", pm.Name, pm.Spec.ScrapeProtocols, protocols)
	}
	if len(pm.Spec.PodMetricsEndpoints) != 1 {
		t.Fatalf("PodMonitor %s: %d endpoints, want 1", pm.Name, len(pm.Spec.PodMetricsEndpoints))
	}
	ep := pm.Spec.PodMetricsEndpoints[0]
	scraped := ""
	if ep.Port != nil {
		scraped = *ep.Port
	}
	c := w.pod.Spec.Containers[0]
	i := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == scraped })
	if i < 0 || port == "" || strconv.Itoa(int(c.Ports[i].ContainerPort)) != port {
		t.Errorf("PodMonitor %s scrapes port %q, want the port %s listens for scrapers on (%s)", pm.Name, scraped, describe(w), port)
	}
	if ep.Path != "/metrics" {
		t.Errorf("PodMonitor %s: path %q, want /metrics", pm.Name, ep.Path)
	}
	if string(ep.Interval) != m.str("metrics.podMonitor.interval") || string(ep.ScrapeTimeout) != m.str("metrics.podMonitor.scrapeTimeout") {
		t.Errorf("PodMonitor %s: interval %q, timeout %q, want the values'", pm.Name, ep.Interval, ep.ScrapeTimeout)
	}
	if ep.Interval != "" && ep.ScrapeTimeout != "" && duration(t, string(ep.ScrapeTimeout)) > duration(t, string(ep.Interval)) {
		t.Errorf("PodMonitor %s: scrapeTimeout %s exceeds interval %s, which Prometheus refuses", pm.Name, ep.ScrapeTimeout, ep.Interval)
	}
}

func mapOf(v any) map[string]string {
	out := map[string]string{}
	m, _ := v.(map[string]any)
	for k, x := range m {
		out[k], _ = x.(string)
	}
	return out
}

func sliceOf(v any) []string {
	var out []string
	s, _ := v.([]any)
	for _, x := range s {
		str, _ := x.(string)
		out = append(out, str)
	}
	return out
}

func duration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return d
}
