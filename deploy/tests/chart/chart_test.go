package k8stest

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint/support"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/trigger-api/trigger-api/pkg/config"
	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/demo"
	"github.com/trigger-api/trigger-api/pkg/logging"
	"github.com/trigger-api/trigger-api/services/inbox/inboxapi"
	"github.com/trigger-api/trigger-api/services/ingest/ingestapi"
	"github.com/trigger-api/trigger-api/services/keys-admin/adminapi"
	"github.com/trigger-api/trigger-api/worker/runner"
)

const (
	testRelease   = "rel"
	testNamespace = "trigger-test"
)

// binary is what the chart may set on one of the project's containers: the fields of its
// envconfig struct, and a fresh struct for envconfig.Process to parse the rendered values into.
type binary struct {
	fields []config.Field
	spec   func() any
}

// binaries maps the chart's component label to the binary that runs in it. ensure-tables is the
// keys-admin binary but reads only the DynamoDB settings and the log level.
var binaries = map[string]binary{
	"ingest":     {config.Fields(&ingestapi.Config{}), func() any { return &ingestapi.Config{} }},
	"inbox":      {config.Fields(&inboxapi.Config{}), func() any { return &inboxapi.Config{} }},
	"keys-admin": {config.Fields(&adminapi.Config{}), func() any { return &adminapi.Config{} }},
	"worker":     {config.Fields(&runner.Config{}), func() any { return &runner.Config{} }},
	// The helm test Pod: `worker demo`.
	"helm-test": {config.Fields(&demo.Config{}), func() any { return &demo.Config{} }},
	"tables": {append(config.Fields(&ddb.Settings{}), config.Fields(&logging.Options{})...),
		func() any {
			return &struct {
				ddb.Settings
				logging.Options
			}{}
		}},
}

// serviceComponents are the binaries the chart renders from its components map.
var serviceComponents = []string{"ingest", "inbox", "keys-admin", "worker"}

// readByOthers are variables the chart may set although no envconfig struct declares them,
// because another reader owns them: the Go runtime, pkg/telemetry (the pod's name and namespace)
// and the OpenTelemetry SDK (OTEL_* by prefix).
var readByOthers = map[string]bool{"GOMAXPROCS": true, "GOMEMLIMIT": true, "GOGC": true, "POD_NAME": true, "POD_NAMESPACE": true}

// devOnlyAWS are the static credentials DynamoDB Local needs to sign requests with; outside
// development the default AWS chain (IRSA) must provide credentials, so they may appear only
// next to a TRIGGER_DYNAMODB_ENDPOINT (a DynamoDB Local in the cluster or outside it).
var devOnlyAWS = map[string]bool{"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true}

func renderSets(t *testing.T) map[string]*manifest {
	t.Helper()
	out := map[string]*manifest{}
	for _, vs := range valueSets(t) {
		out[vs.name] = render(t, testRelease, testNamespace, vs.values(t))
	}
	return out
}

func TestChartLintStrict(t *testing.T) {
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	for _, vs := range valueSets(t) {
		t.Run(vs.name, func(t *testing.T) {
			lint := action.NewLint()
			lint.Strict = true
			lint.Namespace = testNamespace
			lint.KubeVersion = kv
			res := lint.Run([]string{chartDir}, vs.values(t))
			if res.TotalChartsLinted != 1 {
				t.Fatalf("linted %d charts: %v", res.TotalChartsLinted, res.Errors)
			}
			for _, msg := range res.Messages {
				// Strict fails on warnings; INFO (e.g. "icon is recommended") is advice only.
				if msg.Severity > support.InfoSev {
					t.Errorf("lint: %s", msg.Err)
				}
			}
			for _, err := range res.Errors {
				t.Errorf("lint: %v", err)
			}
		})
	}
}

func TestChartWorkloadsAreRestrictedAndSized(t *testing.T) {
	for name, m := range renderSets(t) {
		t.Run(name, func(t *testing.T) {
			owners := map[string]string{}
			for _, w := range m.workloads() {
				spec := w.pod.Spec
				sa := spec.ServiceAccountName
				if sa == "" || m.serviceAccount(sa) == nil {
					t.Errorf("%s: service account %q is not rendered", describe(w), sa)
				}
				if prev, ok := owners[sa]; ok {
					t.Errorf("%s shares service account %s with %s", describe(w), sa, prev)
				}
				owners[sa] = describe(w)
				if len(spec.InitContainers) > 0 {
					t.Errorf("%s: init containers are not covered by these checks", describe(w))
				}
				for _, c := range spec.Containers {
					where := describe(w) + "/" + c.Name
					checkRestricted(t, where, spec.SecurityContext, c.SecurityContext)
					checkResources(t, where, c.Resources)
					checkImage(t, where, c.Image)
				}
			}
			if len(m.workloads()) == 0 {
				t.Fatal("no workloads rendered")
			}
		})
	}
}

func checkRestricted(t *testing.T, where string, pod *corev1.PodSecurityContext, c *corev1.SecurityContext) {
	t.Helper()
	if c == nil {
		t.Errorf("%s: no container securityContext", where)
		return
	}
	// The container's own settings win over the pod's; read the effective value.
	nonRoot := c.RunAsNonRoot
	seccomp := c.SeccompProfile
	if pod != nil {
		if nonRoot == nil {
			nonRoot = pod.RunAsNonRoot
		}
		if seccomp == nil {
			seccomp = pod.SeccompProfile
		}
	}
	if nonRoot == nil || !*nonRoot {
		t.Errorf("%s: runAsNonRoot is not true", where)
	}
	if c.ReadOnlyRootFilesystem == nil || !*c.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem is not true", where)
	}
	if c.AllowPrivilegeEscalation == nil || *c.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation is not false", where)
	}
	if c.Privileged != nil && *c.Privileged {
		t.Errorf("%s: privileged", where)
	}
	if c.Capabilities == nil || !slices.Equal(c.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(c.Capabilities.Add) > 0 {
		t.Errorf("%s: capabilities must drop ALL and add none, got %+v", where, c.Capabilities)
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccomp profile is not RuntimeDefault", where)
	}
}

