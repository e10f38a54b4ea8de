{{- define "tidemark.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release name, or release-chart when the release name does not contain the chart's. */}}
{{- define "tidemark.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "tidemark.operatorName" -}}
{{- printf "%s-operator" (include "tidemark.fullname" .) }}
{{- end }}

{{- define "tidemark.agentClusterRole" -}}
{{- printf "%s-agent" (include "tidemark.fullname" .) }}
{{- end }}

{{/* Labels of every object, without app.kubernetes.io/component. */}}
{{- define "tidemark.baseLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: tidemark
app.kubernetes.io/name: {{ include "tidemark.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of the operator's objects. */}}
{{- define "tidemark.labels" -}}
{{ include "tidemark.baseLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "tidemark.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tidemark.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}
