{{- define "vk.name" -}}vk{{- end -}}

{{- define "vk.fullname" -}}
{{- if eq .Release.Name "vk" -}}vk{{- else -}}{{ printf "%s-vk" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "vk.labels" -}}
app.kubernetes.io/name: vk
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: vk-serverless
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "vk.selector" -}}
app.kubernetes.io/name: vk
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vk.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ .Values.serviceAccount.name | default (include "vk.fullname" .) }}{{- else -}}{{ .Values.serviceAccount.name | default "default" }}{{- end -}}
{{- end -}}