func checkResources(t *testing.T, where string, r corev1.ResourceRequirements) {
	t.Helper()
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := r.Requests[res]
		lim, hasLim := r.Limits[res]
		if !hasReq || !hasLim {
			t.Errorf("%s: %s needs a request and a limit, got %+v", where, res, r)
			continue
		}
		if req.Cmp(lim) > 0 {
			t.Errorf("%s: %s request %s exceeds limit %s", where, res, req.String(), lim.String())
		}
	}
}

func checkImage(t *testing.T, where, image string) {
	t.Helper()
	ref := image
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		ref = ref[i+1:]
	}
	if strings.Contains(ref, "@sha256:") {
		return
	}
	name, tag, ok := strings.Cut(ref, ":")
	if !ok || tag == "" || name == "" {
		t.Errorf("%s: image %q has no tag (that means latest)", where, image)
	}
	if tag == "latest" {
		t.Errorf("%s: image %q uses latest", where, image)
	}
}

// TestChartEnvMatchesBinaries compares what the chart sets on each of the project's containers
// with the binary's envconfig struct: no unknown name, every required one present, and every value
// parses as the binary would parse it.
func TestChartEnvMatchesBinaries(t *testing.T) {
	checked := map[string]bool{}
	for name, m := range renderSets(t) {
		t.Run(name, func(t *testing.T) {
			for _, w := range m.workloads() {
				bin, ok := binaries[w.component]
				if !ok {
					continue // DynamoDB Local, Jaeger, the demo Job: not our binaries
				}
				checked[w.component] = true
				env := m.resolveEnv(t, w)
				known := map[string]config.Field{}
				for _, f := range bin.fields {
					known[f.Env] = f
				}
				for _, k := range keysOf(env) {
					_, isField := known[k]
					switch {
					case isField, readByOthers[k], strings.HasPrefix(k, "OTEL_"):
					case devOnlyAWS[k]:
						if env["TRIGGER_DYNAMODB_ENDPOINT"] == "" {
							t.Errorf("%s: %s outside development: AWS credentials must come from IRSA", describe(w), k)
						}
					default:
						t.Errorf("%s: %s is not a field of the %s binary's config", describe(w), k, w.component)
					}
				}
				for _, f := range bin.fields {
					if f.Required {
						if v, ok := env[f.Env]; !ok || v == "" {
							t.Errorf("%s: required %s is not set", describe(w), f.Env)
						}
					}
				}
				if err := processEnv(env, bin.spec()); err != nil {
					t.Errorf("%s: the binary would reject its settings: %v", describe(w), err)
				}
				if w.component != "tables" {
					checkGoRuntimeEnv(t, w)
				}
			}
		})
	}
	for c := range binaries {
		if !checked[c] {
			t.Errorf("no value set renders %s: its settings go unchecked", c)
		}
	}
}

// resolveEnv is the environment a container starts with: its env entries and every ConfigMap it
// loads, with secret references resolved to the rendered value or a stand-in for Secrets the
// chart does not create (an existing Secret, or the demo keys a Job writes).
func (m *manifest) resolveEnv(t *testing.T, w workload) map[string]string {
	t.Helper()
	if len(w.pod.Spec.Containers) != 1 {
		t.Fatalf("%s: want one container, got %d", describe(w), len(w.pod.Spec.Containers))
	}
	c := w.pod.Spec.Containers[0]
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil || from.Prefix != "" {
			t.Fatalf("%s: envFrom %+v: only whole ConfigMaps are resolved here", describe(w), from)
		}
		cm := m.configMap(from.ConfigMapRef.Name)
		if cm == nil {
			t.Fatalf("%s: ConfigMap %s is not rendered", describe(w), from.ConfigMapRef.Name)
		}
		for k, v := range cm.Data {
			env[k] = v
		}
	}
	for _, e := range c.Env {
		if _, dup := env[e.Name]; dup {
			t.Errorf("%s: %s is set twice", describe(w), e.Name)
		}
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = m.secretValue(t, describe(w), e.ValueFrom.SecretKeyRef)
		case e.ValueFrom.ResourceFieldRef != nil:
			env[e.Name] = "1" // the kubelet fills in the container's limit
		case e.ValueFrom.FieldRef != nil:
			env[e.Name] = "filled-in-from-" + e.ValueFrom.FieldRef.FieldPath
		default:
			t.Fatalf("%s: %s has a source this test does not resolve", describe(w), e.Name)
		}
	}
	return env
}

