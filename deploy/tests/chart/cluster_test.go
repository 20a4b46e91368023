package k8stest

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
)

// fakeCluster is the little of an API server the chart's `lookup` calls reach: discovery of the
// core group and reads of Secrets, answered from secrets. It lets the tests render as
// `helm install` and `helm upgrade` do, which read the cluster, next to `helm template`, which
// cannot.
type fakeCluster struct {
	srv     *httptest.Server
	secrets map[string]corev1.Secret // by namespace/name
}

func newFakeCluster(t *testing.T, secrets ...corev1.Secret) *fakeCluster {
	t.Helper()
	c := &fakeCluster{secrets: map[string]corev1.Secret{}}
	for _, s := range secrets {
		c.secrets[s.Namespace+"/"+s.Name] = s
	}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *fakeCluster) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method != http.MethodGet:
		w.WriteHeader(http.StatusMethodNotAllowed)
	case r.URL.Path == "/api/v1":
		_ = json.NewEncoder(w).Encode(metav1.APIResourceList{
			TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
			GroupVersion: "v1",
			APIResources: []metav1.APIResource{{Name: "secrets", Namespaced: true, Kind: "Secret", Verbs: metav1.Verbs{"get", "list"}}},
		})
	// /api/v1/namespaces/<ns>/secrets[/<name>]
	case len(parts) >= 5 && parts[0] == "api" && parts[2] == "namespaces" && parts[4] == "secrets":
		c.secretsOf(w, parts[3], parts[5:])
	default:
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: "Failure", Reason: metav1.StatusReasonNotFound, Code: http.StatusNotFound})
	}
}

func (c *fakeCluster) secretsOf(w http.ResponseWriter, namespace string, name []string) {
	typed := func(s corev1.Secret) corev1.Secret {
		s.TypeMeta = metav1.TypeMeta{Kind: "Secret", APIVersion: "v1"}
		return s
	}
	if len(name) == 0 {
		// A namespace that does not exist yet lists empty, as the API server answers.
		list := corev1.SecretList{TypeMeta: metav1.TypeMeta{Kind: "SecretList", APIVersion: "v1"}, Items: []corev1.Secret{}}
		for _, s := range c.secrets {
			if s.Namespace == namespace {
				list.Items = append(list.Items, typed(s))
			}
		}
		_ = json.NewEncoder(w).Encode(list)
		return
	}
	s, ok := c.secrets[namespace+"/"+name[0]]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: "Failure", Reason: metav1.StatusReasonNotFound, Code: http.StatusNotFound,
			Details: &metav1.StatusDetails{Name: name[0], Kind: "secrets"}})
		return
	}
	_ = json.NewEncoder(w).Encode(typed(s))
}

// The engine asks only for a REST config; the rest of Helm's RESTClientGetter is not reached.
func (c *fakeCluster) ToRESTConfig() (*rest.Config, error) { return &rest.Config{Host: c.srv.URL}, nil }
func (c *fakeCluster) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return nil, errors.New("fakeCluster: no discovery client")
}
func (c *fakeCluster) ToRESTMapper() (meta.RESTMapper, error) {
	return nil, errors.New("fakeCluster: no REST mapper")
}

// installOn renders like `helm install --dry-run=server`: templates read cluster through lookup,
// nothing is applied. Capabilities stay the client's (kubeVersion), as for renderRelease.
func installOn(t *testing.T, cluster *fakeCluster, name, namespace string, vals map[string]any) (*release.Release, error) {
	t.Helper()
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}, RESTClientGetter: cluster})
	install.ClientOnly = true
	install.DryRun = true
	install.DryRunOption = "server"
	install.Replace = true
	install.ReleaseName = name
	install.Namespace = namespace
	install.KubeVersion = kv
	return install.Run(loadChart(t), vals)
}
