{{/* Configuration of the development Prometheus and Grafana (dev-observability.yaml). */}}
{{- define "trigger-api.devPrometheusConfig" -}}
global:
  scrape_interval: {{ .Values.prometheus.scrapeInterval }}
  evaluation_interval: {{ .Values.prometheus.scrapeInterval }}
scrape_configs:
  # Every container port named "metrics" of this release's pods, one job per component as the
  # local stack has them (deploy/local/devstack): the dashboard joins every series to
  # target_info on job and instance.
  - job_name: {{ .Release.Name | quote }}
    kubernetes_sd_configs:
      - role: pod
        namespaces:
          names: [{{ .Release.Namespace | quote }}]
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_instance]
        regex: {{ .Release.Name | quote }}
        action: keep
      - source_labels: [__meta_kubernetes_pod_container_port_name]
        regex: metrics
        action: keep
      - source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_component]
        target_label: job
      - source_labels: [__meta_kubernetes_pod_name]
        target_label: pod
{{- end }}

{{- define "trigger-api.grafanaDatasources" -}}
{{- $url := .Values.grafana.server.prometheusUrl }}
{{- if and (not $url) .Values.prometheus.enabled }}
{{- $url = printf "http://%s:9090" (include "trigger-api.componentName" (dict "root" . "component" "prometheus")) }}
{{- end }}
{{- if not $url }}
{{- fail "grafana.server needs a Prometheus: set prometheus.enabled or grafana.server.prometheusUrl" }}
{{- end -}}
apiVersion: 1
datasources:
  - name: Prometheus
    uid: prometheus
    type: prometheus
    access: proxy
    url: {{ $url | quote }}
    isDefault: true
    jsonData:
      {{- if .Values.prometheus.enabled }}
      timeInterval: {{ .Values.prometheus.scrapeInterval }}
      {{- end }}
      {{- if .Values.jaeger.enabled }}
      # An exemplar's trace_id label opens that trace in Jaeger.
      exemplarTraceIdDestinations:
        - name: trace_id
          datasourceUid: jaeger
      {{- end }}
  {{- if .Values.jaeger.enabled }}
  - name: Jaeger
    uid: jaeger
    type: jaeger
    access: proxy
    url: {{ printf "http://%s:16686" (include "trigger-api.componentName" (dict "root" . "component" "jaeger")) | quote }}
  {{- end }}
{{- end }}
