{{/*
Labels and annotations of one alert. Takes (dict "root" $ "alert" name "severity" s "summary" text
"description" text), and optionally "extraLabels" (a dict). The runbook link is the section of
docs/runbooks.md titled by the alert's name; the summary and description may hold Prometheus
templates ({{ $labels.x }}, {{ $value }}).
*/}}
{{- define "trigger-api.alertMeta" -}}
{{- $r := .root.Values.metrics.prometheusRule }}
{{- /* The alert's own severity and namespace win over alertLabels of the same name. */}}
{{- $labels := merge (dict "severity" .severity "namespace" .root.Release.Namespace) (deepCopy (.extraLabels | default dict)) (deepCopy ($r.alertLabels | default dict)) }}
labels:
  {{- toYaml $labels | nindent 2 }}
annotations:
  summary: {{ .summary | quote }}
  description: {{ .description | quote }}
  runbook_url: {{ printf "%s#%s" $r.runbookURL (lower .alert) | quote }}
{{- end }}
