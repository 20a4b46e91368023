package k8stest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"
)

// The release the promtool test files under testdata/alerts are written for: their synthetic
// series name its namespace and, as service_namespace, its fullname.
const (
	alertsRelease   = "prod"
	alertsNamespace = "events"
)

// alertCases are the value combinations whose rules promtool runs against synthetic series. The
// tuned case moves every threshold to where its test file's series sit between the default and
// the tuned value, so a threshold the chart ignored fails one of the two.
var alertCases = []struct {
	name, testFile string
	values         map[string]any
}{
	{"fleet-defaults", "fleet-defaults.yaml", map[string]any{
		"metrics": map[string]any{"prometheusRule": map[string]any{"enabled": true}},
	}},
	{"per-tenant-tuned", "per-tenant-tuned.yaml", map[string]any{
		"metrics": map[string]any{"tenantLabel": true, "prometheusRule": map[string]any{
			"enabled":     true,
			"alertLabels": map[string]any{"team": "platform", "severity": "ignored"},
			"alerts": map[string]any{
				"inboxOldestEvent": map[string]any{"thresholdSeconds": 300, "for": "1m", "classes": []any{
					map[string]any{"name": "realtime", "tenants": []any{"globex"}, "thresholdSeconds": 100, "severity": "page"},
				}},
				"eventsNotAcknowledged": map[string]any{"window": "5m", "for": "1m"},
				"deadLetters":           map[string]any{"threshold": 2, "window": "10m", "severity": "page"},
				"serverErrors":          map[string]any{"ratio": 0.004},
				"unavailable":           map[string]any{"ratio": 0.2},
				"dynamodbThrottled":     map[string]any{"ratio": 0.05},
				"dynamodbUnhealthy":     map[string]any{"for": "5m"},
				"podsNotReady":          map[string]any{"for": "3m"},
				"keyCacheMisses":        map[string]any{"ratio": 0.9, "minPerSecond": 1, "for": "5m"},
				"longPollSaturation":    map[string]any{"ratio": 0.5, "for": "1m"},
			},
		}},
	}},
}

// promtool is Debian's prometheus package's (CI installs it). Missing, the test fails: the
// alerts would otherwise ship untested.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install it (Debian: apt-get install prometheus) to test the alert rules")
	}
	return p
}

// TestAlertRulesWithPromtool renders the chart's PrometheusRule, writes its groups as a rule
// file, and runs promtool's rule checker and its unit tests (testdata/alerts) against it: every
// alert fires on the series that should fire it, stays silent on those that should not, and
// ignores another release's series.
func TestAlertRulesWithPromtool(t *testing.T) {
	bin := promtool(t)
	for _, tc := range alertCases {
		t.Run(tc.name, func(t *testing.T) {
			m := render(t, alertsRelease, alertsNamespace, tc.values)
			rule := m.prometheusRule(t)
			dir := t.TempDir()
			writeYAML(t, filepath.Join(dir, "rules.yaml"), rule.Spec)
			runPromtool(t, bin, dir, "check", "rules", "rules.yaml")

			// The unit tests compare annotations verbatim; they are checked below instead, so
			// that the test files hold what matters to a pager: when, and with which labels.
			bare := rule.Spec.DeepCopy()
			for g := range bare.Groups {
				for r := range bare.Groups[g].Rules {
					bare.Groups[g].Rules[r].Annotations = nil
				}
			}
			writeYAML(t, filepath.Join(dir, "bare-rules.yaml"), bare)
			tests, err := os.ReadFile(filepath.Join("testdata", "alerts", tc.testFile))
			if err != nil {
				t.Fatal(err)
			}
			checkEveryAlertTested(t, rule, string(tests))
			if err := os.WriteFile(filepath.Join(dir, "tests.yaml"), tests, 0o600); err != nil {
				t.Fatal(err)
			}
			runPromtool(t, bin, dir, "test", "rules", "tests.yaml")
		})
	}
}

