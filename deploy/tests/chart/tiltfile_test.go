package k8stest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v3/pkg/chartutil"
	corev1 "k8s.io/api/core/v1"
)

const kindContext = "kind-trigger-api"

// call is one recorded call of a Tilt builtin.
type call struct {
	args   []starlark.Value
	kwargs map[string]starlark.Value
}

func (c call) arg(i int, name string) starlark.Value {
	if v, ok := c.kwargs[name]; ok {
		return v
	}
	if i >= 0 && i < len(c.args) {
		return c.args[i]
	}
	return nil
}

func (c call) str(i int, name string) string {
	s, _ := starlark.AsString(c.arg(i, name))
	return s
}

func (c call) strs(i int, name string) []string {
	var out []string
	if it, ok := c.arg(i, name).(starlark.Iterable); ok {
		iter := it.Iterate()
		defer iter.Done()
		var v starlark.Value
		for iter.Next(&v) {
			s, _ := starlark.AsString(v)
			out = append(out, s)
		}
	}
	return out
}

// strOrList reads an argument Tilt accepts as one string or a list of them.
func (c call) strOrList(i int, name string) []string {
	if s, ok := starlark.AsString(c.arg(i, name)); ok {
		return []string{s}
	}
	return c.strs(i, name)
}

// tilt executes the Tiltfile with stubs that record every Tilt builtin it calls. Tilt's own
// dialect allows top-level for/if and reassignment; the stubs accept any arguments so the test
// checks what the file asks for rather than re-implementing Tilt's signatures.
type tilt struct {
	calls   map[string][]call
	context string
}

func runTiltfile(t *testing.T, context string) (*tilt, error) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot, "Tiltfile"))
	if err != nil {
		t.Fatal(err)
	}
	tl := &tilt{calls: map[string][]call{}, context: context}
	record := func(name string, result starlark.Value) *starlark.Builtin {
		return starlark.NewBuiltin(name, func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			c := call{args: args, kwargs: map[string]starlark.Value{}}
			for _, kv := range kwargs {
				c.kwargs[string(kv[0].(starlark.String))] = kv[1]
			}
			tl.calls[name] = append(tl.calls[name], c)
			return result, nil
		})
	}
	predeclared := starlark.StringDict{
		"k8s_context":        record("k8s_context", starlark.String(context)),
		"allow_k8s_contexts": record("allow_k8s_contexts", starlark.None),
		"docker_build":       record("docker_build", starlark.None),
		"custom_build":       record("custom_build", starlark.None),
		"k8s_yaml":           record("k8s_yaml", starlark.None),
		"helm":               record("helm", starlark.String("<helm output>")),
		"blob":               record("blob", starlark.String("<blob>")),
		"local":              record("local", starlark.String("")),
		"read_file":          record("read_file", starlark.String("")),
		"k8s_resource":       record("k8s_resource", starlark.None),
		"local_resource":     record("local_resource", starlark.None),
		"update_settings":    record("update_settings", starlark.None),
		"watch_settings":     record("watch_settings", starlark.None),
		"watch_file":         record("watch_file", starlark.None),
	}
	thread := &starlark.Thread{
		Name: "Tiltfile",
		// Extensions would be fetched from the network at `tilt up`; the Tiltfile uses none.
		Load: func(_ *starlark.Thread, module string) (starlark.StringDict, error) {
			return nil, fmt.Errorf("load(%q): the Tiltfile must not depend on extensions", module)
		},
	}
	opts := &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true}
	_, err = starlark.ExecFileOptions(opts, thread, "Tiltfile", src, predeclared)
	return tl, err
}

