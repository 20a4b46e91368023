{{/*
Names. Every object is named <fullname>-<component> and selected by name, instance and component,
so two releases in one namespace never select each other's pods.
*/}}
{{- define "trigger-api.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "trigger-api.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* <fullname>-<component>; takes (dict "root" $ "component" "ingest"). */}}
{{- define "trigger-api.componentName" -}}
{{- printf "%s-%s" (include "trigger-api.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- /* The headless Service that resolves to every inbox pod's notify port. */}}
{{- define "trigger-api.notifyServiceName" -}}
{{- printf "%s-notify" (include "trigger-api.componentName" (dict "root" . "component" "inbox") | trunc 56 | trimSuffix "-") }}
{{- end }}

{{/* The headless Service naming every pod of a component, which counts them to share tenant rates. Takes (dict "root" $ "component" name). */}}
{{- define "trigger-api.peersServiceName" -}}
{{- printf "%s-peers" (include "trigger-api.componentName" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{- define "trigger-api.selectorLabels" -}}
app.kubernetes.io/name: {{ include "trigger-api.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "trigger-api.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "trigger-api.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: trigger-api
{{- end }}

{{/* What talks to DynamoDB: the three services and the tables Job; the worker only calls the inbox API. */}}
{{- define "trigger-api.dynamoComponents" -}}
ingest inbox keys-admin tables
{{- end }}

{{- define "trigger-api.image" -}}
{{- $root := .root }}
{{- $img := .image | default dict }}
{{- $repo := $img.repository | default (printf "%s/%s" $root.Values.image.repository .component) }}
{{- $tag := $img.tag | default $root.Values.image.tag | default $root.Chart.AppVersion }}
{{- $digest := get ($root.Values.image.digests | default dict) .component }}
{{- if $digest }}
{{- printf "%s@%s" $repo $digest }}
{{- else }}
{{- printf "%s:%s" $repo $tag }}
{{- end }}
{{- end }}

{{- define "trigger-api.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "trigger-api.fullname" .)) }}
{{- end }}

{{- define "trigger-api.demoKeysSecretName" -}}
{{- printf "%s-demo-keys" (include "trigger-api.fullname" .) }}
{{- end }}

{{- define "trigger-api.dynamodbEndpoint" -}}
{{- if .Values.dynamodbLocal.enabled }}
{{- printf "http://%s:8000" (include "trigger-api.componentName" (dict "root" . "component" "dynamodb-local")) }}
{{- else }}
{{- .Values.dynamodb.endpoint }}
{{- end }}
{{- end }}

{{- define "trigger-api.otelEndpoint" -}}
{{- if .Values.otel.endpoint }}
{{- .Values.otel.endpoint }}
{{- else if .Values.jaeger.enabled }}
{{- $port := ternary 4317 4318 (eq .Values.otel.protocol "grpc") }}
{{- printf "http://%s:%d" (include "trigger-api.componentName" (dict "root" . "component" "jaeger")) $port }}
{{- end }}
{{- end }}

{{/*
The non-secret settings of one binary, as ConfigMap data: the wiring the chart owns, then the
component's own env map. Takes (dict "root" $ "component" name "values" componentValues).
The names are checked against each binary's envconfig struct in deploy/tests/chart.
*/}}
{{- define "trigger-api.config" -}}
{{- $root := .root }}
{{- $v := .values | default dict }}
{{- $cfg := dict "TRIGGER_LOG_LEVEL" $root.Values.logLevel }}
{{- if $v.port }}
{{- $_ := set $cfg "TRIGGER_HTTP_ADDR" (printf ":%d" (int $v.port)) }}
{{- $_ := set $cfg "TRIGGER_SHUTDOWN_TIMEOUT" (printf "%ds" (int $root.Values.shutdown.timeoutSeconds)) }}
{{- end }}
{{- if $v.metricsPort }}
{{- $_ := set $cfg "TRIGGER_METRICS_ADDR" (printf ":%d" (int $v.metricsPort)) }}
{{- end }}
{{- if and $root.Values.metrics.tenantLabel (has .component (list "ingest" "inbox" "worker")) }}
{{- $_ := set $cfg "TRIGGER_METRICS_TENANT_LABEL" "true" }}
{{- end }}
{{- if has .component (splitList " " (include "trigger-api.dynamoComponents" $root)) }}
{{- $_ := mergeOverwrite $cfg (include "trigger-api.dynamoConfig" $root | fromYaml) }}
{{- end }}
{{- $inboxCfg := $root.Values.components.inbox }}
{{- if and (has .component (list "ingest" "inbox")) $inboxCfg.enabled $inboxCfg.notifyPort }}
{{- $_ := set $cfg "TRIGGER_NOTIFY_PEERS" (printf "%s.%s.svc:%d" (include "trigger-api.notifyServiceName" $root) $root.Release.Namespace (int $inboxCfg.notifyPort)) }}
{{- if eq .component "inbox" }}
{{- $_ := set $cfg "TRIGGER_NOTIFY_ADDR" (printf ":%d" (int $inboxCfg.notifyPort)) }}
{{- end }}
{{- end }}
{{- if and $root.Values.fleetWideTenantRate (has .component (list "ingest" "inbox")) }}
{{- $_ := set $cfg "TRIGGER_TENANT_RATE_REPLICAS" (printf "%s.%s.svc" (include "trigger-api.peersServiceName" (dict "root" $root "component" .component)) $root.Release.Namespace) }}
{{- end }}
{{- if eq .component "worker" }}
{{- $inbox := printf "http://%s:%d" (include "trigger-api.componentName" (dict "root" $root "component" "inbox")) (int $root.Values.components.inbox.port) }}
{{- $_ := set $cfg "TRIGGER_INBOX_URL" $inbox }}
{{- end }}
{{- if ne .component "tables" }}
{{- $otel := include "trigger-api.otelEndpoint" $root }}
{{- /*
No OTEL_SERVICE_NAME: service.name stays the binary's own ("ingest", ...), which the dashboard and
trace searches select on. service.namespace tells releases apart; the pod and its namespace come
from the downward API (POD_NAME, POD_NAMESPACE in the pod template).
*/}}
{{- $_ := set $cfg "OTEL_RESOURCE_ATTRIBUTES" (printf "service.namespace=%s" (include "trigger-api.fullname" $root)) }}
{{- if $otel }}
{{- $_ := set $cfg "OTEL_EXPORTER_OTLP_ENDPOINT" $otel }}
{{- $_ := set $cfg "OTEL_EXPORTER_OTLP_PROTOCOL" $root.Values.otel.protocol }}
{{- else }}
{{- $_ := set $cfg "OTEL_TRACES_EXPORTER" "none" }}
{{- end }}
{{- end }}
{{- range $k, $val := $v.env }}
{{- $_ := set $cfg $k (toString $val) }}
{{- end }}
{{- range $k := keys $cfg | sortAlpha }}
{{ $k }}: {{ get $cfg $k | quote }}
{{- end }}
{{- end }}

{{/*
DynamoDB settings, empty ones left out (the binary's defaults apply). With a DynamoDB Local, in the
cluster or at dynamodb.endpoint: static credentials, which it accepts and ignores; without them the
AWS chain would end at the instance metadata service, which a pod outside AWS cannot reach.
*/}}
{{- define "trigger-api.dynamoConfig" -}}
{{- $endpoint := include "trigger-api.dynamodbEndpoint" . }}
{{- $region := .Values.dynamodb.region }}
{{- if and .Values.dynamodbLocal.enabled (not $region) }}{{ $region = "us-east-1" }}{{ end }}
{{- with $region }}
TRIGGER_DYNAMODB_REGION: {{ . | quote }}
{{- end }}
{{- with $endpoint }}
TRIGGER_DYNAMODB_ENDPOINT: {{ . | quote }}
{{- end }}
{{- with .Values.dynamodb.tablePrefix }}
TRIGGER_TABLE_PREFIX: {{ . | quote }}
{{- end }}
{{- if or .Values.dynamodbLocal.enabled .Values.dynamodb.endpoint }}
{{- /* DynamoDB Local 2.x refuses an access key id that is not letters and digits only. */}}
AWS_ACCESS_KEY_ID: "dynamodblocal"
AWS_SECRET_ACCESS_KEY: "dynamodblocal"
{{- end }}
{{- end }}

{{/*
Restricted pod security, fixed rather than configurable. uid 65532 is distroless's nonroot user;
the development images run as their own numeric users. Every image copes with a read-only root
and a writable /tmp.
*/}}
{{- define "trigger-api.podSecurityContext" -}}
{{- $uid := .runAsUser | default 65532 }}
runAsNonRoot: true
runAsUser: {{ $uid }}
runAsGroup: {{ $uid }}
fsGroup: {{ $uid }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "trigger-api.containerSecurityContext" -}}
runAsNonRoot: true
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
The one pod template every workload renders. Takes a dict:
  root, component, image, resources (required)
  command, args, port (or ports), httpProbes (bool), probes (object), env (list), podIdentity (bool: the
  project's binaries, which name their pod in telemetry), configMap (name), preStopSeconds,
  terminationGracePeriodSeconds, restartPolicy, annotations, automountToken, notGo (no GOMAXPROCS), runAsUser, scheduling (values with
  nodeSelector/tolerations/affinity/topologySpreadConstraints), extraVolumeMounts, extraVolumes
*/}}
{{- define "trigger-api.podTemplate" -}}
{{- $root := .root }}
{{- $sched := .scheduling | default dict -}}
metadata:
  labels:
    {{- include "trigger-api.labels" (dict "root" $root "component" .component) | nindent 4 }}
  {{- with .annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  serviceAccountName: {{ include "trigger-api.componentName" (dict "root" $root "component" .component) }}
  automountServiceAccountToken: {{ .automountToken | default false }}
  enableServiceLinks: false
  {{- with .restartPolicy }}
  restartPolicy: {{ . }}
  {{- end }}
  {{- with .terminationGracePeriodSeconds }}
  terminationGracePeriodSeconds: {{ . }}
  {{- end }}
  securityContext:
    {{- include "trigger-api.podSecurityContext" . | nindent 4 }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ .component }}
      image: {{ .image | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      {{- with .command }}
      command:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .args }}
      args:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if .port }}
      ports:
        - name: http
          containerPort: {{ .port }}
          protocol: TCP
      {{- else if .ports }}
      ports:
        {{- toYaml .ports | nindent 8 }}
      {{- end }}
      {{- if .configMap }}
      envFrom:
        - configMapRef:
            name: {{ .configMap }}
      {{- end }}
      {{- if or .env (not .notGo) .podIdentity }}
      env:
        {{- with .env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- if .podIdentity }}
        # pkg/telemetry puts these on every span and metric as k8s.pod.name and k8s.namespace.name.
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        {{- end }}
        {{- if not .notGo }}
        # The Go runtime sizes itself from the container's CPU limit, not the node's. No
        # GOMEMLIMIT: the binary sets 90 % of its cgroup's memory limit (pkg/startup), where the
        # whole limit, as resourceFieldRef gives it, would leave nothing for what Go does not manage.
        - name: GOMAXPROCS
          valueFrom:
            resourceFieldRef:
              resource: limits.cpu
              divisor: "1"
        {{- end }}
      {{- end }}
      {{- if .httpProbes }}
      startupProbe:
        httpGet:
          path: /livez
          port: http
        periodSeconds: 2
        failureThreshold: 30
      livenessProbe:
        httpGet:
          path: /livez
          port: http
        periodSeconds: 10
        timeoutSeconds: 2
        failureThreshold: 3
      readinessProbe:
        httpGet:
          path: /readyz
          port: http
        periodSeconds: 5
        timeoutSeconds: 2
        failureThreshold: 2
      {{- end }}
      {{- with .probes }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
      {{- with .preStopSeconds }}
      lifecycle:
        # Endpoints and load balancers stop sending new requests before SIGTERM starts the drain.
        preStop:
          sleep:
            seconds: {{ . }}
      {{- end }}
      resources:
        {{- required (printf "resources for %s" .component) .resources | toYaml | nindent 8 }}
      securityContext:
        {{- include "trigger-api.containerSecurityContext" . | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- with .extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- with .extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $sched.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $sched.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $sched.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $sched.topologySpreadConstraints }}
  {{- $selector := dict "matchLabels" (include "trigger-api.selectorLabels" (dict "root" $root "component" $.component) | fromYaml) }}
  {{- $constraints := list }}
  {{- range . }}
  {{- $constraints = append $constraints (merge (dict "labelSelector" $selector) .) }}
  {{- end }}
  topologySpreadConstraints:
    {{- toYaml $constraints | nindent 4 }}
  {{- end }}
{{- end }}

{{/* One ServiceAccount; takes (dict "root" $ "component" name "sa" serviceAccountValues). */}}
{{- define "trigger-api.serviceAccount" -}}
{{- $sa := .sa | default dict }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "trigger-api.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "trigger-api.labels" . | nindent 4 }}
  {{- $ann := deepCopy ($sa.annotations | default dict) }}
  {{- with $sa.roleArn }}
  {{- $_ := set $ann "eks.amazonaws.com/role-arn" . }}
  {{- end }}
  {{- with $ann }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: false
{{- end }}