func (m *manifest) secretValue(t *testing.T, where string, ref *corev1.SecretKeySelector) string {
	t.Helper()
	if ref.Optional != nil && *ref.Optional {
		t.Errorf("%s: secret %s/%s is optional: a required setting could silently be missing", where, ref.Name, ref.Key)
	}
	if ref.Name == m.str("secrets.existingSecret") && ref.Name != "" {
		return "stand-in-for-a-value-held-by-the-existing-secret"
	}
	s := m.secret(ref.Name)
	if s == nil {
		t.Fatalf("%s: Secret %s is neither rendered nor secrets.existingSecret", where, ref.Name)
	}
	if v, ok := s.Data[ref.Key]; ok {
		return string(v)
	}
	// The demo keys Secret is rendered empty and filled by the demo Job: check the Job writes it.
	demo, ok := m.workload("demo")
	if !ok || !m.enabled("demo") {
		t.Fatalf("%s: Secret %s has no key %s", where, ref.Name, ref.Key)
	}
	env := map[string]string{}
	for _, e := range demo.pod.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	script := ""
	for _, cm := range m.configMaps {
		script += cm.Data["create-tenants.sh"]
	}
	// The script builds the patch as a shell string, so the key appears with escaped quotes.
	if env["KEYS_SECRET"] != ref.Name || !strings.Contains(script, `\"`+ref.Key+`\":`) {
		t.Fatalf("%s: nothing writes key %s of Secret %s", where, ref.Key, ref.Name)
	}
	return "tenant_demo_live_written-by-the-demo-job"
}

// processEnv runs envconfig over env alone, so the check sees exactly what a pod would see. It
// changes the process environment, so the tests that call it never run in parallel.
func processEnv(env map[string]string, spec any) error {
	saved := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, config.Prefix+"_") {
			saved[k] = v
			os.Unsetenv(k)
		}
	}
	defer func() {
		for k := range env {
			os.Unsetenv(k)
		}
		for k, v := range saved {
			os.Setenv(k, v)
		}
	}()
	for k, v := range env {
		if strings.HasPrefix(k, config.Prefix+"_") {
			os.Setenv(k, v)
		}
	}
	if err := envconfig.Process(config.Prefix, spec); err != nil {
		return err
	}
	// Binaries that check their settings beyond parsing do it in Validate; run it as main would.
	if v, ok := spec.(interface{ Validate() error }); ok {
		return v.Validate()
	}
	return nil
}

// checkGoRuntimeEnv: GOMAXPROCS follows the CPU limit, and GOMEMLIMIT is left to the binary,
// which sets it below the memory limit (pkg/startup); the chart's only way to set it would be
// resourceFieldRef, which gives the whole limit and would override that.
func checkGoRuntimeEnv(t *testing.T, w workload) {
	t.Helper()
	want := map[string]string{"GOMAXPROCS": "limits.cpu"}
	for _, e := range w.pod.Spec.Containers[0].Env {
		if e.Name == "GOMEMLIMIT" {
			t.Errorf("%s: sets GOMEMLIMIT, which overrides the binary's share of the memory limit", describe(w))
		}
		if res, ok := want[e.Name]; ok {
			if e.ValueFrom == nil || e.ValueFrom.ResourceFieldRef == nil || e.ValueFrom.ResourceFieldRef.Resource != res {
				t.Errorf("%s: %s must come from the container's %s", describe(w), e.Name, res)
			}
			delete(want, e.Name)
		}
	}
	for k := range want {
		t.Errorf("%s: %s is not set", describe(w), k)
	}
}

// TestChartProbesAndGracefulShutdown: every binary declares the ports it listens on; a service gets
// probes on its API port and drains within the grace period; the worker, which serves no API, is
// probed on its metrics port.
func TestChartProbesAndGracefulShutdown(t *testing.T) {
	for name, m := range renderSets(t) {
		t.Run(name, func(t *testing.T) {
			for _, w := range m.workloads() {
				if w.kind != "Deployment" {
					continue
				}
				c := w.pod.Spec.Containers[0]
				bin, ours := binaries[w.component]
				if !ours {
					// In-cluster dependencies: whatever listens must say when it is ready.
					if len(c.Ports) > 0 && (c.ReadinessProbe == nil || c.LivenessProbe == nil) {
						t.Errorf("%s: listens but lacks probes", describe(w))
					}
					continue
				}
				env := m.resolveEnv(t, w)
				checkListeners(t, w, bin, env)
				if _, serves := fieldValue(bin.fields, env, "TRIGGER_HTTP_ADDR"); !serves {
					// No readiness probe: no Service routes to it.
					checkHTTPProbe(t, describe(w)+" liveness", c.LivenessProbe, "/livez", "metrics")
					continue
				}
				checkHTTPProbe(t, describe(w)+" liveness", c.LivenessProbe, "/livez", "http")
				checkHTTPProbe(t, describe(w)+" readiness", c.ReadinessProbe, "/readyz", "http")

				timeout, _ := fieldValue(bin.fields, env, "TRIGGER_SHUTDOWN_TIMEOUT")
				drain, err := time.ParseDuration(timeout)
				if err != nil {
					t.Fatalf("%s: TRIGGER_SHUTDOWN_TIMEOUT %q: %v", describe(w), timeout, err)
				}
				if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
					t.Fatalf("%s: no preStop sleep: endpoints would still route to a draining pod", describe(w))
				}
				preStop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
				grace := 30 * time.Second // the API server's default
				if g := w.pod.Spec.TerminationGracePeriodSeconds; g != nil {
					grace = time.Duration(*g) * time.Second
				}
				if preStop+drain >= grace {
					t.Errorf("%s: preStop %s + shutdown timeout %s must be below terminationGracePeriodSeconds %s", describe(w), preStop, drain, grace)
				}
			}
		})
	}
}

