{{/* Chart name, truncated to the 63 characters Kubernetes names allow. */}}
{{- define "platform.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped name; the release name alone when it already contains the chart name. */}}
{{- define "platform.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "platform.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "platform.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Name of one component's objects: <fullname>-<component>. */}}
{{- define "platform.component" -}}
{{- printf "%s-%s" (include "platform.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "platform.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries; call with (dict "root" $ "component" "minio"). */}}
{{- define "platform.labels" -}}
helm.sh/chart: {{ include "platform.chart" .root }}
{{ include "platform.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: bukva
{{- end }}

{{/* The stable subset used in selectors (never change these on upgrade). */}}
{{- define "platform.selectorLabels" -}}
app.kubernetes.io/name: {{ include "platform.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* repository:tag of an image value ({repository, tag}). */}}
{{- define "platform.image" -}}
{{- printf "%s:%s" .repository (required "image tag is required (no implicit latest)" .tag) }}
{{- end }}

{{/* Secret holding AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY for the S3 endpoint. */}}
{{- define "platform.s3SecretName" -}}
{{- .Values.s3.existingSecret | default (include "platform.component" (dict "root" . "component" "s3")) }}
{{- end }}

{{/* Secret holding the PostgreSQL password (key: password). */}}
{{- define "platform.postgresSecretName" -}}
{{- .Values.postgres.existingSecret | default (include "platform.component" (dict "root" . "component" "postgres")) }}
{{- end }}

{{/* The S3 endpoint URL every client uses: the in-cluster MinIO, or s3.endpoint. */}}
{{- define "platform.s3Endpoint" -}}
{{- if .Values.minio.enabled }}
{{- printf "http://%s:%d" (include "platform.component" (dict "root" . "component" "minio")) (int .Values.minio.service.apiPort) }}
{{- else }}
{{- required "s3.endpoint is required when minio.enabled is false" .Values.s3.endpoint }}
{{- end }}
{{- end }}

{{/* Pod-level security context shared by every pod of the chart. */}}
{{- define "platform.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .runAsUser }}
runAsGroup: {{ .runAsUser }}
fsGroup: {{ .runAsUser }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container-level security context shared by every container of the chart. */}}
{{- define "platform.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ .readOnlyRootFilesystem | default false }}
capabilities:
  drop: ["ALL"]
{{- end }}

{{/* env entries for the S3 credentials, read from the S3 Secret. */}}
{{- define "platform.s3Env" -}}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "platform.s3SecretName" . }}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "platform.s3SecretName" . }}
      key: AWS_SECRET_ACCESS_KEY
- name: AWS_ENDPOINT_URL
  value: {{ include "platform.s3Endpoint" . | quote }}
{{- end }}