func mustExist(t *testing.T, what, rel string) {
	t.Helper()
	if rel == "" || filepath.IsAbs(rel) {
		t.Errorf("%s: want a path relative to the repository, got %q", what, rel)
		return
	}
	if _, err := os.Stat(filepath.Join(repoRoot, rel)); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

func TestTiltfileRefusesOtherClusters(t *testing.T) {
	tl, err := runTiltfile(t, "arn:aws:eks:eu-west-1:123456789012:cluster/prod")
	if err == nil {
		t.Fatal("the Tiltfile ran against a non-kind context")
	}
	if len(tl.calls["k8s_yaml"]) > 0 || len(tl.calls["docker_build"]) > 0 {
		t.Error("the Tiltfile deployed or built before checking the context")
	}
}

func TestTiltfileBuildsAndDeploysTheChart(t *testing.T) {
	tl, err := runTiltfile(t, kindContext)
	if err != nil {
		t.Fatalf("Tiltfile: %v", err)
	}
	allowed := tl.calls["allow_k8s_contexts"]
	if len(allowed) != 1 {
		t.Errorf("allow_k8s_contexts called %d times, want once", len(allowed))
	} else if got := allowed[0].strOrList(0, "contexts"); !slices.Equal(got, []string{kindContext}) {
		t.Errorf("allow_k8s_contexts(%v), want only %q", got, kindContext)
	}

	built := checkTiltBuilds(t, tl)
	m, namespace := tiltChart(t, tl)
	checkTiltNamespace(t, tl, namespace)

	// Every image the chart runs for a component is one Tilt builds, so Tilt can swap it in.
	for _, w := range m.workloads() {
		img := w.pod.Spec.Containers[0].Image
		repo := img[:strings.LastIndex(img, ":")]
		if _, ours := binaries[w.component]; ours {
			if _, ok := built[repo]; !ok {
				t.Errorf("%s runs %s, which the Tiltfile does not build", describe(w), img)
			}
		}
	}

	checkTiltResources(t, tl, m)
}

// checkTiltBuilds: one image per component, each built by the Dockerfile for that component
// from its module. It returns the images built, by reference, with their component.
func checkTiltBuilds(t *testing.T, tl *tilt) map[string]string {
	t.Helper()
	built := map[string]string{} // image -> component
	for _, b := range tl.calls["docker_build"] {
		ref, component := b.str(0, "ref"), b.arg(-1, "build_args")
		args, ok := component.(*starlark.Dict)
		if !ok {
			t.Errorf("docker_build(%s): no build_args", ref)
			continue
		}
		v, _, _ := args.Get(starlark.String("COMPONENT"))
		name, _ := starlark.AsString(v)
		built[ref] = name
		mustExist(t, "docker_build context of "+ref, b.str(1, "context"))
		mustExist(t, "dockerfile of "+ref, b.str(-1, "dockerfile"))
		only := b.strs(-1, "only")
		if len(only) == 0 {
			t.Errorf("docker_build(%s): no `only`, every file change would rebuild it", ref)
		}
		for _, p := range only {
			mustExist(t, "docker_build only of "+ref, p)
		}
		// The Dockerfile builds with GOWORK=off: the context needs pkg and the component's module.
		if !slices.Contains(only, "pkg") || !slices.ContainsFunc(only, func(p string) bool {
			_, err := os.Stat(filepath.Join(repoRoot, p, "go.mod"))
			return p != "pkg" && err == nil
		}) {
			t.Errorf("docker_build(%s): only=%v lacks pkg or the component's module", ref, only)
		}
	}
	for _, c := range serviceComponents {
		if !slices.Contains(mapValues(built), c) {
			t.Errorf("no image is built for %s", c)
		}
	}
	if len(built) != len(serviceComponents) {
		t.Errorf("built %v, want one image per component %v", built, serviceComponents)
	}
	return built
}

// tiltChart is the chart the Tiltfile deploys, with the development values, rendered as Tilt
// renders it, and the namespace it goes into.
func tiltChart(t *testing.T, tl *tilt) (*manifest, string) {
	t.Helper()
	helms := tl.calls["helm"]
	if len(helms) != 1 {
		t.Fatalf("helm called %d times, want once", len(helms))
	}
	h := helms[0]
	chartPath, release, namespace := h.str(0, "pathToChartDir"), h.str(-1, "name"), h.str(-1, "namespace")
	mustExist(t, "helm chart", chartPath)
	if filepath.Clean(filepath.Join(repoRoot, chartPath)) != filepath.Clean(chartDir) {
		t.Errorf("helm deploys %s, want charts/trigger-api", chartPath)
	}
	valuesFiles := h.strs(-1, "values")
	if !slices.Contains(valuesFiles, "charts/trigger-api/values-dev.yaml") {
		t.Errorf("helm values %v lack charts/trigger-api/values-dev.yaml", valuesFiles)
	}
	vals := map[string]any{}
	for _, f := range valuesFiles {
		mustExist(t, "helm values", f)
		vs := valueSet{name: f, file: filepath.Join(repoRoot, f)}
		for k, v := range vs.values(t) {
			vals[k] = v
		}
	}
	if len(h.strs(-1, "set")) > 0 {
		t.Errorf("helm --set %v: development settings belong in values-dev.yaml", h.strs(-1, "set"))
	}
	// Tilt runs `helm template`: no cluster to read anything back from.
	m := renderOffline(t, release, namespace, vals)
	return m, namespace
}

// checkTiltNamespace: the chart goes into a namespace the Tiltfile creates, under the restricted
// pod standard.
func checkTiltNamespace(t *testing.T, tl *tilt, namespace string) {
	t.Helper()
	created := false
	for _, b := range tl.calls["blob"] {
		doc := b.str(0, "contents")
		if strings.Contains(doc, "kind: Namespace") && strings.Contains(doc, "name: "+namespace) {
			created = true
			if !strings.Contains(doc, "pod-security.kubernetes.io/enforce: restricted") {
				t.Errorf("namespace %s does not enforce the restricted pod security standard", namespace)
			}
		}
	}
	if !created {
		t.Errorf("the Tiltfile does not create namespace %q", namespace)
	}
}

// checkTiltResources: each resource names a rendered workload, forwards a port it opens, and
// depends only on resources that exist; the services wait for the tables.
func checkTiltResources(t *testing.T, tl *tilt, m *manifest) {
	t.Helper()
	resources := map[string]call{}
	workloads := map[string]workload{}
	for _, w := range m.workloads() {
		workloads[w.name] = w
	}
	for _, r := range tl.calls["k8s_resource"] {
		name := r.str(0, "workload")
		w, ok := workloads[name]
		if !ok {
			t.Errorf("k8s_resource(%q): the chart renders no such workload", name)
			continue
		}
		if nn := r.str(-1, "new_name"); nn != "" {
			name = nn
		}
		resources[name] = r
		for _, pf := range r.strs(-1, "port_forwards") {
			_, remote, _ := strings.Cut(pf, ":")
			port, _ := strconv.Atoi(remote)
			if !slices.ContainsFunc(w.pod.Spec.Containers[0].Ports, func(p corev1.ContainerPort) bool { return int(p.ContainerPort) == port }) {
				t.Errorf("resource %s forwards %s, but %s opens no port %d", name, pf, w.name, port)
			}
		}
	}
	for name, r := range resources {
		for _, dep := range r.strs(-1, "resource_deps") {
			if _, ok := resources[dep]; !ok {
				t.Errorf("resource %s depends on unknown resource %s", name, dep)
			}
		}
	}
	checkWaitForTables(t, m, resources)
}

// checkWaitForTables: every one of the project's workloads but the tables Job has a Tilt
// resource, and each waits, directly or not, for the one that runs the tables Job.
func checkWaitForTables(t *testing.T, m *manifest, resources map[string]call) {
	t.Helper()
	dependsOn := func(from, to string) bool {
		seen := map[string]bool{}
		var walk func(string) bool
		walk = func(n string) bool {
			if n == to {
				return true
			}
			if seen[n] {
				return false
			}
			seen[n] = true
			for _, d := range resources[n].strs(-1, "resource_deps") {
				if walk(d) {
					return true
				}
			}
			return false
		}
		return walk(from)
	}
	tables, _ := m.workload("tables")
	tablesResource := ""
	for name, r := range resources {
		if r.str(0, "workload") == tables.name {
			tablesResource = name
		}
	}
	if tablesResource == "" {
		t.Fatal("no Tilt resource runs the tables Job")
	}
	for _, w := range m.workloads() {
		if _, ours := binaries[w.component]; !ours || w.component == "tables" {
			continue
		}
		found := false
		for name, r := range resources {
			if r.str(0, "workload") == w.name {
				found = true
				if !dependsOn(name, tablesResource) {
					t.Errorf("resource %s does not wait for %s", name, tablesResource)
				}
			}
		}
		if !found {
			t.Errorf("%s has no Tilt resource (no port forward, no ordering)", describe(w))
		}
	}
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestTiltfileRendersForTheKindNode: the kind node image is pinned by digest, the Tiltfile
// renders the chart for that node's Kubernetes, and the chart supports it.
func TestTiltfileRendersForTheKindNode(t *testing.T) {
	var cluster struct {
		Nodes []struct {
			Role  string `yaml:"role"`
			Image string `yaml:"image"`
		} `yaml:"nodes"`
	}
	if err := yaml.Unmarshal(readFile(t, "deploy/kind/cluster.yaml"), &cluster); err != nil {
		t.Fatal(err)
	}
	if len(cluster.Nodes) == 0 {
		t.Fatal("deploy/kind/cluster.yaml has no nodes")
	}
	node := regexp.MustCompile(`^kindest/node:v(\d+\.\d+\.\d+)@sha256:[0-9a-f]{64}$`)
	version := ""
	for _, n := range cluster.Nodes {
		m := node.FindStringSubmatch(n.Image)
		if m == nil {
			t.Fatalf("%s node image %q: want kindest/node:vX.Y.Z@sha256:<digest>", n.Role, n.Image)
		}
		if version != "" && m[1] != version {
			t.Fatalf("nodes run Kubernetes %s and %s", version, m[1])
		}
		version = m[1]
	}

	tl, err := runTiltfile(t, kindContext)
	if err != nil {
		t.Fatalf("Tiltfile: %v", err)
	}
	if got := tl.calls["helm"][0].str(-1, "kube_version"); strings.TrimPrefix(got, "v") != version {
		t.Errorf("helm(kube_version=%q), want the kind node's %s", got, version)
	}
	if c := loadChart(t); !chartutil.IsCompatibleRange(c.Metadata.KubeVersion, version) {
		t.Errorf("the chart's kubeVersion %q excludes the kind node's %s", c.Metadata.KubeVersion, version)
	}
}
