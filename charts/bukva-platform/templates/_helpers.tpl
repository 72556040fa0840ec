{{/* The platform's own helpers; names, labels, images and security contexts come from the
bukva-lib library chart (charts/bukva-lib, linked as charts/bukva-lib here). */}}

{{/* Secret holding AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY for the S3 endpoint. */}}
{{- define "platform.s3SecretName" -}}
{{- .Values.s3.existingSecret | default (include "bukva-lib.component" (dict "root" . "component" "s3")) }}
{{- end }}

{{/* Secret holding the PostgreSQL password (key: password). */}}
{{- define "platform.postgresSecretName" -}}
{{- .Values.postgres.existingSecret | default (include "bukva-lib.component" (dict "root" . "component" "postgres")) }}
{{- end }}

{{/* In-cluster URL of one of the platform's Services: (dict "root" $ "component" C "port" P). */}}
{{- define "platform.url" -}}
{{- printf "http://%s:%d" (include "bukva-lib.component" (dict "root" .root "component" .component)) (int .port) }}
{{- end }}

{{/* The S3 endpoint URL every client uses: the in-cluster MinIO, or s3.endpoint. */}}
{{- define "platform.s3Endpoint" -}}
{{- if .Values.minio.enabled }}
{{- include "platform.url" (dict "root" . "component" "minio" "port" .Values.minio.service.apiPort) }}
{{- else }}
{{- required "s3.endpoint is required when minio.enabled is false" .Values.s3.endpoint }}
{{- end }}
{{- end }}

{{/* The MLflow tracking server's in-cluster URL. */}}
{{- define "platform.mlflowUrl" -}}
{{- include "platform.url" (dict "root" . "component" "mlflow" "port" .Values.mlflow.port) }}
{{- end }}

{{/* Prometheus's in-cluster URL. */}}
{{- define "platform.prometheusUrl" -}}
{{- include "platform.url" (dict "root" . "component" "prometheus" "port" .Values.prometheus.port) }}
{{- end }}

{{/* env entries for an S3 client: the credentials and the endpoint. */}}
{{- define "platform.s3Env" -}}
{{ include "bukva-lib.s3Credentials" (dict "secret" (include "platform.s3SecretName" .)) }}
- name: AWS_ENDPOINT_URL
  value: {{ include "platform.s3Endpoint" . | quote }}
{{- end }}
