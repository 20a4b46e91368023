package k8stest

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/pkg/api"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// The routes every public entry point carries, and nothing else: keys-admin is never among them.
var publicRoutes = map[string]string{"/events": "ingest", "/inbox": "inbox", "/ack": "inbox", "/nack": "inbox"}

// longPoll is the longest wait a pull may ask for: every proxy in front of inbox must outlast it.
const longPoll = time.Duration(api.MaxWaitSeconds) * time.Second

// TestChartHTTPRouteRoutesLikeTheIngress: the HTTPRoute attaches to the parents values name,
// routes exactly the Ingress's paths to the Services' ports, and lets a long poll finish.
func TestChartHTTPRouteRoutesLikeTheIngress(t *testing.T) {
	rendered := 0
	for name, m := range renderSets(t) {
		t.Run(name, func(t *testing.T) {
			for _, r := range m.httpRoutes {
				rendered++
				if got, want := normalize(t, r.Spec.ParentRefs), normalize(t, m.value("httpRoute.parentRefs")); !reflect.DeepEqual(got, want) {
					t.Errorf("HTTPRoute %s parents %v, want httpRoute.parentRefs %v", r.Name, got, want)
				}
				routes := map[string]string{}
				for _, rule := range r.Spec.Rules {
					if len(rule.BackendRefs) != 1 {
						t.Fatalf("HTTPRoute %s: rule with %d backends, want 1", r.Name, len(rule.BackendRefs))
					}
					ref := rule.BackendRefs[0].BackendObjectReference
					svc := m.service(string(ref.Name))
					if svc == nil || ref.Port == nil || int32(*ref.Port) != svc.Spec.Ports[0].Port {
						t.Fatalf("HTTPRoute %s routes to %s port %v, which no rendered Service serves", r.Name, ref.Name, ref.Port)
					}
					for _, match := range rule.Matches {
						path, kind := *match.Path.Value, *match.Path.Type
						// Prefix for the collections, exact for the two settle calls, as the Ingress does.
						if wantPrefix := path == "/events" || path == "/inbox"; wantPrefix != (kind == gatewayv1.PathMatchPathPrefix) {
							t.Errorf("HTTPRoute %s: %s matched as %s", r.Name, path, kind)
						}
						routes[path] = svc.Spec.Selector[labelComponent]
					}
					checkRouteTimeout(t, r.Name, rule.Timeouts)
				}
				if !reflect.DeepEqual(routes, publicRoutes) {
					t.Errorf("HTTPRoute %s routes %v, want %v", r.Name, routes, publicRoutes)
				}
			}
		})
	}
	if rendered == 0 {
		t.Error("no value set renders an HTTPRoute")
	}
}

func checkRouteTimeout(t *testing.T, route string, to *gatewayv1.HTTPRouteTimeouts) {
	t.Helper()
	if to == nil || to.Request == nil {
		t.Errorf("HTTPRoute %s: no request timeout; the gateway's default may cut a long poll", route)
		return
	}
	d, err := time.ParseDuration(string(*to.Request))
	if err != nil || d <= longPoll {
		t.Errorf("HTTPRoute %s: request timeout %q, want above the longest long poll %v", route, *to.Request, longPoll)
	}
}

// TestChartIngressAnnotationsCoverLongPolls: with the AWS Load Balancer Controller or
// ingress-nginx, the chart's annotations let a long poll finish, and the ALB keeps a stopping
// pod's requests as long as the pod may still answer them.
func TestChartIngressAnnotationsCoverLongPolls(t *testing.T) {
	classes := map[string]bool{}
	for name, m := range renderSets(t) {
		t.Run(name, func(t *testing.T) {
			for _, ing := range m.ingresses {
				class := ""
				if ing.Spec.IngressClassName != nil {
					class = *ing.Spec.IngressClassName
				}
				classes[class] = true
				switch class {
				case "alb":
					checkALB(t, m, ing.Annotations)
				case "nginx":
					for _, k := range []string{"nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"} {
						if s := seconds(t, k, ing.Annotations[k]); s <= longPoll {
							t.Errorf("%s %v, want above the longest long poll %v", k, s, longPoll)
						}
					}
				}
			}
		})
	}
	for _, c := range []string{"alb", "nginx"} {
		if !classes[c] {
			t.Errorf("no value set renders an Ingress of class %s: its annotations go unchecked", c)
		}
	}
}