// fieldValue is the value a binary ends up with: the environment's, else the field's default.
func fieldValue(fields []config.Field, env map[string]string, name string) (string, bool) {
	for _, f := range fields {
		if f.Env == name {
			if v, ok := env[name]; ok {
				return v, true
			}
			return f.Default, true
		}
	}
	return "", false
}

// checkListeners: the container declares exactly the ports its binary listens on, by name:
// metrics on TRIGGER_METRICS_ADDR and, for a service, http on TRIGGER_HTTP_ADDR, on another port,
// since a NetworkPolicy admits scrapers by port; notify on TRIGGER_NOTIFY_ADDR where it is set.
func checkListeners(t *testing.T, w workload, bin binary, env map[string]string) {
	t.Helper()
	want := map[string]int{}
	for name, setting := range map[string]string{"metrics": "TRIGGER_METRICS_ADDR", "http": "TRIGGER_HTTP_ADDR", "notify": "TRIGGER_NOTIFY_ADDR"} {
		addr, ok := fieldValue(bin.fields, env, setting)
		switch {
		case !ok && name == "http": // the worker serves no API
		case !ok && name == "notify": // only the inbox is notified
		case addr == "" && name == "notify":
		case !ok:
			t.Errorf("%s: the binary has no %s", describe(w), setting)
		case addr == "":
			t.Errorf("%s: %s is empty: nothing listens for the %s port", describe(w), setting, name)
		default:
			want[name] = listenPort(t, describe(w), setting, addr)
		}
	}
	if want["http"] != 0 && want["http"] == want["metrics"] {
		t.Errorf("%s: /metrics shares port %d with the API", describe(w), want["http"])
	}
	if n := want["notify"]; n != 0 && (n == want["http"] || n == want["metrics"]) {
		t.Errorf("%s: the notify port %d is shared with the API or metrics", describe(w), n)
	}
	got := map[string]int{}
	for _, p := range w.pod.Spec.Containers[0].Ports {
		got[p.Name] = int(p.ContainerPort)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: container ports %v, want %v from the binary's settings", describe(w), got, want)
	}
}

// listenPort is the port of a host:port listen address.
func listenPort(t *testing.T, where, name, addr string) int {
	t.Helper()
	_, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s: %s %q: %v", where, name, addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		t.Fatalf("%s: %s %q: port is not a number", where, name, addr)
	}
	return port
}

func checkHTTPProbe(t *testing.T, where string, p *corev1.Probe, path, port string) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s: want an HTTP probe on %s", where, path)
		return
	}
	if p.HTTPGet.Path != path || p.HTTPGet.Port.String() != port {
		t.Errorf("%s: probe %s on port %s, want %s on %s", where, p.HTTPGet.Path, p.HTTPGet.Port.String(), path, port)
	}
}

func TestChartServiceAccountsCarryTheirRole(t *testing.T) {
	withRoles := 0
	for name, m := range renderSets(t) {
		t.Run(name, func(t *testing.T) {
			want := map[string]string{} // component -> role ARN from values
			for _, c := range serviceComponents {
				if m.enabled("components." + c) {
					want[c] = m.str("components." + c + ".serviceAccount.roleArn")
				}
			}
			if m.enabled("tablesJob") {
				want["tables"] = m.str("tablesJob.serviceAccount.roleArn")
			}
			for component, arn := range want {
				w, ok := m.workload(component)
				if !ok {
					t.Errorf("%s is enabled but not rendered", component)
					continue
				}
				sa := m.serviceAccount(w.pod.Spec.ServiceAccountName)
				if sa == nil {
					continue // reported by the restricted-workload test
				}
				if got := sa.Annotations[roleARNKey]; got != arn {
					t.Errorf("%s: ServiceAccount %s has role %q, want %q", component, sa.Name, got, arn)
				}
				if arn != "" {
					withRoles++
				}
			}
			for _, sa := range m.serviceAccounts {
				if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
					t.Errorf("ServiceAccount %s mounts its token by default", sa.Name)
				}
			}
		})
	}
	if withRoles == 0 {
		t.Error("no value set gives a component an IAM role: the annotation goes unchecked")
	}
}

