{{/* Chart name, truncated to the 63 characters Kubernetes names allow. */}}
{{- define "bukva.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped name; the release name alone when it already contains the chart name.
The InferenceService gets this name, so KServe's Services are <fullname>-predictor and
<fullname>-transformer. Kept short: KServe appends suffixes to it. */}}
{{- define "bukva.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else if contains (include "bukva.name" .) .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "bukva.name" .) | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "bukva.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries; call with (dict "root" $ "component" "frontend"). */}}
{{- define "bukva.labels" -}}
helm.sh/chart: {{ include "bukva.chart" .root }}
{{ include "bukva.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: bukva
{{- end }}

{{- define "bukva.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bukva.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* repository:tag of an image value; a tag is required (no implicit latest). */}}
{{- define "bukva.image" -}}
{{- printf "%s:%s" .repository (required "image tag is required (no implicit latest)" .tag) }}
{{- end }}

{{/* KServe's Service for a component in Standard mode: <isvc>-<component>, port 80. */}}
{{- define "bukva.kserveHost" -}}
{{- printf "%s-%s" (include "bukva.fullname" .root) .component }}
{{- end }}

{{- define "bukva.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.runAsUser }}
runAsGroup: {{ .Values.runAsUser }}
fsGroup: {{ .Values.runAsUser }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "bukva.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{/* S3 endpoint and credentials (from the platform's Secret) for a container's env. */}}
{{- define "bukva.s3Env" -}}
- name: AWS_ENDPOINT_URL
  value: {{ .Values.platform.s3Endpoint | quote }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .Values.platform.s3Secret }}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.platform.s3Secret }}
      key: AWS_SECRET_ACCESS_KEY
{{- end }}

{{/* Probes for a KServe v2 server on the named port. The startup probe gives the predictor
time to download the champion from MLflow before liveness starts counting. */}}
{{- define "bukva.kserveProbes" -}}
startupProbe:
  httpGet: {path: /v2/health/live, port: {{ .port }}}
  periodSeconds: 5
  failureThreshold: 60
readinessProbe:
  httpGet: {path: /v2/models/{{ .model }}/ready, port: {{ .port }}}
  periodSeconds: 10
  failureThreshold: 3
livenessProbe:
  httpGet: {path: /v2/health/live, port: {{ .port }}}
  periodSeconds: 20
  timeoutSeconds: 5
  failureThreshold: 3
{{- end }}
