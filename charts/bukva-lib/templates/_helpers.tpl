{{/*
Helpers shared by charts/bukva and charts/bukva-platform (both link this library chart as
charts/<chart>/charts/bukva-lib). Every helper takes the chart's root context `.`, or a dict
naming it `root`, so the same definitions serve both charts.
*/}}

{{/* Chart name, truncated to the 63 characters Kubernetes names allow. */}}
{{- define "bukva-lib.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped object-name prefix: the release name alone when it already contains the
chart name, else <release>-<chart>. At most 40 characters: components append their own
suffix, and KServe appends more to an InferenceService's name (<isvc>-predictor-...). */}}
{{- define "bukva-lib.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- include "bukva-lib.prefix" (dict "release" .Release.Name "chart" (include "bukva-lib.name" .)) }}
{{- end }}
{{- end }}

{{/* The prefix rule itself, for a release of a chart: (dict "release" R "chart" C). The app
chart applies it to the platform's release name to find the platform's objects. */}}
{{- define "bukva-lib.prefix" -}}
{{- if contains .chart .release }}
{{- .release | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .release .chart | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Name of one component's objects: <fullname>-<component>; (dict "root" $ "component" C). */}}
{{- define "bukva-lib.component" -}}
{{- printf "%s-%s" (include "bukva-lib.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "bukva-lib.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries; call with (dict "root" $ "component" "minio"). */}}
{{- define "bukva-lib.labels" -}}
helm.sh/chart: {{ include "bukva-lib.chart" .root }}
{{ include "bukva-lib.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: bukva
{{- end }}

{{/* The stable subset used in selectors (never change these on upgrade). */}}
{{- define "bukva-lib.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bukva-lib.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* repository:tag of an image value ({repository, tag}); a tag is required (no implicit
latest). */}}
{{- define "bukva-lib.image" -}}
{{- printf "%s:%s" .repository (required "image tag is required (no implicit latest)" .tag) }}
{{- end }}

{{/* Pod-level security context: non-root as (dict "runAsUser" UID). */}}
{{- define "bukva-lib.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .runAsUser }}
runAsGroup: {{ .runAsUser }}
fsGroup: {{ .runAsUser }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container-level security context; (dict "readOnlyRootFilesystem" true) for a read-only
root (the default is writable: MinIO, PostgreSQL and MLflow write outside their volumes). */}}
{{- define "bukva-lib.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ .readOnlyRootFilesystem | default false }}
capabilities:
  drop: ["ALL"]
{{- end }}

{{/* env entries for the S3 credentials, read from the Secret named (dict "secret" NAME);
every S3 client (boto3, MLflow, DVC, MinIO's root user via its own names) reads these two. */}}
{{- define "bukva-lib.s3Credentials" -}}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: AWS_SECRET_ACCESS_KEY
{{- end }}

{{/* The platform's objects, for a platform object-name prefix: (dict "prefix" P). The
platform chart publishes its service URLs in the ConfigMap (keys below); the app chart and
the training Jobs read them from there, so each URL is written in one template only. */}}
{{- define "bukva-lib.endpointsConfigMap" -}}
{{- printf "%s-endpoints" .prefix }}
{{- end }}

{{/* One env entry read from the platform's endpoints ConfigMap:
(dict "prefix" P "name" ENV "key" KEY "optional" BOOL). */}}
{{- define "bukva-lib.endpointEnv" -}}
- name: {{ .name }}
  valueFrom:
    configMapKeyRef:
      name: {{ include "bukva-lib.endpointsConfigMap" . }}
      key: {{ .key | default .name }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end }}

{{/* A NetworkPolicy admitting to one component's pods only what is listed:
(dict "root" $ "component" C "rules" (list (dict "ports" PORTS "from" COMPONENTS "ingress" BOOL)...)).
PORTS are the pods' container port names or numbers; COMPONENTS are the
app.kubernetes.io/component labels of bukva pods in this namespace that may connect; "ingress"
also admits the ingress controller's namespaces (networkPolicy.ingressNamespaces). Nothing else
reaches the pods (egress is not restricted). */}}
{{- define "bukva-lib.networkPolicy" -}}
{{- $root := .root }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "bukva-lib.component" (dict "root" $root "component" .component) }}
  labels:
    {{- include "bukva-lib.labels" (dict "root" $root "component" .component) | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "bukva-lib.selectorLabels" (dict "root" $root "component" .component) | nindent 6 }}
  policyTypes: [Ingress]
  ingress:
    {{- range .rules }}
    {{- /* a rule with no peer would admit everyone: it is left out instead */}}
    {{- if or .from .ingress }}
    - ports:
        {{- range .ports }}
        - port: {{ . }}
          protocol: TCP
        {{- end }}
      from:
        {{- range .from }}
        - podSelector:
            matchLabels:
              app.kubernetes.io/part-of: bukva
              app.kubernetes.io/component: {{ . }}
        {{- end }}
        {{- if .ingress }}
        - namespaceSelector:
            matchExpressions:
              - key: kubernetes.io/metadata.name
                operator: In
                values: {{ toJson $root.Values.networkPolicy.ingressNamespaces }}
        {{- end }}
    {{- end }}
    {{- end }}
{{- end }}
