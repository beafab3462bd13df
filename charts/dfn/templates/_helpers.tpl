{{/* Names, labels and the values several templates share. */}}

{{- define "dfn.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The stem of every object's name: the release name, with "-dfn" unless it already says dfn. */}}
{{- define "dfn.fullname" -}}
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

{{- define "dfn.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of one component (operator, gateway); call with (dict "ctx" $ "component" "..."). */}}
{{- define "dfn.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dfn.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{- define "dfn.labels" -}}
helm.sh/chart: {{ include "dfn.chart" .ctx }}
{{ include "dfn.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: dfn
{{- end }}

{{- define "dfn.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "dfn.runnerImage" -}}
{{- $repo := default .Values.image.repository .Values.runner.image.repository }}
{{- $tag := default (default .Chart.AppVersion .Values.image.tag) .Values.runner.image.tag }}
{{- printf "%s:%s" $repo $tag }}
{{- end }}

{{- define "dfn.operatorName" -}}
{{- printf "%s-operator" (include "dfn.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dfn.gatewayName" -}}
{{- printf "%s-gateway" (include "dfn.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The write-keys Secret: the user's own, or the one this chart renders from writeKeys.keys. */}}
{{- define "dfn.writeKeysSecret" -}}
{{- default (printf "%s-write-keys" (include "dfn.fullname" .)) .Values.writeKeys.existingSecret }}
{{- end }}

{{/* The key of the write-keys Secret holding the YAML mapping (dfn operator's --write-keys-key default). */}}
{{- define "dfn.writeKeysKey" -}}write-keys.yaml{{- end }}

{{/* The NATS Secret runners' credentials come from, if any. */}}
{{- define "dfn.runnerCredentialsSecret" -}}
{{- if .Values.nats.runnerCredentialsSecret.name }}
{{- toJson .Values.nats.runnerCredentialsSecret }}
{{- else if .Values.nats.credentialsSecret.name }}
{{- toJson .Values.nats.credentialsSecret }}
{{- end }}
{{- end }}

{{/* Hardening shared by the operator's and the gateway's pods, as the operator hardens runner pods (UID 65532, the image's USER). */}}
{{- define "dfn.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "dfn.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end }}
