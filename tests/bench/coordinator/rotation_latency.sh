#!/usr/bin/env bash
# Readiness → rotation inside the coordinator: a group of 8 sample
# applications is scaled 0 → 8, every application is flipped not ready and
# ready again, and the group goes back to 0, five times. The coordinator's
# /metrics then gives, from the REPORT that made an instance ready to
# HAProxy acknowledging it in rotation, p50 and p99 (histogram bucket bounds).
#
#   tests/bench/coordinator/rotation_latency.sh [build-dir]
#
# The agent's HTTP probe period (1 s by default) comes on top of this figure
# when the application is probed rather than using the notify socket.
set -euo pipefail
build=${1:-build}
bin=$(cd "$build/bin" && pwd)
work=$(mktemp -d /tmp/tide-rotation-XXXXXX)
api=17601
trap 'pkill -TERM -f "$work/c.yaml" 2>/dev/null; sleep 1; rm -rf "$work"' EXIT
cat > "$work/c.yaml" <<YAML
state_dir: $work/state
tick_interval_ms: 100
agents:
  listen: tcp://127.0.0.1:17600
  report_interval_ms: 500
  heartbeat_interval_ms: 500
api:
  listen_port: $api
provider:
  local:
    address_prefix: "127.0.9."
load_balancer:
  backends:
    - name: web
      bind_port: 18600
      slots: 16
YAML
"$bin/tide-coordinator" -c "$work/c.yaml" > "$work/log" 2>&1 &
export TIDE_ENDPOINT=http://127.0.0.1:$api
T=$bin/tidectl
for _ in $(seq 1 50); do $T status >/dev/null 2>&1 && break; sleep 0.2; done
$T lc create app --command "$bin/tide-sample-app --ready-after-ms 300" --port 8080 >/dev/null
$T group create web --launch-config app --min 0 --max 8 --desired 0 --backend web --drain-timeout 2 >/dev/null
field() { $T -o json group show web | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
for round in 1 2 3 4 5; do
  $T group set web --desired 8 >/dev/null
  for _ in $(seq 1 120); do [ "$(field in_service)" = 8 ] && break; sleep 0.25; done
  addresses=$($T -o json instance list --group web |
    python3 -c 'import json,sys; print(" ".join("%s:%d" % (i["address"], i["port"]) for i in json.load(sys.stdin)["instances"]))')
  for a in $addresses; do curl -s "http://$a/admin/ready?state=0" >/dev/null; done
  sleep 3
  for a in $addresses; do curl -s "http://$a/admin/ready?state=1" >/dev/null; done
  sleep 3
  $T group set web --desired 0 >/dev/null
  for _ in $(seq 1 120); do [ "$(field actual)" = 0 ] && break; sleep 0.25; done
  echo "round $round done"
done
curl -s "http://127.0.0.1:$api/metrics" | grep -E '^tide_(report_to_lb|lb)_latency_seconds|^tide_report_processing_seconds'
