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
{{- if and .Values.dynamodbLocal.enabled .Values.dynamodb.endpoint }}
{{- fail "set either dynamodbLocal.enabled or dynamodb.endpoint, not both" }}
{{- end }}
{{- end }}
