{{/*
What the public entry points (Ingress, HTTPRoute) share: the routes, and the timeouts a long poll
needs from whatever sits in front of the services.
*/}}

{{/* The longest long poll a pull may ask for, in seconds: pkg/events.MaxWaitSeconds (a test keeps them equal). */}}
{{- define "trigger-api.longPollSeconds" -}}
20
{{- end }}

{{/*
How long a proxy may wait on a quiet connection or an answer, in seconds: well above the longest
long poll, and below the services' keep-alive idle timeout (120 s, pkg/httpx), so the proxy, not
the service, closes idle connections and never reuses one the service just closed.
*/}}
{{- define "trigger-api.proxyTimeoutSeconds" -}}
60
{{- end }}

{{/*
The ALB target group's deregistration delay: a draining target keeps its in-flight requests that
long. It outlasts both the longest long poll and everything a stopping pod may still be doing
(preStopSeconds, then up to timeoutSeconds of drain).
*/}}
{{- define "trigger-api.deregistrationDelaySeconds" -}}
{{- $s := .Values.shutdown }}
{{- max (add (include "trigger-api.longPollSeconds" . | int) 5) (add $s.preStopSeconds $s.timeoutSeconds) }}
{{- end }}

{{/*
The public routes as YAML, a list of {path, pathType (Ingress), component, port}: /events* to
ingest; /inbox*, /ack and /nack to inbox. keys-admin is deliberately absent: the admin API stays
inside the cluster.
*/}}
{{- define "trigger-api.publicRoutes" -}}
{{- $ingest := .Values.components.ingest }}
{{- $inbox := .Values.components.inbox }}
{{- if not (or $ingest.enabled $inbox.enabled) }}
{{- fail "ingress.enabled and httpRoute.enabled route to ingest and inbox: enable at least one of them" }}
{{- end }}
{{- $routes := list }}
{{- if $ingest.enabled }}
{{- $routes = append $routes (dict "path" "/events" "pathType" "Prefix" "component" "ingest" "port" (int $ingest.port)) }}
{{- end }}
{{- if $inbox.enabled }}
{{- $routes = append $routes (dict "path" "/inbox" "pathType" "Prefix" "component" "inbox" "port" (int $inbox.port)) }}
{{- $routes = append $routes (dict "path" "/ack" "pathType" "Exact" "component" "inbox" "port" (int $inbox.port)) }}
{{- $routes = append $routes (dict "path" "/nack" "pathType" "Exact" "component" "inbox" "port" (int $inbox.port)) }}
{{- end }}
{{- toYaml (dict "routes" $routes) }}
{{- end }}

{{/*
The annotations the Ingress's controller needs for long polls, by ingress.className; the user's
ingress.annotations are merged over them. Unknown classes get none.
*/}}
{{- define "trigger-api.ingressDefaultAnnotations" -}}
{{- $proxy := include "trigger-api.proxyTimeoutSeconds" . }}
{{- if eq .Values.ingress.className "alb" }}
# Pods, not nodes: the Services are ClusterIP, and IP targets drain with the pod.
alb.ingress.kubernetes.io/target-type: ip
# /readyz turns 503 the moment a pod starts to stop, so the ALB stops choosing it.
alb.ingress.kubernetes.io/healthcheck-path: /readyz
alb.ingress.kubernetes.io/target-group-attributes: {{ printf "deregistration_delay.timeout_seconds=%s" (include "trigger-api.deregistrationDelaySeconds" .) | quote }}
alb.ingress.kubernetes.io/load-balancer-attributes: {{ printf "idle_timeout.timeout_seconds=%s" $proxy | quote }}
{{- else if eq .Values.ingress.className "nginx" }}
nginx.ingress.kubernetes.io/proxy-read-timeout: {{ $proxy | quote }}
nginx.ingress.kubernetes.io/proxy-send-timeout: {{ $proxy | quote }}
{{- end }}
{{- end }}

{{/*
Refuses annotations that would cut long polls or drains short: an ALB attribute or an nginx
timeout given in ingress.annotations is checked like the chart's own.
*/}}
{{- define "trigger-api.validateIngressTimeouts" -}}
{{- $long := include "trigger-api.longPollSeconds" . | int }}
{{- $s := .Values.shutdown }}
{{- $ann := .Values.ingress.annotations | default dict }}
{{- $attrs := dict }}
{{- range $key := list "alb.ingress.kubernetes.io/target-group-attributes" "alb.ingress.kubernetes.io/load-balancer-attributes" }}
{{- range $kv := splitList "," (get $ann $key) }}
{{- $pair := splitList "=" (trim $kv) }}
{{- if eq (len $pair) 2 }}{{ $_ := set $attrs (first $pair) (last $pair) }}{{ end }}
{{- end }}
{{- end }}
{{- with get $attrs "deregistration_delay.timeout_seconds" }}
{{- if or (le (int .) $long) (lt (int .) (int (add $s.preStopSeconds $s.timeoutSeconds))) }}
{{- fail (printf "ingress.annotations: deregistration_delay.timeout_seconds=%s must exceed the longest long poll (%ds) and cover shutdown.preStopSeconds + timeoutSeconds (%ds), or the ALB cuts requests of a stopping pod; leave it out and the chart sets %s" . $long (int (add $s.preStopSeconds $s.timeoutSeconds)) (include "trigger-api.deregistrationDelaySeconds" $)) }}
{{- end }}
{{- end }}
{{- with get $attrs "idle_timeout.timeout_seconds" }}
{{- if le (int .) $long }}
{{- fail (printf "ingress.annotations: idle_timeout.timeout_seconds=%s must exceed the longest long poll (%ds), or the ALB closes waiting pulls" . $long) }}
{{- end }}
{{- end }}
{{- range $key := list "nginx.ingress.kubernetes.io/proxy-read-timeout" "nginx.ingress.kubernetes.io/proxy-send-timeout" }}
{{- with get $ann $key }}
{{- if le (int .) $long }}
{{- fail (printf "ingress.annotations: %s=%s must exceed the longest long poll (%ds), or nginx answers 504 to waiting pulls" $key . $long) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Whether `helm test` has its Pod: it needs all three services. Non-empty means yes. */}}
{{- define "trigger-api.helmTestEnabled" -}}
{{- $c := .Values.components }}
{{- if and .Values.tests.enabled $c.ingest.enabled $c.inbox.enabled (index $c "keys-admin").enabled }}true{{ end }}
{{- end }}
