package k8stest

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// TestChartPodIdentityFromDownwardAPI: every container of the project's binaries learns its pod
// and namespace from the downward API, which pkg/telemetry turns into k8s.pod.name and
// k8s.namespace.name on every span and metric.
func TestChartPodIdentityFromDownwardAPI(t *testing.T) {
	checked := map[string]bool{}
	for name, m := range renderSets(t) {
		t.Run(name, func(t *testing.T) {
			for _, w := range m.workloads() {
				if _, ours := binaries[w.component]; !ours {
					continue
				}
				checked[w.component] = true
				for _, c := range w.pod.Spec.Containers {
					want := map[string]string{"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
					for _, e := range c.Env {
						path, ok := want[e.Name]
						if !ok {
							continue
						}
						if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != path {
							t.Errorf("%s/%s: %s must come from the downward API's %s", describe(w), c.Name, e.Name, path)
						}
						delete(want, e.Name)
					}
					for _, k := range keysOf(want) {
						t.Errorf("%s/%s: %s is not set", describe(w), c.Name, k)
					}
				}
			}
		})
	}
	for c := range binaries {
		if !checked[c] {
			t.Errorf("no value set renders %s: its pod identity goes unchecked", c)
		}
	}
}

// TestChartLeavesServiceNameToBinaries: service.name stays what each binary calls itself
// ("ingest", ...), which the dashboard and trace searches select on; service.namespace, one per
// release, tells releases apart.
func TestChartLeavesServiceNameToBinaries(t *testing.T) {
	for name, m := range renderSets(t) {
		t.Run(name, func(t *testing.T) {
			namespaces := map[string]bool{}
			for _, w := range m.workloads() {
				if _, ours := binaries[w.component]; !ours || w.component == "tables" {
					continue
				}
				env := m.resolveEnv(t, w)
				if v, ok := env["OTEL_SERVICE_NAME"]; ok {
					t.Errorf("%s: OTEL_SERVICE_NAME=%q replaces the binary's own service.name", describe(w), v)
				}
				attrs := resourceAttributes(env["OTEL_RESOURCE_ATTRIBUTES"])
				if v, ok := attrs["service.name"]; ok {
					t.Errorf("%s: OTEL_RESOURCE_ATTRIBUTES sets service.name=%q", describe(w), v)
				}
				namespaces[attrs["service.namespace"]] = true
			}
			if len(namespaces) != 1 || namespaces[""] {
				t.Errorf("service.namespace %v, want one value shared by the release's binaries", keysOf(namespaces))
			}
		})
	}
}

// resourceAttributes parses OTEL_RESOURCE_ATTRIBUTES (key=value,...).
func resourceAttributes(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

// TestChartScrapeAnnotations: each binary is discoverable by annotation, on the port and path it
// really serves /metrics at: its metrics port, the one networkPolicy.metricsFrom reaches.
func TestChartScrapeAnnotations(t *testing.T) {
	if src := string(readFile(t, "pkg/httpx/telemetry.go")); !strings.Contains(src, `case "/metrics":`) {
		t.Fatal(`pkg/httpx no longer serves "/metrics": update the chart's prometheus.io/path`)
	}
	if src := string(readFile(t, "worker/runner/worker.go")); !strings.Contains(src, `"GET /metrics"`) {
		t.Fatal(`the worker no longer serves "GET /metrics": update the chart's prometheus.io/path`)
	}
	annotated := map[string]bool{}
	check := func(t *testing.T, m *manifest, enabled bool) {
		t.Helper()
		for _, w := range m.workloads() {
			bin, ours := binaries[w.component]
			if !ours || w.kind != "Deployment" {
				continue
			}
			ann := w.pod.Annotations
			if !enabled {
				for k := range ann {
					if strings.HasPrefix(k, "prometheus.io/") {
						t.Errorf("%s: %s although scrape annotations are off", describe(w), k)
					}
				}
				continue
			}
			port := metricsPort(t, m, w, bin)
			annotated[w.component] = true
			want := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": port, "prometheus.io/path": "/metrics"}
			for k, v := range want {
				if ann[k] != v {
					t.Errorf("%s: %s=%q, want %q", describe(w), k, ann[k], v)
				}
			}
		}
	}
	for name, m := range renderSets(t) {
		t.Run(name, func(t *testing.T) { check(t, m, m.value("metrics.scrapeAnnotations") == true) })
	}
	for _, c := range serviceComponents {
		if !annotated[c] {
			t.Errorf("no value set annotates %s for scraping", c)
		}
	}
	t.Run("disabled", func(t *testing.T) {
		check(t, render(t, testRelease, testNamespace, withWorker(map[string]any{
			"metrics": map[string]any{"scrapeAnnotations": false},
		})), false)
	})
	t.Run("pod-annotations-win", func(t *testing.T) {
		m := render(t, testRelease, testNamespace, map[string]any{"components": map[string]any{"ingest": map[string]any{
			"podAnnotations": map[string]any{"prometheus.io/scrape": "false"},
		}}})
		w, _ := m.workload("ingest")
		if got := w.pod.Annotations["prometheus.io/scrape"]; got != "false" {
			t.Errorf("prometheus.io/scrape=%q, want the podAnnotations value", got)
		}
	})
}

// metricsPort is the port a binary serves /metrics on for scrapers, from the settings it starts
// with (TRIGGER_METRICS_ADDR). The pod must declare it as its metrics port.
func metricsPort(t *testing.T, m *manifest, w workload, bin binary) string {
	t.Helper()
	addr, _ := fieldValue(bin.fields, m.resolveEnv(t, w), "TRIGGER_METRICS_ADDR")
	if addr == "" {
		t.Errorf("%s: TRIGGER_METRICS_ADDR is empty: /metrics has no port of its own", describe(w))
		return ""
	}
	port := listenPort(t, describe(w), "TRIGGER_METRICS_ADDR", addr)
	if !slices.ContainsFunc(w.pod.Spec.Containers[0].Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" && int(p.ContainerPort) == port }) {
		t.Errorf("%s: TRIGGER_METRICS_ADDR=%s is not the container port named metrics", describe(w), addr)
	}
	return strconv.Itoa(port)
}

// withWorker adds to vals what running the worker takes: a tenant key to poll with.
func withWorker(vals map[string]any) map[string]any {
	components, _ := vals["components"].(map[string]any)
	if components == nil {
		components = map[string]any{}
		vals["components"] = components
	}
	wv, _ := components["worker"].(map[string]any)
	if wv == nil {
		wv = map[string]any{}
		components["worker"] = wv
	}
	wv["enabled"] = true
	vals["secrets"] = map[string]any{"workerApiKeys": []any{"tenant_acme_live_test"}}
	return vals
}

// TestChartMetricsPortFollowsValues: components.<name>.metricsPort is where each binary listens
// for scrapers, the pod's metrics port and its scrape annotation; the worker is also probed there.
func TestChartMetricsPortFollowsValues(t *testing.T) {
	components := map[string]any{}
	for _, c := range serviceComponents {
		components[c] = map[string]any{"metricsPort": 9191}
	}
	m := render(t, testRelease, testNamespace, withWorker(map[string]any{"components": components}))
	for _, name := range serviceComponents {
		w, ok := m.workload(name)
		if !ok {
			t.Errorf("%s is not rendered", name)
			continue
		}
		c := w.pod.Spec.Containers[0]
		if got := m.resolveEnv(t, w)["TRIGGER_METRICS_ADDR"]; got != ":9191" {
			t.Errorf("%s: TRIGGER_METRICS_ADDR=%q, want :9191", name, got)
		}
		if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" && p.ContainerPort == 9191 }) {
			t.Errorf("%s: container ports %+v, want metrics on 9191", name, c.Ports)
		}
		if got := w.pod.Annotations["prometheus.io/port"]; got != "9191" {
			t.Errorf("%s: prometheus.io/port=%q, want 9191", name, got)
		}
		if name == "worker" {
			checkHTTPProbe(t, "worker liveness", c.LivenessProbe, "/livez", "metrics")
		}
	}
}

// TestChartTenantLabelIsOptIn: metrics.tenantLabel turns the label on in the three binaries that
// count events, and only there; by default no binary gets the setting.
func TestChartTenantLabelIsOptIn(t *testing.T) {
	for _, on := range []bool{false, true} {
		m := render(t, testRelease, testNamespace, withWorker(map[string]any{"metrics": map[string]any{"tenantLabel": on}}))
		for _, name := range serviceComponents {
			w, ok := m.workload(name)
			if !ok {
				t.Fatalf("%s is not rendered", name)
			}
			got, set := m.resolveEnv(t, w)["TRIGGER_METRICS_TENANT_LABEL"]
			want := on && name != "keys-admin"
			if set != want || (want && got != "true") {
				t.Errorf("tenantLabel %v: %s has TRIGGER_METRICS_TENANT_LABEL=%q (set %v)", on, name, got, set)
			}
		}
	}
}

// TestChartNetworkPolicyAdmitsScrapersOnlyToMetrics: networkPolicy.metricsFrom reaches every
// binary on its metrics port and nothing else, so scrapers never reach an API (keys-admin's
// included); with that list empty, no rule opens the metrics port at all.
func TestChartNetworkPolicyAdmitsScrapersOnlyToMetrics(t *testing.T) {
	scraper := map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "monitoring"}}}
	for _, tc := range []struct {
		name string
		from []any
	}{
		{"metrics-from", []any{scraper}},
		{"no-metrics-from", []any{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := render(t, testRelease, testNamespace, withWorker(map[string]any{
				"networkPolicy": map[string]any{"enabled": true, "metricsFrom": tc.from},
			}))
			policies := map[string]*networkingv1.NetworkPolicy{}
			for _, p := range m.netpols {
				policies[p.Spec.PodSelector.MatchLabels[labelComponent]] = p
			}
			for _, c := range serviceComponents {
				np := policies[c]
				if np == nil {
					t.Errorf("no NetworkPolicy for %s", c)
					continue
				}
				scrapers := []any{} // whom the metrics port admits
				for _, rule := range np.Spec.Ingress {
					opened := openedPorts(rule)
					// An empty from admits every source, scrapers included.
					admitsScraper := len(rule.From) == 0
					for _, p := range rule.From {
						if reflect.DeepEqual(normalize(t, p), normalize(t, scraper)) {
							admitsScraper = true
						}
					}
					if admitsScraper && !slices.Equal(opened, []string{"metrics"}) {
						t.Errorf("%s: scrapers are admitted to %q, want only the metrics port", c, opened)
					}
					if slices.Contains(opened, "metrics") {
						if !slices.Equal(opened, []string{"metrics"}) {
							t.Errorf("%s: the metrics port is opened together with %q", c, opened)
						}
						if len(rule.From) == 0 {
							scrapers = append(scrapers, "every source")
						}
						for _, p := range rule.From {
							scrapers = append(scrapers, p)
						}
					}
				}
				if got, want := normalize(t, scrapers), normalize(t, tc.from); !reflect.DeepEqual(got, want) {
					t.Errorf("%s: the metrics port admits %v, want %v", c, got, want)
				}
				if c == "worker" && len(tc.from) == 0 && len(np.Spec.Ingress) != 0 {
					t.Errorf("worker: %d ingress rules with no scrapers to admit, want none", len(np.Spec.Ingress))
				}
			}
		})
	}
}

