package k8stest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// Grafana's provisioning files, as far as the tests read them.
type (
	grafanaDatasources struct {
		APIVersion  int                 `json:"apiVersion"`
		Datasources []grafanaDatasource `json:"datasources"`
	}
	grafanaDatasource struct {
		Name      string `json:"name"`
		UID       string `json:"uid"`
		Type      string `json:"type"`
		Access    string `json:"access"`
		URL       string `json:"url"`
		IsDefault bool   `json:"isDefault"`
		JSONData  struct {
			TimeInterval                string `json:"timeInterval"`
			ExemplarTraceIDDestinations []struct {
				Name          string `json:"name"`
				DatasourceUID string `json:"datasourceUid"`
			} `json:"exemplarTraceIdDestinations"`
		} `json:"jsonData"`
	}
	grafanaProviders struct {
		APIVersion int `json:"apiVersion"`
		Providers  []struct {
			Name            string `json:"name"`
			Type            string `json:"type"`
			DisableDeletion bool   `json:"disableDeletion"`
			AllowUIUpdates  bool   `json:"allowUiUpdates"`
			Options         struct {
				Path string `json:"path"`
			} `json:"options"`
		} `json:"providers"`
	}
	// The development Prometheus's configuration, as far as the tests read it.
	promConfig struct {
		Global struct {
			ScrapeInterval     string `json:"scrape_interval"`
			EvaluationInterval string `json:"evaluation_interval"`
		} `json:"global"`
		ScrapeConfigs []struct {
			JobName             string `json:"job_name"`
			KubernetesSDConfigs []struct {
				Role       string `json:"role"`
				Namespaces struct {
					Names []string `json:"names"`
				} `json:"namespaces"`
			} `json:"kubernetes_sd_configs"`
			RelabelConfigs []struct {
				SourceLabels []string `json:"source_labels"`
				Regex        string   `json:"regex"`
				Action       string   `json:"action"`
				TargetLabel  string   `json:"target_label"`
			} `json:"relabel_configs"`
		} `json:"scrape_configs"`
	}
)

// exemplarTraceLabel is the label the OpenTelemetry Prometheus exporter puts an exemplar's trace
// id under (otlptranslator.ExemplarTraceIDKey); deploy/tests/tracing reads it from a real
// Prometheus.
const exemplarTraceLabel = "trace_id"

// TestChartDevGrafanaIsProvisioned checks the development Grafana of values-dev.yaml: its
// provisioning files parse, the data sources point at Services the chart renders on ports
// they expose, exemplars link to the Jaeger data source, the dashboard file is where the
// provider looks and opens on the provisioned Prometheus, and the latency panels ask for
// exemplars.
func TestChartDevGrafanaIsProvisioned(t *testing.T) {
	m := renderSets(t)["values-dev.yaml"]
	w, ok := m.workload("grafana")
	if !ok {
		t.Fatal("values-dev.yaml renders no Grafana")
	}
	files := mountedConfigMapFiles(t, m, w)
	var ds grafanaDatasources
	unmarshalStrict(t, "datasources", fileUnder(t, files, "/etc/grafana/provisioning/datasources/"), &ds)
	uids := checkDatasources(t, m, ds)

	var providers grafanaProviders
	unmarshalStrict(t, "dashboard providers", fileUnder(t, files, "/etc/grafana/provisioning/dashboards/"), &providers)
	if len(providers.Providers) != 1 || providers.Providers[0].Type != "file" {
		t.Fatalf("dashboard providers %+v, want one of type file", providers.Providers)
	}
	dir := providers.Providers[0].Options.Path
	// Not strict: the test reads only part of Grafana's model.
	var dash dashboard
	if err := json.Unmarshal([]byte(fileUnder(t, files, strings.TrimSuffix(dir, "/")+"/")), &dash); err != nil {
		t.Fatalf("the provisioned dashboard is not JSON: %v", err)
	}
	checkDashboardModel(t, dash)
	for _, v := range dash.Templating.List {
		if v.Name == "prometheus" && (v.Current.Value == nil || uids[fmt.Sprint(v.Current.Value)] != "prometheus") {
			t.Errorf("the dashboard opens on Prometheus data source %v; provisioned: %v", v.Current.Value, uids)
		}
	}
	for _, p := range flattenPanels(dash.Panels) {
		if p.Datasource != nil && p.Datasource.Type == "prometheus" && strings.Contains(strings.ToLower(p.Title), "p99") {
			for _, tg := range p.Targets {
				if !tg.Exemplar {
					t.Errorf("latency panel %q, query %s: exemplars off", p.Title, tg.RefID)
				}
			}
		}
	}
}