func TestChartIngressNeverExposesKeysAdmin(t *testing.T) {
	rendered := 0
	for name, m := range renderSets(t) {
		t.Run(name, func(t *testing.T) {
			for _, ing := range m.ingresses {
				rendered++
				routes := map[string]string{} // path -> component behind it
				for _, rule := range ing.Spec.Rules {
					for _, p := range rule.HTTP.Paths {
						svc := m.service(p.Backend.Service.Name)
						if svc == nil {
							t.Fatalf("Ingress %s routes %s to missing Service %s", ing.Name, p.Path, p.Backend.Service.Name)
						}
						component := svc.Spec.Selector[labelComponent]
						if component == "keys-admin" {
							t.Errorf("Ingress %s exposes keys-admin at %s", ing.Name, p.Path)
						}
						routes[p.Path] = component
						if p.Backend.Service.Port.Number != svc.Spec.Ports[0].Port {
							t.Errorf("Ingress %s: %s goes to port %d, Service %s listens on %d", ing.Name, p.Path, p.Backend.Service.Port.Number, svc.Name, svc.Spec.Ports[0].Port)
						}
					}
				}
				want := map[string]string{"/events": "ingest", "/inbox": "inbox", "/ack": "inbox", "/nack": "inbox"}
				if !reflect.DeepEqual(routes, want) {
					t.Errorf("Ingress %s routes %v, want %v", ing.Name, routes, want)
				}
			}
		})
	}
	if rendered == 0 {
		t.Error("no value set renders an Ingress")
	}
}

func TestChartSelectorsAreReleaseScoped(t *testing.T) {
	for name, m := range renderSets(t) {
		t.Run(name, func(t *testing.T) {
			for _, d := range m.deployments {
				sel := d.Spec.Selector.MatchLabels
				if sel[labelInstance] != m.release || sel[labelComponent] == "" {
					t.Errorf("Deployment %s: selector %v lacks the release or component", d.Name, sel)
				}
				if !labels.SelectorFromSet(sel).Matches(labels.Set(d.Spec.Template.Labels)) {
					t.Errorf("Deployment %s: selector %v does not match its pods %v", d.Name, sel, d.Spec.Template.Labels)
				}
			}
			for _, s := range m.services {
				if s.Spec.Selector[labelInstance] != m.release {
					t.Errorf("Service %s: selector %v lacks the release", s.Name, s.Spec.Selector)
				}
				matched := 0
				for _, d := range m.deployments {
					if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
						matched++
					}
				}
				if matched != 1 {
					t.Errorf("Service %s selects %d Deployments, want 1", s.Name, matched)
				}
			}
			for _, p := range m.pdbs {
				if p.Spec.Selector.MatchLabels[labelInstance] != m.release {
					t.Errorf("PDB %s: selector lacks the release", p.Name)
				}
			}
			for _, np := range m.netpols {
				if np.Spec.PodSelector.MatchLabels[labelInstance] != m.release {
					t.Errorf("NetworkPolicy %s: pod selector lacks the release", np.Name)
				}
			}
			for _, h := range m.hpas {
				d := m.deployment(h.Spec.ScaleTargetRef.Name)
				if d == nil {
					t.Errorf("HPA %s scales missing Deployment %s", h.Name, h.Spec.ScaleTargetRef.Name)
					continue
				}
				// With replicas in the manifest every upgrade would reset what the HPA scaled to.
				if d.Spec.Replicas != nil {
					t.Errorf("Deployment %s sets replicas although HPA %s owns them", d.Name, h.Name)
				}
			}
		})
	}
}