// exposedMetric is a series the dashboard may query, named as Prometheus scrapes it.
type exposedMetric struct {
	prom string
	// instrument is the OTel instrument the project's code creates; "" when a library names it.
	instrument string
	histogram  bool
}

// exposedMetrics is the list the dashboard is held to. TestDashboardMetricsExistInCode ties it to
// the Go code, so a renamed instrument fails here instead of leaving an empty panel.
var exposedMetrics = []exposedMetric{
	{prom: "trigger_events_ingested_total", instrument: "trigger.events.ingested"},
	{prom: "trigger_events_delivered_total", instrument: "trigger.events.delivered"},
	{prom: "trigger_events_acknowledged_total", instrument: "trigger.events.acknowledged"},
	{prom: "trigger_events_nacked_total", instrument: "trigger.events.nacked"},
	{prom: "trigger_events_dead_total", instrument: "trigger.events.dead"},
	{prom: "trigger_events_time_in_inbox_seconds", instrument: "trigger.events.time_in_inbox", histogram: true},
	{prom: "trigger_inbox_long_poll_duration_seconds", instrument: "trigger.inbox.long_poll.duration", histogram: true},
	{prom: "trigger_auth_key_cache_hits_total", instrument: "trigger.auth.key_cache.hits"},
	{prom: "trigger_auth_key_cache_misses_total", instrument: "trigger.auth.key_cache.misses"},
	{prom: "trigger_worker_events_processed_total", instrument: "trigger.worker.events.processed"},
	{prom: "trigger_worker_process_duration_seconds", instrument: "trigger.worker.process.duration", histogram: true},
	{prom: "trigger_worker_events_settled_total", instrument: "trigger.worker.events.settled"},
	{prom: "trigger_dynamodb_call_duration_seconds", instrument: "trigger.dynamodb.call.duration", histogram: true},
	{prom: "trigger_dynamodb_consumed_capacity_total", instrument: "trigger.dynamodb.consumed_capacity"},
	{prom: "trigger_inbox_long_poll_wakeups_total", instrument: "trigger.inbox.long_poll.wakeups"},
	{prom: "trigger_notify_sent_total", instrument: "trigger.notify.sent"},
	{prom: "trigger_notify_dropped_total", instrument: "trigger.notify.dropped"},
	{prom: "trigger_notify_received_total", instrument: "trigger.notify.received"},
	// otelhttp's http.server.request.duration, which pkg/httpx wraps every service in.
	{prom: "http_server_request_duration_seconds", histogram: true},
	// otelhttp's http.client.request.duration, which the worker's client is wrapped in, with the
	// trigger.operation label it adds per call.
	{prom: "http_client_request_duration_seconds", histogram: true},
	// The Prometheus exporter's resource series: service_name, service_namespace and
	// k8s_namespace_name, which the dashboard joins on.
	{prom: "target_info"},
}