// checkDatasources checks each data source's URL names a rendered Service and one of its ports,
// and that exemplars link to a provisioned trace data source; it returns type by uid.
func checkDatasources(t *testing.T, m *manifest, ds grafanaDatasources) map[string]string {
	t.Helper()
	uids := map[string]string{}
	for _, d := range ds.Datasources {
		if d.UID == "" || uids[d.UID] != "" {
			t.Errorf("data source %q: uid %q is empty or repeated", d.Name, d.UID)
		}
		uids[d.UID] = d.Type
		checkServiceURL(t, m, "data source "+d.Name, d.URL)
	}
	for _, want := range []string{"prometheus", "jaeger"} {
		if !slices.Contains(mapsValues(uids), want) {
			t.Errorf("no %s data source among %v", want, uids)
		}
	}
	for _, d := range ds.Datasources {
		if d.Type != "prometheus" {
			continue
		}
		dests := d.JSONData.ExemplarTraceIDDestinations
		if len(dests) == 0 {
			t.Errorf("Prometheus data source %q links exemplars nowhere", d.Name)
		}
		for _, e := range dests {
			if e.Name != exemplarTraceLabel || uids[e.DatasourceUID] != "jaeger" {
				t.Errorf("exemplar link %+v: want label %s to the Jaeger data source", e, exemplarTraceLabel)
			}
		}
		if d.JSONData.TimeInterval != m.str("prometheus.scrapeInterval") {
			t.Errorf("Prometheus data source's timeInterval %q, want the scrape interval %q", d.JSONData.TimeInterval, m.str("prometheus.scrapeInterval"))
		}
	}
	return uids
}

// checkServiceURL: raw is http://<Service>:<port> of a Service the chart renders with that port.
func checkServiceURL(t *testing.T, m *manifest, where, raw string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" {
		t.Errorf("%s: URL %q is not http://", where, raw)
		return
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		t.Errorf("%s: URL %q names no port", where, raw)
		return
	}
	s := m.service(host)
	if s == nil {
		t.Errorf("%s: no Service %q", where, host)
		return
	}
	n, _ := strconv.Atoi(port)
	if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return int(p.Port) == n }) {
		t.Errorf("%s: Service %s exposes no port %d", where, host, n)
	}
}

// mountedConfigMapFiles maps each file a container of w mounts from a ConfigMap (by subPath) to
// its content, failing on a key the ConfigMap lacks.
func mountedConfigMapFiles(t *testing.T, m *manifest, w workload) map[string]string {
	t.Helper()
	byVolume := map[string]*corev1.ConfigMap{}
	for _, v := range w.pod.Spec.Volumes {
		if v.ConfigMap != nil {
			cm := m.configMap(v.ConfigMap.Name)
			if cm == nil {
				t.Fatalf("%s: volume %s names ConfigMap %s, which is not rendered", describe(w), v.Name, v.ConfigMap.Name)
			}
			byVolume[v.Name] = cm
		}
	}
	files := map[string]string{}
	for _, c := range w.pod.Spec.Containers {
		for _, vm := range c.VolumeMounts {
			cm, ok := byVolume[vm.Name]
			if !ok {
				continue
			}
			data, ok := cm.Data[vm.SubPath]
			if vm.SubPath == "" || !ok {
				t.Errorf("%s mounts %q of ConfigMap %s, which holds %v", describe(w), vm.SubPath, cm.Name, keysOf(cm.Data))
				continue
			}
			files[vm.MountPath] = data
		}
	}
	return files
}

// fileUnder returns the one mounted file directly in dir.
func fileUnder(t *testing.T, files map[string]string, dir string) string {
	t.Helper()
	var found []string
	for p := range files {
		if path.Dir(p)+"/" == dir {
			found = append(found, p)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d files mounted in %s (%v), want 1", len(found), dir, keysOf(files))
	}
	return files[found[0]]
}

func unmarshalStrict(t *testing.T, what, doc string, out any) {
	t.Helper()
	if err := yaml.UnmarshalStrict([]byte(doc), out); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, doc)
	}
}

func mapsValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestChartDevPrometheusScrapesTheRelease checks the development Prometheus of values-dev.yaml:
// it keeps exemplars, reads the configuration it is given, discovers this namespace's pods with
// a Role that allows exactly that, keeps this release's ports named "metrics" (the port every
// binary serves /metrics on), and the NetworkPolicies admit it there.
func TestChartDevPrometheusScrapesTheRelease(t *testing.T) {
	m := renderSets(t)["values-dev.yaml"]
	w, ok := m.workload("prometheus")
	if !ok {
		t.Fatal("values-dev.yaml renders no Prometheus")
	}
	spec := w.pod.Spec
	if spec.AutomountServiceAccountToken == nil || !*spec.AutomountServiceAccountToken {
		t.Error("Prometheus has no token to discover pods with")
	}
	args := spec.Containers[0].Args
	if !slices.Contains(args, "--enable-feature=exemplar-storage") {
		t.Errorf("args %v: exemplar storage off", args)
	}
	var cfgPath string
	for _, a := range args {
		if p, ok := strings.CutPrefix(a, "--config.file="); ok {
			cfgPath = p
		}
	}
	cm := m.configMap(w.name)
	if cm == nil {
		t.Fatalf("no ConfigMap %s", w.name)
	}
	mounted := slices.ContainsFunc(spec.Containers[0].VolumeMounts, func(vm corev1.VolumeMount) bool {
		return vm.MountPath == filepath.Dir(cfgPath) && slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool {
			return v.Name == vm.Name && v.ConfigMap != nil && v.ConfigMap.Name == cm.Name
		})
	})
	if _, ok := cm.Data[filepath.Base(cfgPath)]; !ok || !mounted {
		t.Fatalf("--config.file=%s is not ConfigMap %s's key mounted there", cfgPath, cm.Name)
	}
	var cfg promConfig
	unmarshalStrict(t, "prometheus.yml", cm.Data[filepath.Base(cfgPath)], &cfg)
	checkScrapeConfig(t, m, cfg)
	checkPrometheusRole(t, m, spec.ServiceAccountName)
	checkScrapersAdmitted(t, m, w)
}

func checkScrapeConfig(t *testing.T, m *manifest, cfg promConfig) {
	t.Helper()
	if cfg.Global.ScrapeInterval != m.str("prometheus.scrapeInterval") || len(cfg.ScrapeConfigs) != 1 {
		t.Fatalf("config %+v: want one scrape job every %s", cfg, m.str("prometheus.scrapeInterval"))
	}
	sc := cfg.ScrapeConfigs[0]
	if len(sc.KubernetesSDConfigs) != 1 || sc.KubernetesSDConfigs[0].Role != "pod" || !slices.Equal(sc.KubernetesSDConfigs[0].Namespaces.Names, []string{m.namespace}) {
		t.Errorf("discovery %+v: want the pods of namespace %s", sc.KubernetesSDConfigs, m.namespace)
	}
	keeps := map[string]string{}
	for _, r := range sc.RelabelConfigs {
		if r.Action == "keep" && len(r.SourceLabels) == 1 {
			keeps[r.SourceLabels[0]] = r.Regex
		}
		if r.TargetLabel == "job" && !slices.Equal(r.SourceLabels, []string{"__meta_kubernetes_pod_label_app_kubernetes_io_component"}) {
			t.Errorf("job label from %v, want the component, as the local stack names jobs", r.SourceLabels)
		}
	}
	if keeps["__meta_kubernetes_pod_label_app_kubernetes_io_instance"] != m.release {
		t.Errorf("keeps pods of instance %q, want release %s", keeps["__meta_kubernetes_pod_label_app_kubernetes_io_instance"], m.release)
	}
	port := keeps["__meta_kubernetes_pod_container_port_name"]
	for _, c := range serviceComponents {
		w, ok := m.workload(c)
		if !ok {
			continue
		}
		if !slices.ContainsFunc(w.pod.Spec.Containers[0].Ports, func(p corev1.ContainerPort) bool { return p.Name == port }) {
			t.Errorf("Prometheus keeps ports named %q, which %s does not open", port, c)
		}
	}
}