func checkALB(t *testing.T, m *manifest, ann map[string]string) {
	t.Helper()
	const prefix = "alb.ingress.kubernetes.io/"
	// ClusterIP Services have no node port for instance targets.
	if got := ann[prefix+"target-type"]; got != "ip" {
		t.Errorf("target-type %q, want ip", got)
	}
	w, ok := m.workload("ingest")
	if !ok {
		t.Fatal("no ingest to check the ALB against")
	}
	c := w.pod.Spec.Containers[0]
	if got := ann[prefix+"healthcheck-path"]; c.ReadinessProbe == nil || got != c.ReadinessProbe.HTTPGet.Path {
		t.Errorf("healthcheck-path %q, want the readiness probe's path", got)
	}
	idle := seconds(t, "idle_timeout", albAttrs(ann[prefix+"load-balancer-attributes"])["idle_timeout.timeout_seconds"])
	if idle <= longPoll {
		t.Errorf("idle timeout %v, want above the longest long poll %v", idle, longPoll)
	}
	delay := seconds(t, "deregistration_delay", albAttrs(ann[prefix+"target-group-attributes"])["deregistration_delay.timeout_seconds"])
	drain, err := time.ParseDuration(m.resolveEnv(t, w)["TRIGGER_SHUTDOWN_TIMEOUT"])
	if err != nil {
		t.Fatal(err)
	}
	stopping := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds)*time.Second + drain
	if delay <= longPoll || delay < stopping {
		t.Errorf("deregistration delay %v, want above the longest long poll %v and at least preStop + drain %v", delay, longPoll, stopping)
	}
}

// albAttrs parses the controller's "key=value,key=value" attribute annotations.
func albAttrs(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok {
			out[k] = v
		}
	}
	return out
}

func seconds(t *testing.T, what, s string) time.Duration {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Errorf("%s: %q is not a number of seconds", what, s)
	}
	return time.Duration(n) * time.Second
}

// albReachable admits an ALB's VPC to the pods, which the chart requires of class alb.
const albReachable = "networkPolicy: {publicFrom: [{ipBlock: {cidr: 10.0.0.0/16}}]}\n"

// TestChartIngressAnnotationsFromValuesWin: an annotation given in values replaces the chart's
// own, and only that one.
func TestChartIngressAnnotationsFromValuesWin(t *testing.T) {
	m := render(t, testRelease, testNamespace, readValues(t, albReachable+`ingress: {enabled: true, className: alb, annotations: {
  alb.ingress.kubernetes.io/healthcheck-path: /livez,
  alb.ingress.kubernetes.io/target-group-attributes: "deregistration_delay.timeout_seconds=90,slow_start.duration_seconds=30"}}`))
	ann := m.ingresses[0].Annotations
	for k, want := range map[string]string{
		"alb.ingress.kubernetes.io/healthcheck-path":         "/livez",
		"alb.ingress.kubernetes.io/target-group-attributes":  "deregistration_delay.timeout_seconds=90,slow_start.duration_seconds=30",
		"alb.ingress.kubernetes.io/target-type":              "ip",
		"alb.ingress.kubernetes.io/load-balancer-attributes": "idle_timeout.timeout_seconds=60",
	} {
		if ann[k] != want {
			t.Errorf("%s = %q, want %q", k, ann[k], want)
		}
	}
}

// TestChartRefusesTimeoutsShorterThanALongPoll: an annotation that would cut long polls or a
// stopping pod's requests, or a route with nowhere to attach, fails the release.
func TestChartRefusesTimeoutsShorterThanALongPoll(t *testing.T) {
	for _, tc := range []struct{ name, vals, want string }{
		{"alb-deregistration-below-long-poll", albReachable + `ingress: {enabled: true, className: alb, annotations: {alb.ingress.kubernetes.io/target-group-attributes: deregistration_delay.timeout_seconds=10}}`, "deregistration_delay"},
		{"alb-deregistration-below-shutdown", albReachable + "shutdown: {preStopSeconds: 15, timeoutSeconds: 25, terminationGracePeriodSeconds: 45}\n" + `ingress: {enabled: true, className: alb, annotations: {alb.ingress.kubernetes.io/target-group-attributes: "stickiness.enabled=false, deregistration_delay.timeout_seconds=30"}}`, "preStopSeconds + timeoutSeconds (40s)"},
		{"alb-idle-below-long-poll", albReachable + `ingress: {enabled: true, className: alb, annotations: {alb.ingress.kubernetes.io/load-balancer-attributes: idle_timeout.timeout_seconds=20}}`, "idle_timeout"},
		{"nginx-read-below-long-poll", `ingress: {enabled: true, className: nginx, annotations: {nginx.ingress.kubernetes.io/proxy-read-timeout: "15"}}`, "proxy-read-timeout"},
		{"httproute-without-parents", `httpRoute: {enabled: true}`, "parentRefs"},
		{"httproute-parent-without-name", `httpRoute: {enabled: true, parentRefs: [{namespace: gw}]}`, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderRelease(t, testRelease, testNamespace, readValues(t, tc.vals))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a refusal naming %q", err, tc.want)
			}
		})
	}
}