// series is every name a metric appears under: a histogram's _bucket, _sum and _count.
func (e exposedMetric) series() []string {
	if e.histogram {
		return []string{e.prom + "_bucket", e.prom + "_sum", e.prom + "_count"}
	}
	return []string{e.prom}
}

// TestDashboardMetricsExistInCode checks each listed name against the code read from disk: the
// instrument is created under that name (counters gain _total, second histograms _seconds), and a
// test that scrapes /metrics asserts the exposed name.
func TestDashboardMetricsExistInCode(t *testing.T) {
	code, tests := goSources(t, "pkg", "services", "worker")
	for _, e := range exposedMetrics {
		if e.instrument != "" {
			suffix := "_total"
			if e.histogram {
				suffix = "_seconds"
			}
			if want := strings.ReplaceAll(e.instrument, ".", "_") + suffix; want != e.prom {
				t.Errorf("%s: instrument %q is exposed as %s", e.prom, e.instrument, want)
			}
			if !strings.Contains(code, strconv.Quote(e.instrument)) {
				t.Errorf("%s: no instrument %q in pkg/, services/ or worker/", e.prom, e.instrument)
			}
		}
		if e.prom == "target_info" {
			// No test scrapes it by name; the exporter writes it unless told not to.
			if strings.Contains(code, "WithoutTargetInfo") {
				t.Error("target_info is switched off, yet the dashboard joins on it")
			}
			continue
		}
		if !slices.ContainsFunc(append(e.series(), e.prom), func(s string) bool { return strings.Contains(tests, s) }) {
			t.Errorf("%s: no test scrapes /metrics for it", e.prom)
		}
	}
}