// TestChartProductionShape pins what the production-like set promises: IRSA, HPA for ingest and
// inbox, PDBs, NetworkPolicies that keep keys-admin internal and let Prometheus scrape every binary
// on its metrics port only, and no chart-made Secret.
func TestChartProductionShape(t *testing.T) {
	vs := valueSet{name: "production", file: chartDir + "/ci/production-values.yaml"}
	m := render(t, testRelease, testNamespace, vs.values(t))

	scaled := map[string]bool{}
	for _, h := range m.hpas {
		scaled[m.deployment(h.Spec.ScaleTargetRef.Name).Spec.Template.Labels[labelComponent]] = true
	}
	if !scaled["ingest"] || !scaled["inbox"] {
		t.Errorf("HPA for %v, want ingest and inbox", keysOf(scaled))
	}
	if len(m.pdbs) < 3 {
		t.Errorf("%d PDBs, want one per service", len(m.pdbs))
	}
	if len(m.secrets) != 0 {
		t.Errorf("rendered %d Secrets although secrets.existingSecret is set", len(m.secrets))
	}
	if len(flatten([]any{m.value("networkPolicy.metricsFrom")})) == 0 {
		t.Fatal("the production set names no networkPolicy.metricsFrom: scraping goes unchecked")
	}
	byComponent := map[string]int{}
	for _, np := range m.netpols {
		c := np.Spec.PodSelector.MatchLabels[labelComponent]
		byComponent[c]++
		admitted := map[string][]any{} // port -> peers
		for _, rule := range np.Spec.Ingress {
			opened := openedPorts(rule)
			if len(opened) != 1 {
				t.Errorf("NetworkPolicy %s: a rule opens %q, want one named port", np.Name, opened)
				continue
			}
			for _, p := range rule.From {
				admitted[opened[0]] = append(admitted[opened[0]], p)
			}
		}
		want := map[string][]any{"metrics": flatten([]any{m.value("networkPolicy.metricsFrom")})}
		switch c {
		case "keys-admin":
			// Only what values name and the helm test Pod: never the namespace, where ingest and
			// inbox run.
			want["http"] = flatten([]any{m.value("networkPolicy.keysAdminFrom"), podsOf("helm-test")})
		case "ingest", "inbox":
			want["http"] = flatten([]any{map[string]any{"podSelector": map[string]any{}}, m.value("networkPolicy.publicFrom")})
		}
		if c == "inbox" {
			// Only the release's ingest and inbox pods announce events.
			want["notify"] = []any{podsOf("ingest"), podsOf("inbox")}
		}
		if got, want := normalize(t, admitted), normalize(t, want); !reflect.DeepEqual(got, want) {
			t.Errorf("NetworkPolicy %s admits %v, want %v", np.Name, got, want)
		}
	}
	for _, c := range serviceComponents {
		if byComponent[c] != 1 {
			t.Errorf("%d NetworkPolicies for %s, want 1", byComponent[c], c)
		}
	}
	if !strings.Contains(m.notes, testNamespace) {
		t.Errorf("NOTES.txt does not mention the namespace:\n%s", m.notes)
	}
}

// podsOf is the NetworkPolicyPeer of one component's pods in the test release.
func podsOf(component string) map[string]any {
	return map[string]any{"podSelector": map[string]any{"matchLabels": map[string]any{
		"app.kubernetes.io/name": "trigger-api", "app.kubernetes.io/instance": testRelease, labelComponent: component,
	}}}
}

// openedPorts names the ports an ingress rule opens; a rule without ports opens every one.
func openedPorts(rule networkingv1.NetworkPolicyIngressRule) []string {
	if len(rule.Ports) == 0 {
		return []string{"every port"}
	}
	var out []string
	for _, p := range rule.Ports {
		if p.Port == nil {
			out = append(out, "every port")
		} else {
			out = append(out, p.Port.String())
		}
	}
	return out
}

// TestChartServicesExposeOnlyTheAPI: scraping goes to each pod by annotation, so a Service carries
// the API port and never the metrics one. The one headless Service lists the inbox pods' notify
// ports, and ingest and inbox are pointed at it.
func TestChartServicesExposeOnlyTheAPI(t *testing.T) {
	checked, peers := map[string]bool{}, map[string]bool{}
	for name, m := range renderSets(t) {
		t.Run(name, func(t *testing.T) {
			for _, s := range m.services {
				c := s.Spec.Selector[labelComponent]
				if _, ours := binaries[c]; !ours {
					continue
				}
				if s.Spec.ClusterIP == corev1.ClusterIPNone {
					if strings.HasSuffix(s.Name, "-peers") {
						checkPeersService(t, m, s)
						peers[c] = true
					} else {
						checkNotifyService(t, m, s)
					}
					continue
				}
				checked[c] = true
				if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Name != "http" || s.Spec.Ports[0].TargetPort != intstr.FromString("http") {
					t.Errorf("Service %s ports %+v, want only http: the metrics port is scraped per pod", s.Name, s.Spec.Ports)
				}
			}
		})
	}
	for _, c := range []string{"ingest", "inbox", "keys-admin"} {
		if !checked[c] {
			t.Errorf("no value set renders a Service for %s", c)
		}
	}
	for _, c := range []string{"ingest", "inbox"} {
		if !peers[c] {
			t.Errorf("no value set renders the peers Service of %s", c)
		}
	}
}

// checkPeersService: a component's peers Service selects that component's pods alone, and each
// of them counts its replicas by the Service's name to share tenant rates.
func checkPeersService(t *testing.T, m *manifest, s *corev1.Service) {
	t.Helper()
	c := s.Spec.Selector[labelComponent]
	if c != "ingest" && c != "inbox" {
		t.Errorf("peers Service %s selects %q, want ingest or inbox", s.Name, c)
		return
	}
	want := fmt.Sprintf("%s.%s.svc", s.Name, m.namespace)
	for _, w := range m.workloads() {
		if w.component != c {
			continue
		}
		if got := m.resolveEnv(t, w)["TRIGGER_TENANT_RATE_REPLICAS"]; got != want {
			t.Errorf("%s: TRIGGER_TENANT_RATE_REPLICAS %q, want %q", describe(w), got, want)
		}
	}
}