func runPromtool(t *testing.T, bin, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func writeYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (m *manifest) prometheusRule(t *testing.T) *monitoringv1.PrometheusRule {
	t.Helper()
	if len(m.prometheusRules) != 1 {
		t.Fatalf("%d PrometheusRules rendered, want 1", len(m.prometheusRules))
	}
	return m.prometheusRules[0]
}

func alertsOf(r *monitoringv1.PrometheusRule) []monitoringv1.Rule {
	var out []monitoringv1.Rule
	for _, g := range r.Spec.Groups {
		for _, rule := range g.Rules {
			if rule.Alert != "" {
				out = append(out, rule)
			}
		}
	}
	return out
}

var testedAlert = regexp.MustCompile(`(?m)^\s*alertname:\s*(\S+)\s*$`)

// checkEveryAlertTested: a test file names every alert the rules hold, and no other.
func checkEveryAlertTested(t *testing.T, r *monitoringv1.PrometheusRule, tests string) {
	t.Helper()
	tested := map[string]bool{}
	for _, m := range testedAlert.FindAllStringSubmatch(tests, -1) {
		tested[m[1]] = true
	}
	held := map[string]bool{}
	for _, a := range alertsOf(r) {
		held[a.Alert] = true
	}
	for name := range held {
		if !tested[name] {
			t.Errorf("no promtool test for %s", name)
		}
		delete(tested, name)
	}
	for name := range tested {
		t.Errorf("the test file tests %s, which the rules do not hold", name)
	}
}

// TestAlertAnnotations: every alert has a severity, a summary, a description and a runbook
// link to a section of docs/runbooks.md that exists and says how to confirm the alert.
func TestAlertAnnotations(t *testing.T) {
	runbooks := string(readFile(t, "docs/runbooks.md"))
	for _, tc := range alertCases {
		t.Run(tc.name, func(t *testing.T) {
			m := render(t, alertsRelease, alertsNamespace, tc.values)
			base := m.str("metrics.prometheusRule.runbookURL")
			for _, a := range alertsOf(m.prometheusRule(t)) {
				if a.Labels["severity"] == "" || a.Labels["severity"] == "ignored" {
					t.Errorf("%s: severity %q", a.Alert, a.Labels["severity"])
				}
				if a.Labels["namespace"] != alertsNamespace {
					t.Errorf("%s: namespace label %q, want %q", a.Alert, a.Labels["namespace"], alertsNamespace)
				}
				for _, k := range []string{"summary", "description"} {
					if strings.TrimSpace(a.Annotations[k]) == "" {
						t.Errorf("%s: no %s", a.Alert, k)
					}
				}
				if want := base + "#" + strings.ToLower(a.Alert); a.Annotations["runbook_url"] != want {
					t.Errorf("%s: runbook_url %q, want %q", a.Alert, a.Annotations["runbook_url"], want)
				}
				section := runbookSection(runbooks, a.Alert)
				if section == "" {
					t.Errorf("docs/runbooks.md has no section \"## %s\"", a.Alert)
				} else if !strings.Contains(section, "```promql") {
					t.Errorf("docs/runbooks.md, %s: no query to confirm it with", a.Alert)
				}
			}
		})
	}
}

// runbookSection is the text under "## name" up to the next heading of that level.
func runbookSection(doc, name string) string {
	_, after, ok := strings.Cut(doc, "\n## "+name+"\n")
	if !ok {
		return ""
	}
	if i := strings.Index(after, "\n## "); i >= 0 {
		after = after[:i]
	}
	return after
}

// alertMetrics are the series the rules read beyond the dashboard's (exposedMetrics): the
// project's own, each held to its instrument like the dashboard's, and kube-state-metrics'.
var alertMetrics = []struct {
	prom, instrument string
}{
	{"trigger_inbox_oldest_event_age_seconds", "trigger.inbox.oldest_event_age"},
	{"trigger_inbox_long_poll_parked", "trigger.inbox.long_poll.parked"},
	{"trigger_inbox_long_poll_parked_limit", "trigger.inbox.long_poll.parked_limit"},
	{"trigger_dynamodb_healthy", "trigger.dynamodb.healthy"},
	{"kube_deployment_spec_replicas", ""},
	{"kube_deployment_status_replicas_available", ""},
}

// TestAlertMetricsExistInCode: every metric an alert reads is one the binaries expose (an
// instrument created under that name, which a test scrapes) or kube-state-metrics' own.
func TestAlertMetricsExistInCode(t *testing.T) {
	code, tests := goSources(t, "pkg", "services", "worker")
	known := map[string]bool{}
	for _, e := range exposedMetrics {
		for _, s := range e.series() {
			known[s] = true
		}
	}
	for _, a := range alertMetrics {
		known[a.prom] = true
		if a.instrument == "" {
			continue
		}
		if got := strings.ReplaceAll(a.instrument, ".", "_"); !strings.HasPrefix(a.prom, got) {
			t.Errorf("%s: instrument %q is exposed under another name", a.prom, a.instrument)
		}
		if !strings.Contains(code, strconv.Quote(a.instrument)) {
			t.Errorf("%s: no instrument %q in pkg/, services/ or worker/", a.prom, a.instrument)
		}
		if !strings.Contains(tests, a.prom) {
			t.Errorf("%s: no test scrapes /metrics for it", a.prom)
		}
	}
	used := map[string]bool{}
	for _, tc := range alertCases {
		m := render(t, alertsRelease, alertsNamespace, tc.values)
		for _, a := range alertsOf(m.prometheusRule(t)) {
			for _, name := range promMetrics(a.Expr.String()) {
				used[name] = true
				if !known[name] {
					t.Errorf("%s reads %s, which no binary exposes", a.Alert, name)
				}
			}
		}
	}
	for _, a := range alertMetrics {
		if !used[a.prom] {
			t.Errorf("%s is listed for the alerts but no alert reads it", a.prom)
		}
	}
	if !slices.Contains(keysOf(used), "target_info") {
		t.Error("no alert selects the release through target_info")
	}
}