// goSources concatenates the Go files under the given repository folders: code, then tests.
func goSources(t *testing.T, dirs ...string) (code, tests string) {
	t.Helper()
	var c, ts strings.Builder
	for _, d := range dirs {
		err := filepath.WalkDir(filepath.Join(repoRoot, d), func(path string, de fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if de.IsDir() {
				if n := de.Name(); n == "testdata" || n == "vendor" || n == "node_modules" || strings.HasPrefix(n, ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if strings.HasSuffix(path, "_test.go") {
				ts.Write(b)
			} else {
				c.Write(b)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("read %s: %v", d, err)
		}
	}
	return c.String(), ts.String()
}

// The parts of a Grafana dashboard the tests read.
type (
	dashboard struct {
		UID           string `json:"uid"`
		Title         string `json:"title"`
		SchemaVersion int    `json:"schemaVersion"`
		Templating    struct {
			List []dashVar `json:"list"`
		} `json:"templating"`
		Panels []dashPanel `json:"panels"`
	}
	dsRef struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	dashVar struct {
		Name       string          `json:"name"`
		Type       string          `json:"type"`
		Query      json.RawMessage `json:"query"`
		Datasource *dsRef          `json:"datasource"`
		Current    struct {
			Value any `json:"value"`
		} `json:"current"`
	}
	dashPanel struct {
		ID         int                      `json:"id"`
		Type       string                   `json:"type"`
		Title      string                   `json:"title"`
		Datasource *dsRef                   `json:"datasource"`
		GridPos    struct{ X, Y, W, H int } `json:"gridPos"`
		Targets    []dashTarget             `json:"targets"`
		Panels     []dashPanel              `json:"panels"` // a collapsed row's
	}
	dashTarget struct {
		Datasource *dsRef `json:"datasource"`
		Expr       string `json:"expr"`  // Prometheus
		Query      string `json:"query"` // Tempo (TraceQL)
		RefID      string `json:"refId"`
		Exemplar   bool   `json:"exemplar"` // Prometheus: fetch exemplars too
	}
)

// The datasources every query goes through: the dashboard's variables, so it works with any.
var dashDatasources = map[string]string{"prometheus": "${prometheus}", "tempo": "${tempo}"}

// dashboardOf finds the ConfigMap the sidecar would load, by the label the values name.
func (m *manifest) dashboardOf(t *testing.T) (*corev1.ConfigMap, dashboard) {
	t.Helper()
	label, value := m.str("grafana.dashboard.label"), m.str("grafana.dashboard.labelValue")
	var found []*corev1.ConfigMap
	for _, cm := range m.configMaps {
		if v, ok := cm.Labels[label]; ok && v == value {
			found = append(found, cm)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d ConfigMaps labelled %s=%s, want 1", len(found), label, value)
	}
	cm := found[0]
	if len(cm.Data) != 1 {
		t.Fatalf("ConfigMap %s holds %v, want one dashboard file", cm.Name, keysOf(cm.Data))
	}
	var d dashboard
	for k, v := range cm.Data {
		if !strings.HasSuffix(k, ".json") {
			t.Errorf("ConfigMap %s: key %s: the sidecar writes it as a file Grafana loads only as .json", cm.Name, k)
		}
		if err := json.Unmarshal([]byte(v), &d); err != nil {
			t.Fatalf("ConfigMap %s: %s is not JSON: %v", cm.Name, k, err)
		}
	}
	return cm, d
}

// TestChartGrafanaDashboard checks the dashboard each value set ships: a valid Grafana model, a
// trace search by event id in Tempo, and Prometheus queries over metrics the binaries expose.
func TestChartGrafanaDashboard(t *testing.T) {
	for name, m := range renderSets(t) {
		t.Run(name, func(t *testing.T) {
			if !m.enabled("grafana.dashboard") {
				t.Skip("dashboard disabled")
			}
			_, d := m.dashboardOf(t)
			checkDashboardModel(t, d)
			vars := map[string]dashVar{}
			for _, v := range d.Templating.List {
				vars[v.Name] = v
			}
			checkDashboardVariables(t, m, vars)
			checkTempoQueries(t, d)
			checkPrometheusQueries(t, d, vars)
		})
	}
}

func checkDashboardModel(t *testing.T, d dashboard) {
	t.Helper()
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{1,40}$`).MatchString(d.UID) {
		t.Errorf("uid %q: Grafana wants 1-40 letters, digits, - or _", d.UID)
	}
	if d.Title == "" {
		t.Error("no title")
	}
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion %d: older models are migrated on load, and may lose settings", d.SchemaVersion)
	}
	ids := map[int]bool{}
	for _, p := range flattenPanels(d.Panels) {
		if p.ID == 0 || ids[p.ID] {
			t.Errorf("panel %q: id %d is missing or repeated", p.Title, p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v is outside the 24-column grid", p.Title, g)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		if p.Datasource == nil || dashDatasources[p.Datasource.Type] != p.Datasource.UID {
			t.Errorf("panel %q: datasource %+v, want one of the datasource variables", p.Title, p.Datasource)
		}
		for _, tg := range p.Targets {
			if tg.RefID == "" {
				t.Errorf("panel %q: a query without refId", p.Title)
			}
			if tg.Datasource == nil || p.Datasource == nil || *tg.Datasource != *p.Datasource {
				t.Errorf("panel %q, query %s: datasource %+v differs from the panel's", p.Title, tg.RefID, tg.Datasource)
			}
		}
	}
}

func flattenPanels(ps []dashPanel) []dashPanel {
	var out []dashPanel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flattenPanels(p.Panels)...)
	}
	return out
}

// checkDashboardVariables: datasource pickers for both backends, an event id box, and the
// release the dashboard opens on is the one whose binaries report it.
func checkDashboardVariables(t *testing.T, m *manifest, vars map[string]dashVar) {
	t.Helper()
	for name := range dashDatasources {
		v, ok := vars[name]
		if !ok || v.Type != "datasource" || string(v.Query) != strconv.Quote(name) {
			t.Errorf("no datasource variable %q of type %s", name, name)
			continue
		}
		if want := m.str("grafana.dashboard.datasources." + name); want != "" && v.Current.Value != want {
			t.Errorf("variable %s opens on %v, want %q from values", name, v.Current.Value, want)
		}
	}
	if v, ok := vars["event_id"]; !ok || v.Type != "textbox" {
		t.Errorf("no textbox variable event_id (found: %t, type %q)", ok, v.Type)
	}
	w, ok := m.workload("ingest")
	if !ok {
		t.Fatal("ingest is not rendered")
	}
	env := m.resolveEnv(t, w)
	want := map[string]string{
		"namespace": m.namespace, // what POD_NAMESPACE yields
		"release":   resourceAttributes(env["OTEL_RESOURCE_ATTRIBUTES"])["service.namespace"],
	}
	for name, value := range want {
		if v := vars[name]; v.Current.Value != value {
			t.Errorf("variable %s opens on %v, want %q", name, v.Current.Value, value)
		}
	}
}

var (
	traceQLEventID  = regexp.MustCompile(`\$\{?event_id\b`)
	traceQLSpanName = regexp.MustCompile(`(?:^|[^.\w])name\s*=\s*"([^"]*)"`) // the intrinsic, not resource.*.name
)

// checkTempoQueries: one query finds the event by the attribute the binaries put on its spans,
// and any span name a query selects is one the binaries create.
func checkTempoQueries(t *testing.T, d dashboard) {
	t.Helper()
	idAttr := string(telemetry.MessageID("").Key)
	spans := []string{telemetry.SpanPublish, telemetry.SpanReceive, telemetry.SpanSettle}
	byEvent := false
	for _, p := range flattenPanels(d.Panels) {
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.Type != "tempo" {
				continue
			}
			if strings.Contains(tg.Query, "span."+idAttr) && traceQLEventID.MatchString(tg.Query) {
				byEvent = true
			}
			for _, sm := range traceQLSpanName.FindAllStringSubmatch(tg.Query, -1) {
				if !slices.Contains(spans, sm[1]) {
					t.Errorf("panel %q searches spans named %q; the binaries name theirs %q", p.Title, sm[1], spans)
				}
			}
		}
	}
	if !byEvent {
		t.Errorf("no Tempo query selects span.%s by $event_id", idAttr)
	}
}

// checkPrometheusQueries: every metric a query or variable names is exposed by the binaries,
// every exposed metric is on the dashboard, and each panel stays within one release.
func checkPrometheusQueries(t *testing.T, d dashboard, vars map[string]dashVar) {
	t.Helper()
	known := map[string]string{}
	for _, e := range exposedMetrics {
		for _, s := range e.series() {
			known[s] = e.prom
		}
	}
	used := map[string]bool{}
	checkExpr := func(where, expr string) {
		for _, name := range promMetrics(expr) {
			prom, ok := known[name]
			if !ok {
				t.Errorf("%s queries %s, which no binary exposes (see exposedMetrics)", where, name)
			}
			used[prom] = true
		}
	}
	for _, p := range flattenPanels(d.Panels) {
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.Type != "prometheus" {
				continue
			}
			checkExpr("panel "+strconv.Quote(p.Title), tg.Expr)
			if !strings.Contains(tg.Expr, "$release") || !strings.Contains(tg.Expr, "$namespace") {
				t.Errorf("panel %q, query %s: not limited to $namespace and $release", p.Title, tg.RefID)
			}
		}
	}
	for _, v := range vars {
		if v.Type != "query" || v.Datasource == nil || v.Datasource.Type != "prometheus" {
			continue
		}
		q := variableQuery(t, v)
		if sel, ok := strings.CutPrefix(q, "label_values("); ok {
			if i := strings.LastIndex(sel, ","); i >= 0 {
				q = sel[:i] // the selector; the label after it is no metric
			}
		}
		checkExpr("variable "+v.Name, q)
	}
	for _, e := range exposedMetrics {
		if !used[e.prom] {
			t.Errorf("%s is exposed but on no panel", e.prom)
		}
	}
}

// variableQuery reads a query variable's query: a string in older models, an object since.
func variableQuery(t *testing.T, v dashVar) string {
	t.Helper()
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(v.Query, &o); err != nil || o.Query == "" {
		t.Errorf("variable %s: unreadable query %s", v.Name, v.Query)
	}
	return o.Query
}

var (
	promQuoted   = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promKeywords = map[string]bool{
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"bool": true, "and": true, "or": true, "unless": true, "offset": true, "atan2": true, "inf": true, "nan": true,
	}
)

// promMetrics lists the metric names a PromQL expression selects: what is left once strings,
// label matchers, ranges, grouping labels, functions, keywords and Grafana variables are removed.
func promMetrics(expr string) []string {
	e := promQuoted.ReplaceAllString(expr, `""`)
	e = promMatchers.ReplaceAllString(e, " ")
	e = promRanges.ReplaceAllString(e, " ")
	e = promGrouping.ReplaceAllString(e, " ")
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(e, -1) {
		name := e[loc[0]:loc[1]]
		if strings.HasPrefix(strings.TrimLeft(e[loc[1]:], " \t\n"), "(") || promKeywords[strings.ToLower(name)] {
			continue // a function or an operator
		}
		if loc[0] > 0 && strings.ContainsRune("$0123456789.", rune(e[loc[0]-1])) {
			continue // a variable, or an exponent or unit of a number
		}
		out = append(out, name)
	}
	return out
}

func TestPromMetrics(t *testing.T) {
	cases := []struct {
		name, expr string
		want       []string
	}{
		{"plain", `up`, []string{"up"}},
		{"matchers-and-range", `rate(a_total{x="y}z", q=~"5.."}[$__rate_interval])`, []string{"a_total"}},
		{"join", `sum by (le, service_name) (rate(h_bucket[5m]) * on (job, instance) group_left (service_name) target_info{a="$release"})`,
			[]string{"h_bucket", "target_info"}},
		{"quantile-and-keywords", `histogram_quantile(0.99, x) > bool 1e3 or y offset 5m unless z`, []string{"x", "y", "z"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := promMetrics(tc.expr); !slices.Equal(got, tc.want) {
				t.Errorf("promMetrics(%q) = %q, want %q", tc.expr, got, tc.want)
			}
		})
	}
}

// TestChartGrafanaDashboardValues: the sidecar label, folder and datasources follow the values,
// and disabling the dashboard removes its ConfigMap.
func TestChartGrafanaDashboardValues(t *testing.T) {
	t.Run("custom", func(t *testing.T) {
		m := render(t, testRelease, testNamespace, map[string]any{"grafana": map[string]any{"dashboard": map[string]any{
			"label": "example.com/dashboard", "labelValue": "trigger", "folder": "Event APIs",
			"folderAnnotation": "k8s-sidecar-target-directory",
			"datasources":      map[string]any{"prometheus": "prom-eu"},
		}}})
		cm, d := m.dashboardOf(t)
		if got := cm.Annotations["k8s-sidecar-target-directory"]; got != "Event APIs" {
			t.Errorf("folder annotation %q, want %q", got, "Event APIs")
		}
		vars := map[string]dashVar{}
		for _, v := range d.Templating.List {
			vars[v.Name] = v
		}
		if got := vars["prometheus"].Current.Value; got != "prom-eu" {
			t.Errorf("prometheus variable opens on %v, want prom-eu", got)
		}
		if got := vars["tempo"].Current.Value; got != nil {
			t.Errorf("tempo variable opens on %v, want Grafana's choice", got)
		}
	})
	t.Run("no-folder-no-annotation", func(t *testing.T) {
		cm, _ := render(t, testRelease, testNamespace, map[string]any{}).dashboardOf(t)
		if len(cm.Annotations) != 0 {
			t.Errorf("annotations %v without a folder", cm.Annotations)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		m := render(t, testRelease, testNamespace, map[string]any{"grafana": map[string]any{"dashboard": map[string]any{"enabled": false}}})
		for _, cm := range m.configMaps {
			if _, ok := cm.Labels[m.str("grafana.dashboard.label")]; ok {
				t.Errorf("ConfigMap %s still carries the sidecar label", cm.Name)
			}
			for k := range cm.Data {
				if strings.HasSuffix(k, ".json") {
					t.Errorf("ConfigMap %s still holds %s", cm.Name, k)
				}
			}
		}
		if strings.Contains(m.notes, "dashboard") {
			t.Errorf("NOTES.txt mentions a dashboard that is not installed:\n%s", m.notes)
		}
	})
}

// TestChartGrafanaDashboardPerRelease: two releases in one namespace ship two dashboards, which
// neither Grafana (uid, title) nor the sidecar's folder (file name) may merge into one.
func TestChartGrafanaDashboardPerRelease(t *testing.T) {
	seen := map[string]string{}
	for _, rel := range []string{"blue", "green"} {
		cm, d := render(t, rel, testNamespace, map[string]any{}).dashboardOf(t)
		for _, k := range append([]string{"uid " + d.UID, "title " + d.Title}, keysOf(cm.Data)...) {
			if prev, dup := seen[k]; dup {
				t.Errorf("releases %s and %s share %s", prev, rel, k)
			}
			seen[k] = rel
		}
	}
}
