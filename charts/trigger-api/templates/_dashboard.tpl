{{/*
The shipped dashboard as this release serves it, as JSON: one per release (its own uid and
title, so releases do not overwrite each other in Grafana), opening on this release's pods and on
the datasources given (uid or name; empty leaves Grafana's first of the type). Takes
(dict "root" $ "prometheus" uidOrName "tempo" uidOrName).
*/}}
{{- define "trigger-api.dashboardJSON" -}}
{{- $root := .root }}
{{- $ns := $root.Release.Namespace }}
{{- $full := include "trigger-api.fullname" $root }}
{{- $dash := $root.Files.Get "dashboards/trigger-api.json" | fromJson }}
{{- with $dash.Error }}{{ fail (printf "dashboards/trigger-api.json: %s" .) }}{{ end }}
{{- $_ := set $dash "uid" (printf "trigger-api-%s" (printf "%s/%s" $ns $full | sha256sum | trunc 16)) }}
{{- $_ := set $dash "title" (printf "Trigger API (%s/%s)" $ns $full) }}
{{- $current := dict "namespace" $ns "release" $full "prometheus" .prometheus "tempo" .tempo }}
{{- range $v := $dash.templating.list }}
{{- with get $current $v.name }}
{{- $_ := set $v "current" (dict "text" . "value" .) }}
{{- end }}
{{- end }}
{{- $dash | toPrettyJson }}
{{- end }}
