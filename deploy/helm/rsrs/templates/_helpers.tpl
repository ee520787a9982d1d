{{/* Names: every resource is prefixed with the release name, so `helm install srs` gives the
guide's names (srs-origin-service, srs-origin-N.socs with serviceName socs, srs-edge...). */}}
{{- define "rsrs.prefix" -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "rsrs.socs" -}}
{{- default (printf "%s-socs" (include "rsrs.prefix" .)) .Values.origin.cluster.serviceName -}}
{{- end -}}

{{/* Labels of every object; `role` is origin, edge, cleanup, publisher or metrics. */}}
{{- define "rsrs.labels" -}}
app.kubernetes.io/name: {{ default .root.Chart.Name .root.Values.nameOverride }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{/* What selects a role's pods: stable across upgrades. */}}
{{- define "rsrs.selector" -}}
app: {{ include "rsrs.prefix" .root }}-{{ .role }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* The origins an edge pulls from: every pod of an origin cluster, else the origins' Service. */}}
{{- define "rsrs.upstreams" -}}
{{- $prefix := include "rsrs.prefix" . -}}
{{- if .Values.origin.cluster.enabled -}}
{{- $socs := include "rsrs.socs" . -}}
{{- range $i, $_ := until (int .Values.origin.replicas) }}{{ if $i }} {{ end }}{{ $prefix }}-origin-{{ $i }}.{{ $socs }}{{ end -}}
{{- else -}}
{{ $prefix }}-origin-service
{{- end -}}
{{- end -}}

{{/* The srs.conf of a role (origin or edge), generated from the values. */}}
{{- define "rsrs.conf" -}}
{{- $v := .root.Values -}}
{{- $role := .role -}}
{{- $grace := index $v $role "grace" -}}
{{- $origin := eq $role "origin" -}}
listen              {{ $v.ports.rtmp }};
max_connections     1000;
daemon              off;
srs_log_tank        console;
grace_start_wait    {{ $grace.startWaitMs }};
grace_final_wait    {{ $grace.finalWaitMs }};
force_grace_quit    {{ ternary "on" "off" $grace.forceGraceQuit }};
http_api {
    enabled         on;
    listen          {{ $v.ports.api }};
}
http_server {
    enabled         on;
    listen          {{ $v.ports.http }};
    dir             ./objs/nginx/html;
}
{{- if $v.exporter.enabled }}
exporter {
    enabled         on;
    listen          {{ $v.ports.metrics }};
    label           {{ default .root.Release.Name $v.exporter.label }};
    tag             {{ default $role $v.exporter.tag }};
}
{{- end }}
{{- if $v.srt.enabled }}
srt_server {
    enabled         on;
    listen          {{ $v.ports.srt }};
}
{{- end }}
{{- if and $origin $v.webrtc.enabled }}
rtc_server {
    enabled         on;
    listen          {{ $v.ports.webrtc }};
    {{- if $v.webrtc.candidate }}
    candidate       {{ $v.webrtc.candidate }};
    {{- end }}
    protocol        {{ ternary "all" "udp" $v.webrtc.tcp }};
    {{- if $v.webrtc.tcp }}
    tcp {
        enabled     on;
        listen      {{ $v.ports.webrtc }};
    }
    {{- end }}
}
{{- end }}
{{- with $v.config.global }}
{{ . | trim }}
{{- end }}
vhost __defaultVhost__ {
    {{- if $v.srt.enabled }}
    srt {
        enabled     on;
        srt_to_rtmp on;
    }
    {{- end }}
    {{- if not $origin }}
    cluster {
        mode            remote;
        origin          {{ include "rsrs.upstreams" .root }};
    }
    {{- else if $v.origin.cluster.enabled }}
    cluster {
        origin_cluster  on;
        coworkers       {{ include "rsrs.socs" .root }}:{{ $v.ports.api }};
    }
    {{- end }}
    {{- if and $origin $v.webrtc.enabled }}
    rtc {
        enabled     on;
        rtmp_to_rtc on;
        rtc_to_rtmp on;
    }
    {{- end }}
    {{- if and $origin $v.hls.enabled }}
    hls {
        enabled         on;
        hls_fragment    {{ $v.hls.fragment }};
        hls_window      {{ $v.hls.window }};
    }
    {{- end }}
    {{- if $v.httpFlv.enabled }}
    http_remux {
        enabled     on;
        mount       [vhost]/[app]/[stream].flv;
    }
    {{- end }}
    {{- if $v.hooks.enabled }}
    http_hooks {
        enabled         on;
        {{- range $key, $name := dict "onConnect" "on_connect" "onClose" "on_close" "onPublish" "on_publish" "onUnpublish" "on_unpublish" "onPlay" "on_play" "onStop" "on_stop" "onDvr" "on_dvr" "onHls" "on_hls" }}
        {{- with index $v.hooks $key }}
        {{ $name }} {{ join " " . }};
        {{- end }}
        {{- end }}
    }
    {{- end }}
    {{- with $v.config.vhost }}
    {{- . | trim | nindent 4 }}
    {{- end }}
}
{{- end -}}

{{/* The pod of a role (origin or edge). */}}
{{- define "rsrs.pod" -}}
{{- $v := .root.Values -}}
{{- $role := .role -}}
{{- $r := index $v $role -}}
{{- $origin := eq $role "origin" -}}
{{- $html := and $origin (or $r.persistence.enabled $r.nginx.enabled) -}}
metadata:
  annotations:
    {{- if $v.exporter.enabled }}
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ $v.ports.metrics | quote }}
    prometheus.io/path: /metrics
    {{- end }}
    {{- with $r.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  labels:
    app: {{ include "rsrs.prefix" .root }}-{{ $role }}
    {{- include "rsrs.labels" . | nindent 4 }}
spec:
  terminationGracePeriodSeconds: {{ $r.terminationGracePeriodSeconds }}
  volumes:
    - name: config
      configMap:
        name: {{ include "rsrs.prefix" .root }}-{{ $role }}-config
    {{- if and $origin $r.persistence.enabled }}
    - name: html
      persistentVolumeClaim:
        claimName: {{ default (printf "%s-html" (include "rsrs.prefix" .root)) $r.persistence.existingClaim }}
    {{- else if $html }}
    - name: html
      emptyDir: {}
    {{- end }}
  {{- if $html }}
  initContainers:
    # The volume hides the image's web files (the players' pages): copy them in, as SRS's guide does.
    - name: copy-default-html
      image: "{{ $v.image.repository }}:{{ $v.image.tag }}"
      imagePullPolicy: {{ $v.image.pullPolicy }}
      command: ["/bin/sh", "-c", "cp -R ./objs/nginx/html/. /html/"]
      volumeMounts:
        - {name: html, mountPath: /html}
  {{- end }}
  containers:
    - name: rsrs
      image: "{{ $v.image.repository }}:{{ $v.image.tag }}"
      imagePullPolicy: {{ $v.image.pullPolicy }}
      ports:
        - {name: rtmp, containerPort: {{ $v.ports.rtmp }}}
        - {name: api, containerPort: {{ $v.ports.api }}}
        - {name: http, containerPort: {{ $v.ports.http }}}
        {{- if $v.exporter.enabled }}
        - {name: metrics, containerPort: {{ $v.ports.metrics }}}
        {{- end }}
        {{- if $v.srt.enabled }}
        - {name: srt, containerPort: {{ $v.ports.srt }}, protocol: UDP}
        {{- end }}
        {{- if and $origin $v.webrtc.enabled }}
        - {name: webrtc, containerPort: {{ $v.ports.webrtc }}, protocol: UDP}
        {{- if $v.webrtc.tcp }}
        - {name: webrtc-tcp, containerPort: {{ $v.ports.webrtc }}, protocol: TCP}
        {{- end }}
        {{- end }}
      {{- if and $origin $v.webrtc.enabled (not $v.webrtc.candidate) }}
      env:
        # WebRTC's candidate: the pod IP, for browsers inside the cluster (webrtc.candidate
        # sets the LoadBalancer's address instead).
        - name: SRS_RTC_SERVER_CANDIDATE
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
      {{- end }}
      volumeMounts:
        - {name: config, mountPath: /usr/local/srs/conf}
        {{- if $html }}
        - {name: html, mountPath: /usr/local/srs/objs/nginx/html}
        {{- end }}
      readinessProbe:
        httpGet: {path: /readyz, port: http}
        periodSeconds: {{ $v.probes.readiness.periodSeconds }}
      livenessProbe:
        httpGet: {path: /healthz, port: http}
        periodSeconds: {{ $v.probes.liveness.periodSeconds }}
      lifecycle:
        # A graceful quit: readiness drops at once, the listeners close, players are served
        # until they leave or the grace period ends.
        preStop:
          exec:
            command: ["/usr/local/srs/etc/init.d/srs", "grace"]
      resources:
        {{- toYaml $r.resources | nindent 8 }}
    {{- if and $origin $r.nginx.enabled }}
    - name: nginx
      image: "{{ $r.nginx.image.repository }}:{{ $r.nginx.image.tag }}"
      imagePullPolicy: {{ $r.nginx.image.pullPolicy }}
      ports:
        - {name: nginx, containerPort: {{ $r.nginx.port }}}
      volumeMounts:
        - {name: html, mountPath: /usr/share/nginx/html, readOnly: true}
      resources:
        {{- toYaml $r.nginx.resources | nindent 8 }}
    {{- end }}
  {{- with $r.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $r.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $r.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
