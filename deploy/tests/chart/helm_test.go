package k8stest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/client-go/kubernetes/scheme"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

const (
	chartDir = "../../../charts/trigger-api"
	repoRoot = "../../.."

	// The oldest Kubernetes the chart declares (Chart.yaml kubeVersion): preStop sleep needs 1.30.
	// Without it the SDK would assume v1.20, which only a helm binary's build flags correct.
	kubeVersion = "v1.30.0"

	labelInstance  = "app.kubernetes.io/instance"
	labelComponent = "app.kubernetes.io/component"
	roleARNKey     = "eks.amazonaws.com/role-arn"
)

// valueSet is one combination the chart must render: the defaults, the dev values or a ci/ file.
type valueSet struct {
	name string
	file string // empty: chart defaults only
}

func valueSets(t *testing.T) []valueSet {
	t.Helper()
	sets := []valueSet{{name: "default"}, {name: "values-dev.yaml", file: filepath.Join(chartDir, "values-dev.yaml")}}
	ci, err := filepath.Glob(filepath.Join(chartDir, "ci", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Guards against a moved directory silently shrinking the matrix to two sets.
	if len(ci) < 3 {
		t.Fatalf("want at least 3 value sets under ci/, found %v", ci)
	}
	sort.Strings(ci)
	for _, f := range ci {
		sets = append(sets, valueSet{name: "ci/" + filepath.Base(f), file: f})
	}
	return sets
}

func (vs valueSet) values(t *testing.T) map[string]any {
	t.Helper()
	if vs.file == "" {
		return map[string]any{}
	}
	v, err := chartutil.ReadValuesFile(vs.file)
	if err != nil {
		t.Fatalf("%s: %v", vs.name, err)
	}
	return v.AsMap()
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return c
}

// renderRelease is `helm install --dry-run=server` into an empty namespace, through the SDK: the
// templates' lookups reach a fake cluster holding nothing, and the values are validated against
// values.schema.json.
func renderRelease(t *testing.T, name, namespace string, vals map[string]any) (*release.Release, error) {
	t.Helper()
	return installOn(t, newFakeCluster(t), name, namespace, vals)
}

// renderTemplate is `helm template`, as Argo CD and the Tiltfile render: no cluster to look
// anything up in.
func renderTemplate(t *testing.T, name, namespace string, vals map[string]any) (*release.Release, error) {
	t.Helper()
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.ClientOnly = true
	install.DryRun = true
	install.Replace = true
	install.ReleaseName = name
	install.Namespace = namespace
	install.KubeVersion = kv
	return install.Run(loadChart(t), vals)
}

// manifest is one rendered release, every object decoded into its client-go type.
type manifest struct {
	release, namespace string
	values             chartutil.Values // chart defaults coalesced with the set's values
	notes              string

	deployments     []*appsv1.Deployment
	jobs            []*batchv1.Job
	pods            []*corev1.Pod // hooks: helm test
	services        []*corev1.Service
	serviceAccounts []*corev1.ServiceAccount
	configMaps      []*corev1.ConfigMap
	secrets         []*corev1.Secret
	ingresses       []*networkingv1.Ingress
	httpRoutes      []*gatewayv1.HTTPRoute
	hpas            []*autoscalingv2.HorizontalPodAutoscaler
	pdbs            []*policyv1.PodDisruptionBudget
	netpols         []*networkingv1.NetworkPolicy
	roles           []*rbacv1.Role
	roleBindings    []*rbacv1.RoleBinding
	podMonitors     []*monitoringv1.PodMonitor
	prometheusRules []*monitoringv1.PrometheusRule
}

// strictYAML decodes the kinds client-go knows plus the Gateway API's and the Prometheus
// Operator's, refusing unknown fields: a field those APIs do not have fails the render.
var strictYAML = func() *json.Serializer {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{scheme.AddToScheme, gatewayv1.Install, monitoringv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return json.NewSerializerWithOptions(json.DefaultMetaFactory, s, s, json.SerializerOptions{Yaml: true, Strict: true})
}()

func render(t *testing.T, release, namespace string, vals map[string]any) *manifest {
	t.Helper()
	return decodeRelease(t, release, namespace, vals, renderRelease)
}

// renderOffline is render as `helm template` does it, with no cluster to look anything up in.
func renderOffline(t *testing.T, release, namespace string, vals map[string]any) *manifest {
	t.Helper()
	return decodeRelease(t, release, namespace, vals, renderTemplate)
}

func decodeRelease(t *testing.T, name, namespace string, vals map[string]any,
	renderer func(*testing.T, string, string, map[string]any) (*release.Release, error)) *manifest {
	t.Helper()
	rel, err := renderer(t, name, namespace, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	coalesced, err := chartutil.CoalesceValues(loadChart(t), vals)
	if err != nil {
		t.Fatal(err)
	}
	m := &manifest{release: name, namespace: namespace, values: coalesced, notes: rel.Info.Notes}
	docs := []string{}
	split := releaseutil.SplitManifests(rel.Manifest)
	keys := make([]string, 0, len(split))
	for k := range split {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		docs = append(docs, split[k])
	}
	for _, h := range rel.Hooks {
		docs = append(docs, h.Manifest)
	}
	for _, doc := range docs {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		obj, _, err := strictYAML.Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("strict decode: %v\n%s", err, doc)
		}
		m.add(t, obj)
	}
	return m
}

func (m *manifest) add(t *testing.T, obj runtime.Object) {
	t.Helper()
	meta, ok := obj.(metav1.Object)
	if !ok {
		t.Fatalf("%T has no object metadata", obj)
	}
	if meta.GetNamespace() != m.namespace {
		t.Errorf("%T %s: namespace %q, want the release namespace %q", obj, meta.GetName(), meta.GetNamespace(), m.namespace)
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		m.deployments = append(m.deployments, o)
	case *batchv1.Job:
		m.jobs = append(m.jobs, o)
	case *corev1.Pod:
		m.pods = append(m.pods, o)
	case *corev1.Service:
		m.services = append(m.services, o)
	case *corev1.ServiceAccount:
		m.serviceAccounts = append(m.serviceAccounts, o)
	case *corev1.ConfigMap:
		m.configMaps = append(m.configMaps, o)
	case *corev1.Secret:
		m.secrets = append(m.secrets, o)
	case *networkingv1.Ingress:
		m.ingresses = append(m.ingresses, o)
	case *gatewayv1.HTTPRoute:
		m.httpRoutes = append(m.httpRoutes, o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		m.hpas = append(m.hpas, o)
	case *policyv1.PodDisruptionBudget:
		m.pdbs = append(m.pdbs, o)
	case *networkingv1.NetworkPolicy:
		m.netpols = append(m.netpols, o)
	case *rbacv1.Role:
		m.roles = append(m.roles, o)
	case *rbacv1.RoleBinding:
		m.roleBindings = append(m.roleBindings, o)
	case *monitoringv1.PodMonitor:
		m.podMonitors = append(m.podMonitors, o)
	case *monitoringv1.PrometheusRule:
		m.prometheusRules = append(m.prometheusRules, o)
	default:
		// A new kind needs its own assertions before the chart may render it.
		t.Fatalf("unexpected kind %T (%s)", obj, meta.GetName())
	}
}

// workload is a Deployment or a Job: anything that runs pods.
type workload struct {
	kind, name string
	component  string
	pod        *corev1.PodTemplateSpec
}

func (m *manifest) workloads() []workload {
	var out []workload
	for _, d := range m.deployments {
		out = append(out, workload{"Deployment", d.Name, d.Spec.Template.Labels[labelComponent], &d.Spec.Template})
	}
	for _, j := range m.jobs {
		out = append(out, workload{"Job", j.Name, j.Spec.Template.Labels[labelComponent], &j.Spec.Template})
	}
	for _, p := range m.pods {
		out = append(out, workload{"Pod", p.Name, p.Labels[labelComponent], &corev1.PodTemplateSpec{ObjectMeta: p.ObjectMeta, Spec: p.Spec}})
	}
	return out
}

func (m *manifest) workload(component string) (workload, bool) {
	for _, w := range m.workloads() {
		if w.component == component {
			return w, true
		}
	}
	return workload{}, false
}

func (m *manifest) configMap(name string) *corev1.ConfigMap {
	for _, c := range m.configMaps {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (m *manifest) secret(name string) *corev1.Secret {
	for _, s := range m.secrets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func (m *manifest) serviceAccount(name string) *corev1.ServiceAccount {
	for _, s := range m.serviceAccounts {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func (m *manifest) service(name string) *corev1.Service {
	for _, s := range m.services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func (m *manifest) deployment(name string) *appsv1.Deployment {
	for _, d := range m.deployments {
		if d.Name == name {
			return d
		}
	}
	return nil
}

// value reads a dotted path of the coalesced values; keys with dots are not used by the chart.
func (m *manifest) value(path string) any {
	v, err := m.values.PathValue(path)
	if err != nil {
		return nil
	}
	return v
}

func (m *manifest) str(path string) string {
	s, _ := m.value(path).(string)
	return s
}

func (m *manifest) enabled(path string) bool {
	b, _ := m.value(path + ".enabled").(bool)
	return b
}

// readFile reads a repository file for the tests that compare files with code.
func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return b
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func describe(w workload) string { return fmt.Sprintf("%s %s", w.kind, w.name) }
