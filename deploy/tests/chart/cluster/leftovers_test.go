package cluster_test

import (
	"context"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/trigger-api/trigger-api/deploy/tests/chart/cluster"
)

// leftovers lists every object in ns of every namespaced kind the API server lists, except what
// the cluster itself puts in each namespace and events. Helm hooks (the test Pod) are not
// deleted by `helm uninstall`, by Helm's design; they are named apart, as "hook:".
func leftovers(ctx context.Context, c *cluster.Cluster, ns string) ([]string, error) {
	lists, err := c.Client.Discovery().ServerPreferredNamespacedResources()
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	var left []string
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			return nil, err
		}
		for _, res := range l.APIResources {
			if !canList(res.Verbs) || res.Name == "events" {
				continue
			}
			objs, err := dyn.Resource(gv.WithResource(res.Name)).Namespace(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, err
			}
			for _, o := range objs.Items {
				name := res.Kind + "/" + o.GetName()
				switch {
				case name == "ServiceAccount/default" || name == "ConfigMap/kube-root-ca.crt":
				case o.GetAnnotations()["helm.sh/hook"] != "":
					left = append(left, "hook:"+name)
				default:
					left = append(left, name)
				}
			}
		}
	}
	return left, nil
}

func canList(verbs []string) bool {
	return strings.Contains(" "+strings.Join(verbs, " ")+" ", " list ")
}