// TestChartRatePerReplicaWhenAsked: fleetWideTenantRate false renders no peers Service and
// leaves the rate per replica.
func TestChartRatePerReplicaWhenAsked(t *testing.T) {
	m := render(t, testRelease, testNamespace, readValues(t, `fleetWideTenantRate: false`))
	for _, s := range m.services {
		if strings.HasSuffix(s.Name, "-peers") {
			t.Errorf("Service %s rendered with fleetWideTenantRate false", s.Name)
		}
	}
	for _, w := range m.workloads() {
		if v, ok := m.resolveEnv(t, w)["TRIGGER_TENANT_RATE_REPLICAS"]; ok {
			t.Errorf("%s: TRIGGER_TENANT_RATE_REPLICAS %q with fleetWideTenantRate false", describe(w), v)
		}
	}
}

// checkNotifyService: the headless Service selects the inbox pods on their notify port only,
// and every ingest and inbox resolves its name to notify them.
func checkNotifyService(t *testing.T, m *manifest, s *corev1.Service) {
	t.Helper()
	if s.Spec.Selector[labelComponent] != "inbox" || len(s.Spec.Ports) != 1 || s.Spec.Ports[0].TargetPort != intstr.FromString("notify") {
		t.Errorf("headless Service %s: selector %v ports %+v, want the inbox pods' notify port alone", s.Name, s.Spec.Selector, s.Spec.Ports)
		return
	}
	want := fmt.Sprintf("%s.%s.svc:%d", s.Name, m.namespace, s.Spec.Ports[0].Port)
	for _, w := range m.workloads() {
		if w.component != "ingest" && w.component != "inbox" {
			continue
		}
		if got := m.resolveEnv(t, w)["TRIGGER_NOTIFY_PEERS"]; got != want {
			t.Errorf("%s: TRIGGER_NOTIFY_PEERS %q, want %q", describe(w), got, want)
		}
	}
}

// normalize compares typed peers and values through the same JSON shape.
func normalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// flatten turns [peer, [peers...]] into one list, as the template concatenates them.
func flatten(in []any) []any {
	var out []any
	for _, v := range in {
		if list, ok := v.([]any); ok {
			out = append(out, list...)
		} else if v != nil {
			out = append(out, v)
		}
	}
	return out
}

func TestChartConfigChecksumFollowsConfig(t *testing.T) {
	checksums := func(vals map[string]any) map[string]string {
		m := render(t, testRelease, testNamespace, vals)
		out := map[string]string{}
		for _, d := range m.deployments {
			out[d.Spec.Template.Labels[labelComponent]] = d.Spec.Template.Annotations["checksum/config"]
		}
		return out
	}
	before := checksums(map[string]any{})
	after := checksums(map[string]any{"components": map[string]any{"inbox": map[string]any{
		"env": map[string]any{"TRIGGER_KEY_CACHE_TTL": "10s"},
	}}})
	for _, c := range []string{"ingest", "inbox", "keys-admin"} {
		if before[c] == "" {
			t.Fatalf("%s has no checksum/config annotation", c)
		}
		if changed := before[c] != after[c]; changed != (c == "inbox") {
			t.Errorf("%s: checksum changed=%v after editing only the inbox's settings", c, changed)
		}
	}
}