// checkPrometheusRole: the service account may get, list and watch pods here, and nothing else.
func checkPrometheusRole(t *testing.T, m *manifest, sa string) {
	t.Helper()
	for _, rb := range m.roleBindings {
		if !slices.ContainsFunc(rb.Subjects, func(s rbacv1.Subject) bool { return s.Kind == "ServiceAccount" && s.Name == sa }) {
			continue
		}
		for _, r := range m.roles {
			if rb.RoleRef.Kind != "Role" || r.Name != rb.RoleRef.Name {
				continue
			}
			if len(r.Rules) != 1 || !slices.Equal(r.Rules[0].Resources, []string{"pods"}) || !slices.Equal(r.Rules[0].Verbs, []string{"get", "list", "watch"}) {
				t.Errorf("Role %s grants %+v, want get, list and watch on pods only", r.Name, r.Rules)
			}
			return
		}
	}
	t.Errorf("no Role bound to service account %s", sa)
}

// checkScrapersAdmitted: every component's NetworkPolicy lets the Prometheus pods reach its
// metrics port.
func checkScrapersAdmitted(t *testing.T, m *manifest, prom workload) {
	t.Helper()
	if len(m.netpols) == 0 {
		t.Fatal("values-dev.yaml renders no NetworkPolicy: nothing to check")
	}
	for _, np := range m.netpols {
		admitted := false
		for _, rule := range np.Spec.Ingress {
			for _, peer := range rule.From {
				if peer.PodSelector != nil && peer.NamespaceSelector == nil && selects(peer.PodSelector.MatchLabels, prom.pod.Labels) && slices.Contains(openedPorts(rule), "metrics") {
					admitted = true
				}
			}
		}
		if !admitted {
			t.Errorf("NetworkPolicy %s does not admit Prometheus to the metrics port", np.Name)
		}
	}
}

func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

// TestChartDevObservabilityValues: off by default; Grafana without a Prometheus of its own reads
// the one prometheusUrl names, and refuses to render with neither.
func TestChartDevObservabilityValues(t *testing.T) {
	m := render(t, testRelease, testNamespace, map[string]any{})
	for _, c := range []string{"grafana", "prometheus"} {
		if _, ok := m.workload(c); ok {
			t.Errorf("the default values render %s", c)
		}
	}
	ext := "http://kube-prometheus-stack-prometheus.monitoring:9090"
	m = render(t, testRelease, testNamespace, map[string]any{"jaeger": map[string]any{"enabled": true},
		"grafana": map[string]any{"server": map[string]any{"enabled": true, "prometheusUrl": ext}}})
	if _, ok := m.workload("prometheus"); ok {
		t.Error("a Prometheus is rendered though grafana.server.prometheusUrl names one")
	}
	w, _ := m.workload("grafana")
	var ds grafanaDatasources
	unmarshalStrict(t, "datasources", fileUnder(t, mountedConfigMapFiles(t, m, w), "/etc/grafana/provisioning/datasources/"), &ds)
	if !slices.ContainsFunc(ds.Datasources, func(d grafanaDatasource) bool {
		return d.Type == "prometheus" && d.URL == ext
	}) {
		t.Errorf("no Prometheus data source at %s: %+v", ext, ds.Datasources)
	}
	if _, err := renderRelease(t, testRelease, testNamespace, map[string]any{"grafana": map[string]any{"server": map[string]any{"enabled": true}}}); err == nil || !strings.Contains(err.Error(), "prometheus") {
		t.Errorf("Grafana without a Prometheus rendered (err %v)", err)
	}
}

func TestChartDevObservabilityRefusesBadValues(t *testing.T) {
	for _, tc := range []struct{ name, vals, want string }{
		{"scrape-interval-without-unit", `prometheus: {enabled: true, scrapeInterval: "15"}`, "scrapeInterval"},
		{"prometheus-url-without-scheme", `grafana: {server: {enabled: true, prometheusUrl: "prometheus:9090"}}`, "prometheusUrl"},
		{"unknown-grafana-server-key", `grafana: {server: {adminPassword: x}}`, "additional properties"},
		{"grafana-latest", `grafana: {server: {image: {tag: latest}}}`, "/grafana/server/image/tag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals, err := chartutil.ReadValues([]byte(tc.vals))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := renderRelease(t, testRelease, testNamespace, vals); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}
