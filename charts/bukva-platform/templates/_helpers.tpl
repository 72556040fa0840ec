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

{{/* env entries with MinIO's root key and the endpoint: for the hook Jobs that create
buckets and users only; every client has its own key (platform.s3ClientEnv). */}}
{{- define "platform.s3Env" -}}
{{ include "bukva-lib.s3Credentials" (dict "secret" (include "platform.s3SecretName" .)) }}
- name: AWS_ENDPOINT_URL
  value: {{ include "platform.s3Endpoint" . | quote }}
{{- end }}

{{/* The object store's clients, each with its own MinIO user and policy (s3.users). */}}
{{- define "platform.s3Clients" -}}
{{- list "frontend" "mlflow" "training" "predictor" | toJson }}
{{- end }}

{{/* Secret of one client's S3 key: (dict "root" $ "client" C). s3.users.<C>.existingSecret,
else the chart's <fullname>-s3-<C> (MinIO: the s3-users hook makes it a user); without MinIO
the one key of s3.existingSecret (the other S3 API's own policies apply). */}}
{{- define "platform.s3UserSecretName" -}}
{{- $root := .root }}
{{- $user := index $root.Values.s3.users .client }}
{{- if $user.existingSecret }}
{{- $user.existingSecret }}
{{- else if $root.Values.minio.enabled }}
{{- include "bukva-lib.component" (dict "root" $root "component" (printf "s3-%s" .client)) }}
{{- else }}
{{- include "platform.s3SecretName" $root }}
{{- end }}
{{- end }}

{{/* env entries for one client of the object store: its own key and the endpoint;
(dict "root" $ "client" C). */}}
{{- define "platform.s3ClientEnv" -}}
{{ include "bukva-lib.s3Credentials" (dict "secret" (include "platform.s3UserSecretName" .)) }}
- name: AWS_ENDPOINT_URL
  value: {{ include "platform.s3Endpoint" .root | quote }}
{{- end }}

{{/* ARNs of a bucket's objects under a prefix ("" for the whole bucket): (dict "bucket" B
"prefix" P). */}}
{{- define "platform.objectsArn" -}}
{{- if .prefix }}
{{- printf "arn:aws:s3:::%s/%s/*" .bucket (trimAll "/" .prefix) }}
{{- else }}
{{- printf "arn:aws:s3:::%s/*" .bucket }}
{{- end }}
{{- end }}

{{/* A statement allowing ListBucket on a bucket, limited to a prefix when there is one:
(dict "bucket" B "prefix" P), as JSON. */}}
{{- define "platform.listStatement" -}}
{{- $st := dict "Effect" "Allow" "Action" (list "s3:ListBucket") "Resource" (list (printf "arn:aws:s3:::%s" .bucket)) }}
{{- if .prefix }}
{{- $_ := set $st "Condition" (dict "StringLike" (dict "s3:prefix" (list (printf "%s/*" (trimAll "/" .prefix))))) }}
{{- end }}
{{- toJson $st }}
{{- end }}

{{/* Each client's IAM policy (MinIO policy documents), as a JSON object client -> document.
The least each one needs:
  frontend   feedback records: put (the outbox's deliveries, the Review page's decisions),
             get and list (the Review and Model pages) under the feedback prefix only
  training   the DVC remote (objects under the dvc prefix: pull, push, the Jobs' state) and
             reading feedback (ingest); MLflow artifacts go through MLflow's proxy
  mlflow     its artifact bucket (the proxy lists, reads, writes and deletes artifacts)
  predictor  reading the artifact bucket (only used for an s3:// predictor.modelUri)
Nothing deletes outside MLflow's bucket, and no one lists or creates buckets. */}}
{{- define "platform.s3Policies" -}}
{{- $b := .Values.s3.buckets }}
{{- $feedback := dict "bucket" $b.feedback "prefix" .Values.s3.feedbackPrefix }}
{{- $dvc := dict "bucket" $b.dvc "prefix" .Values.s3.dvcPrefix }}
{{- $mlflow := dict "bucket" $b.mlflow "prefix" "" }}
{{- $multipart := list "s3:AbortMultipartUpload" "s3:ListMultipartUploadParts" }}
{{- $frontend := list
  (dict "Effect" "Allow" "Action" (list "s3:PutObject" "s3:GetObject") "Resource" (list (include "platform.objectsArn" $feedback)))
  (include "platform.listStatement" $feedback | fromJson) }}
{{- $training := list
  (dict "Effect" "Allow" "Action" (concat (list "s3:GetObject" "s3:PutObject") $multipart) "Resource" (list (include "platform.objectsArn" $dvc)))
  (dict "Effect" "Allow" "Action" (list "s3:ListBucket" "s3:GetBucketLocation" "s3:ListBucketMultipartUploads") "Resource" (list (printf "arn:aws:s3:::%s" $b.dvc)))
  (dict "Effect" "Allow" "Action" (list "s3:GetObject") "Resource" (list (include "platform.objectsArn" $feedback)))
  (include "platform.listStatement" $feedback | fromJson) }}
{{- $mlflowServer := list
  (dict "Effect" "Allow" "Action" (concat (list "s3:GetObject" "s3:PutObject" "s3:DeleteObject") $multipart) "Resource" (list (include "platform.objectsArn" $mlflow)))
  (dict "Effect" "Allow" "Action" (list "s3:ListBucket" "s3:GetBucketLocation" "s3:ListBucketMultipartUploads") "Resource" (list (printf "arn:aws:s3:::%s" $b.mlflow))) }}
{{- $predictor := list
  (dict "Effect" "Allow" "Action" (list "s3:GetObject") "Resource" (list (include "platform.objectsArn" $mlflow)))
  (dict "Effect" "Allow" "Action" (list "s3:ListBucket") "Resource" (list (printf "arn:aws:s3:::%s" $b.mlflow))) }}
{{- $all := dict "frontend" $frontend "training" $training "mlflow" $mlflowServer "predictor" $predictor }}
{{- $out := dict }}
{{- range $client, $statements := $all }}
{{- $_ := set $out $client (dict "Version" "2012-10-17" "Statement" $statements) }}
{{- end }}
{{- toJson $out }}
{{- end }}
