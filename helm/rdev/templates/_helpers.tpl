{{/* Names */}}
{{- define "rdev.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rdev.fullname" -}}
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

{{- define "rdev.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels; call with (dict "ctx" $ "component" "api") */}}
{{- define "rdev.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rdev.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "rdev.labels" -}}
helm.sh/chart: {{ include "rdev.chart" .ctx }}
{{ include "rdev.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: rdev
{{- end }}

{{- define "rdev.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "rdev.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rdev.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Workers get their own ServiceAccount when they run deploy tasks (its token is mounted). */}}
{{- define "rdev.workerServiceAccountName" -}}
{{- if and .Values.deployTasks.enabled .Values.serviceAccount.create }}
{{- printf "%s-worker" (include "rdev.fullname" .) }}
{{- else }}
{{- include "rdev.serviceAccountName" . }}
{{- end }}
{{- end }}

{{- define "rdev.deployNamespaces" -}}
{{- default (list .Release.Namespace) .Values.deployTasks.namespaces | toJson }}
{{- end }}

{{- define "rdev.configMapName" -}}
{{- printf "%s-config" (include "rdev.fullname" .) }}
{{- end }}

{{- define "rdev.secretName" -}}
{{- default (printf "%s-secrets" (include "rdev.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{/* The worker's grace period: the task timeout plus a margin, or an explicit value above it. */}}
{{- define "rdev.worker.terminationGracePeriodSeconds" -}}
{{- $timeout := int .Values.rdev.taskTimeoutS }}
{{- if .Values.worker.terminationGracePeriodSeconds }}
{{- $explicit := int .Values.worker.terminationGracePeriodSeconds }}
{{- if le $explicit $timeout }}
{{- fail (printf "worker.terminationGracePeriodSeconds (%d) must exceed rdev.taskTimeoutS (%d): a drained worker needs time to finish its running tasks" $explicit $timeout) }}
{{- end }}
{{- $explicit }}
{{- else }}
{{- add $timeout (int .Values.worker.shutdownMarginS) }}
{{- end }}
{{- end }}

{{/* Pod-level settings shared by every rdev pod; call with (dict "ctx" $ "role" .Values.api) */}}
{{- define "rdev.podSpecCommon" -}}
securityContext:
  {{- toYaml .ctx.Values.podSecurityContext | nindent 2 }}
{{- with .ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .role.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .role.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .role.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Pod template metadata: labels and a checksum of the configuration, so a change rolls pods. */}}
{{- define "rdev.podMetadata" -}}
labels:
  {{- include "rdev.selectorLabels" . | nindent 2 }}
  {{- with .ctx.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  checksum/config: {{ include (print .ctx.Template.BasePath "/configmap.yaml") .ctx | sha256sum }}
  checksum/secrets: {{ include (print .ctx.Template.BasePath "/secret.yaml") .ctx | sha256sum }}
  {{- with .ctx.Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* Environment of rdev's processes: the ConfigMap, the broker and, unless (dict "ctx" $
"brokerOnly" true) is given (Flower), the database URL and callback secret. */}}
{{- define "rdev.env" -}}
{{- $ctx := .ctx | default . }}
envFrom:
  - configMapRef:
      name: {{ include "rdev.configMapName" $ctx }}
env:
  - name: RDEV_BROKER_URL
    valueFrom:
      secretKeyRef:
        name: {{ include "rdev.secretName" $ctx }}
        key: RDEV_BROKER_URL
  {{- if not .brokerOnly }}
  - name: RDEV_DATABASE_URL
    valueFrom:
      secretKeyRef:
        name: {{ include "rdev.secretName" $ctx }}
        key: RDEV_DATABASE_URL
  {{- if or $ctx.Values.secrets.existingSecret $ctx.Values.secrets.callbackSecret }}
  - name: RDEV_CALLBACK_SECRET
    valueFrom:
      secretKeyRef:
        name: {{ include "rdev.secretName" $ctx }}
        key: RDEV_CALLBACK_SECRET
        optional: true
  {{- end }}
  {{- end }}
{{- end }}

{{/* Extra environment of the processes that run agents (worker, claudebox). */}}
{{- define "rdev.agentEnv" -}}
{{- if or .Values.secrets.existingSecret .Values.secrets.opencodePassword }}
- name: RDEV_OPENCODE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "rdev.secretName" . }}
      key: RDEV_OPENCODE_PASSWORD
      optional: true
{{- end }}
{{- if or .Values.secrets.existingSecret .Values.secrets.anthropicApiKey }}
- name: ANTHROPIC_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "rdev.secretName" . }}
      key: ANTHROPIC_API_KEY
      optional: true
{{- end }}
{{- end }}

{{/* Writable scratch space under a read-only root filesystem: /tmp, HOME and rdev's data
directory (workspaces). Call with (dict "ctx" $ "dataSizeLimit" "20Gi"). */}}
{{- define "rdev.scratchVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .ctx.Values.scratchSizeLimit }}
- name: home
  emptyDir:
    sizeLimit: {{ .ctx.Values.scratchSizeLimit }}
- name: data
  emptyDir:
    sizeLimit: {{ default .ctx.Values.scratchSizeLimit .dataSizeLimit }}
{{- end }}

{{- define "rdev.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
- name: home
  mountPath: /home/rdev
- name: data
  mountPath: {{ .Values.rdev.dataDir }}
{{- end }}
