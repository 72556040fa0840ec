{{/* The app's own helpers; names, labels, images and security contexts come from the
bukva-lib library chart (charts/bukva-lib, linked as charts/bukva-lib here). The
InferenceService gets the fullname, so KServe's Services are <fullname>-predictor and
<fullname>-transformer. */}}

{{/* KServe's Service for a component in Standard mode: <isvc>-<component>, port 80. */}}
{{- define "bukva.kserveHost" -}}
{{- printf "%s-%s" (include "bukva-lib.fullname" .root) .component }}
{{- end }}

{{/* Object-name prefix of the bukva-platform release this app uses (platform.release). */}}
{{- define "bukva.platformPrefix" -}}
{{- include "bukva-lib.prefix" (dict "release" .Values.platform.release "chart" "bukva-platform") }}
{{- end }}

{{/* One env entry from the platform's endpoints ConfigMap: (dict "root" $ "name" ENV "key"
KEY "optional" BOOL); the key defaults to the variable's name. */}}
{{- define "bukva.platformEnv" -}}
{{- include "bukva-lib.endpointEnv" (dict "prefix" (include "bukva.platformPrefix" .root) "name" .name "key" .key "optional" .optional) }}
{{- end }}

{{/* S3 endpoint and one client's own key for a container's env: (dict "root" $ "client" C),
C = frontend or predictor. The key is the client's MinIO user, in the Secret the platform
generates (<platform>-s3-<client>) or platform.s3Secrets.<client>. */}}
{{- define "bukva.s3Env" -}}
{{ include "bukva.platformEnv" (dict "root" .root "name" "AWS_ENDPOINT_URL") }}
{{ include "bukva-lib.s3Credentials" (dict "secret" ((index .root.Values.platform.s3Secrets .client) | default (printf "%s-s3-%s" (include "bukva.platformPrefix" .root) .client))) }}
{{- end }}

{{/* What the predictor serves: predictor.modelUri, or the declared registry version. */}}
{{- define "bukva.modelUri" -}}
{{- if .Values.predictor.modelUri }}
{{- .Values.predictor.modelUri }}
{{- else }}
{{- $version := required "predictor.modelVersion is required: the registry version to serve (make train-job sets it; or set predictor.modelUri)" .Values.predictor.modelVersion }}
{{- printf "models:/%s/%s" .Values.predictor.registeredModel (toString $version) }}
{{- end }}
{{- end }}

{{/* Probes for a KServe v2 server on the named port. The startup probe gives the predictor
time to download its model from MLflow before liveness starts counting. */}}
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