// TestChartRefusesBadValues: the schema and the template guards reject what would deploy
// something broken, instead of rendering it.
func TestChartRefusesBadValues(t *testing.T) {
	cases := []struct {
		name string
		vals string
		want string
	}{
		{"unknown-top-level-key", `bogus: 1`, "additional properties"},
		{"unknown-component-key", `components: {ingest: {replicaz: 3}}`, "additional properties"},
		{"unknown-component", `components: {billing: {enabled: true}}`, "additional properties"},
		{"latest-tag", `image: {tag: latest}`, "/image/tag"},
		{"short-admin-token", `secrets: {adminTokens: ["ops:short"]}`, "/secrets/adminTokens/0"},
		{"unnamed-admin-token", `secrets: {adminTokens: [` + strings.Repeat("u", 40) + `]}`, "/secrets/adminTokens/0"},
		{"admin-token-id-upper-case", `secrets: {adminTokens: ["Ops:` + strings.Repeat("u", 40) + `"]}`, "/secrets/adminTokens/0"},
		{"keys-admin-from-whole-namespace", `networkPolicy: {keysAdminFrom: [{podSelector: {}}]}`, "keysAdminFrom"},
		{"worker-role-arn", `components: {worker: {serviceAccount: {roleArn: "arn:aws:iam::123456789012:role/x"}}}`, "additional properties"},
		{"worker-metrics-port-privileged", `components: {worker: {metricsPort: 80}}`, "metricsPort"},
		{"service-metrics-port-privileged", `components: {inbox: {metricsPort: 80}}`, "metricsPort"},
		{"metrics-port-is-api-port", `components: {keys-admin: {metricsPort: 8083}}`, "metricsPort must differ from port"},
		{"env-outside-prefix", `components: {ingest: {env: {PATH: /tmp}}}`, "PATH"},
		{"shutdown-exceeds-grace", `shutdown: {preStopSeconds: 10, timeoutSeconds: 30, terminationGracePeriodSeconds: 30}`, "terminationGracePeriodSeconds"},
		{"worker-without-keys", `components: {worker: {enabled: true}}`, "worker needs tenant API keys"},
		{"demo-without-token", `demo: {enabled: true}`, "adminTokens"},
		{"unknown-dashboard-key", `grafana: {dashboard: {uid: x}}`, "additional properties"},
		{"digest-without-algorithm", `image: {digests: {ingest: ` + strings.Repeat("a", 64) + `}}`, "/image/digests/ingest"},
		{"digest-short", `image: {digests: {inbox: "sha256:abc"}}`, "/image/digests/inbox"},
		{"digest-of-unknown-component", `image: {digests: {billing: "sha256:` + strings.Repeat("a", 64) + `"}}`, "additional properties"},
		{"dashboard-label-value-unquoted", `grafana: {dashboard: {labelValue: 1}}`, "labelValue"},
		{"alb-behind-closed-policies", `ingress: {enabled: true, className: alb}`, "networkPolicy.publicFrom"},
		{"tenant-classes-without-tenant-label", `metrics: {prometheusRule: {alerts: {inboxOldestEvent: {thresholdSeconds: 900, for: 5m, severity: critical, classes: [{name: vip, tenants: [acme], thresholdSeconds: 60}]}}}}`, "metrics.tenantLabel"},
		{"tenant-class-named-default", `metrics: {tenantLabel: true, prometheusRule: {alerts: {inboxOldestEvent: {thresholdSeconds: 900, for: 5m, severity: critical, classes: [{name: default, tenants: [acme], thresholdSeconds: 60}]}}}}`, "used twice"},
		{"tenant-class-without-tenants", `metrics: {tenantLabel: true, prometheusRule: {alerts: {inboxOldestEvent: {thresholdSeconds: 900, for: 5m, severity: critical, classes: [{name: vip, tenants: [], thresholdSeconds: 60}]}}}}`, "tenants"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vals, err := chartutil.ReadValues([]byte(tc.vals))
			if err != nil {
				t.Fatal(err)
			}
			_, err = renderRelease(t, testRelease, testNamespace, vals)
			if err == nil {
				t.Fatalf("rendered %s", tc.vals)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestChartImagesDefaultToAppVersion(t *testing.T) {
	m := render(t, testRelease, testNamespace, map[string]any{})
	c := loadChart(t)
	for _, d := range m.deployments {
		img := d.Spec.Template.Spec.Containers[0].Image
		want := fmt.Sprintf("ghcr.io/trigger-api/%s:%s", d.Spec.Template.Labels[labelComponent], c.Metadata.AppVersion)
		if img != want {
			t.Errorf("Deployment %s runs %s, want %s", d.Name, img, want)
		}
	}
}

// TestChartImageDigests: a component given a digest runs exactly that image, by digest, in every
// workload that runs its binary (keys-admin's also in the tables Job); the others keep the tag.
func TestChartImageDigests(t *testing.T) {
	ingest, admin, worker := "sha256:"+strings.Repeat("a1", 32), "sha256:"+strings.Repeat("0f", 32), "sha256:"+strings.Repeat("77", 32)
	m := render(t, testRelease, testNamespace, map[string]any{
		"image":     map[string]any{"tag": "1.2.3", "digests": map[string]any{"ingest": ingest, "keys-admin": admin, "worker": worker}},
		"tablesJob": map[string]any{"enabled": true},
	})
	want := map[string]string{
		"ingest":     "ghcr.io/trigger-api/ingest@" + ingest,
		"keys-admin": "ghcr.io/trigger-api/keys-admin@" + admin,
		"tables":     "ghcr.io/trigger-api/keys-admin@" + admin,
		"inbox":      "ghcr.io/trigger-api/inbox:1.2.3",
		// The helm test runs `worker demo`.
		"helm-test": "ghcr.io/trigger-api/worker@" + worker,
	}
	for _, w := range m.workloads() {
		if img := w.pod.Spec.Containers[0].Image; img != want[w.component] {
			t.Errorf("%s runs %q, want %q", describe(w), img, want[w.component])
		}
		delete(want, w.component)
	}
	if len(want) > 0 {
		t.Errorf("not rendered: %v", keysOf(want))
	}
}

// TestChartLeavesGOMEMLIMITToTheBinary: by default no container sets GOMEMLIMIT, so each binary
// sets 90 % of its cgroup's limit; an operator's value goes into the component's ConfigMap and
// replaces that.
func TestChartLeavesGOMEMLIMITToTheBinary(t *testing.T) {
	for _, tc := range []struct{ vals, want string }{
		{`{}`, ""},
		{`components: {ingest: {env: {GOMEMLIMIT: 200MiB, GOGC: "200"}}}`, "200MiB"},
	} {
		m := render(t, testRelease, testNamespace, readValues(t, tc.vals))
		w, _ := m.workload("ingest")
		env := m.resolveEnv(t, w)
		if got, set := env["GOMEMLIMIT"]; got != tc.want || set != (tc.want != "") {
			t.Errorf("%s: GOMEMLIMIT %q (set %v), want %q", tc.vals, got, set, tc.want)
		}
		if err := processEnv(env, binaries["ingest"].spec()); err != nil {
			t.Errorf("%s: %v", tc.vals, err)
		}
	}
}
