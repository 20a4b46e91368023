{{/* Combinations the schema cannot express; included by the Deployments so a bad release fails at render time. */}}
{{- define "trigger-api.validate" -}}
{{- $s := .Values.shutdown }}
{{- if ge (add $s.preStopSeconds $s.timeoutSeconds) (int $s.terminationGracePeriodSeconds) }}
{{- fail (printf "shutdown: preStopSeconds (%v) + timeoutSeconds (%v) must be below terminationGracePeriodSeconds (%v), or rolling updates cut requests" $s.preStopSeconds $s.timeoutSeconds $s.terminationGracePeriodSeconds) }}
{{- end }}
{{- $w := .Values.components.worker }}
{{- if and $w.enabled (not .Values.demo.enabled) (not .Values.secrets.existingSecret) (not .Values.secrets.workerApiKeys) }}
{{- fail "components.worker needs tenant API keys: set secrets.workerApiKeys, secrets.existingSecret (key worker-api-keys) or demo.enabled" }}
{{- end }}
{{- if and $w.enabled (not .Values.components.inbox.enabled) (not (hasKey $w.env "TRIGGER_INBOX_URL")) }}
{{- fail "components.worker calls the inbox: enable components.inbox or set components.worker.env.TRIGGER_INBOX_URL" }}
{{- end }}
{{- if and .Values.demo.enabled (not (index .Values.components "keys-admin").enabled) }}
{{- fail "demo.enabled creates tenants through keys-admin: enable components.keys-admin" }}
{{- end }}
{{- if and .Values.demo.enabled (not .Values.secrets.adminTokens) }}
{{- fail "demo.enabled needs secrets.adminTokens: the demo Job reads the admin token from the chart's Secret" }}
{{- end }}
{{- range $name, $c := .Values.components }}
{{- if and $c.port (eq (int $c.port) (int $c.metricsPort)) }}
{{- fail (printf "components.%s: metricsPort must differ from port (%v): scrapers are admitted to metricsPort, which must not serve the API" $name $c.port) }}
{{- end }}
{{- end }}
{{- /*
keys-admin must never admit the release's ingest or inbox pods. Peers given by labels are checked
against theirs; matchExpressions and ipBlocks cannot be judged here and are taken as written.
*/}}
{{- $nsLabels := dict "kubernetes.io/metadata.name" .Release.Namespace }}
{{- range $peer := .Values.networkPolicy.keysAdminFrom }}
{{- $ns := $peer.namespaceSelector | default dict }}
{{- $pods := $peer.podSelector | default dict }}
{{- if not (or $peer.ipBlock $ns.matchExpressions $pods.matchExpressions) }}
{{- $nsMatch := true }}
{{- range $k, $v := $ns.matchLabels }}{{ if ne (toString $v) (get $nsLabels $k) }}{{ $nsMatch = false }}{{ end }}{{ end }}
{{- range $c := list "ingest" "inbox" }}
{{- $labels := include "trigger-api.labels" (dict "root" $ "component" $c) | fromYaml }}
{{- $podMatch := true }}
{{- range $k, $v := $pods.matchLabels }}{{ if ne (toString $v) (toString (get $labels $k)) }}{{ $podMatch = false }}{{ end }}{{ end }}
{{- if and $nsMatch $podMatch }}
{{- fail (printf "networkPolicy.keysAdminFrom: peer %s admits the release's %s pods; name the operators' namespace or pods by a label only they carry" (toJson $peer) $c) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- /* An ALB in IP mode reaches the pods from the VPC's addresses, never from a pod of this namespace. */}}
{{- $np := .Values.networkPolicy }}
{{- if and .Values.ingress.enabled (eq .Values.ingress.className "alb") $np.enabled (empty $np.publicFrom) }}
{{- fail "ingress.className alb with networkPolicy.enabled needs networkPolicy.publicFrom (e.g. [{ipBlock: {cidr: <the VPC CIDR>}}]): otherwise the policies refuse the load balancer's health checks and requests" }}
{{- end }}
{{- $o := .Values.metrics.prometheusRule.alerts.inboxOldestEvent }}
{{- if and $o.classes (not .Values.metrics.tenantLabel) }}
{{- fail "metrics.prometheusRule.alerts.inboxOldestEvent.classes select tenants by the trigger_tenant_id label: set metrics.tenantLabel" }}
{{- end }}
{{- $seen := dict }}
{{- range $o.classes }}
{{- if or (eq .name "default") (hasKey $seen .name) }}
{{- fail (printf "metrics.prometheusRule.alerts.inboxOldestEvent.classes: class name %q is used twice or is \"default\", the name of every other tenant's rule" .name) }}
{{- end }}
{{- $_ := set $seen .name true }}
{{- end }}
{{- if and .Values.dynamodbLocal.enabled .Values.dynamodb.endpoint }}
{{- fail "set either dynamodbLocal.enabled or dynamodb.endpoint, not both" }}
{{- end }}
{{- end }}
