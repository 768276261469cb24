{{/* An Ingress for one Service; call with (dict "ctx" $ "component" "api" "ingress" .Values.api.ingress "port" "http") */}}
{{- define "rdev.ingress" -}}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ include "rdev.fullname" .ctx }}-{{ .component }}
  labels:
    {{- include "rdev.labels" (dict "ctx" .ctx "component" .component) | nindent 4 }}
  {{- with .ingress.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with .ingress.className }}
  ingressClassName: {{ . }}
  {{- end }}
  {{- with .ingress.tls }}
  tls:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  rules:
    {{- range .ingress.hosts }}
    - host: {{ .host | quote }}
      http:
        paths:
          {{- range .paths }}
          - path: {{ .path }}
            pathType: {{ .pathType }}
            backend:
              service:
                name: {{ include "rdev.fullname" $.ctx }}-{{ $.component }}
                port:
                  name: {{ $.port }}
          {{- end }}
    {{- end }}
{{- end }}
