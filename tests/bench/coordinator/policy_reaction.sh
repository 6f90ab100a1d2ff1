#!/usr/bin/env bash
# Reaction of the scaling policies, end to end with the real binaries
# (tide-coordinator, its HAProxy, a tide-agent beside each tide-sample-app):
# from the moment wrk starts sending requests through HAProxy to the start of
# the scale-out activity. Two policies, side by side in one run, by running
# the system test that measures each one, alternately, N times:
#
#   target tracking  "target tracking on HAProxy's requests per instance ...":
#                    requests_per_instance (HAProxy's figures, read every
#                    second), target 20/s, 10 s window, 1 s scale-out window;
#                    wrk -t1 -c8 on requests answered after 100 ms (~80/s).
#                    Target: <= 3 s.
#   alarm            "a load alarm pair ...": app_requests_per_s (reported by
#                    the application through its agent) > 20 for 2 periods of
#                    5 s; wrk -t2 -c8 on requests answered after 10 ms.
#                    Floor: the 2 x 5 s the alarm must hold; target <= 11 s.
#
# Both loads wait on timers in the application, not on the CPU, so a busy
# machine neither trips the policies early nor hides the load. Each test also
# waits for its scale-in afterwards (about a minute each).
#
#   tests/bench/coordinator/policy_reaction.sh [build-dir] [runs]
set -euo pipefail
build=${1:-build}
runs=${2:-3}
test_bin=$build/bin/coordinator_system_tests
[ -x "$test_bin" ] || { echo "build $test_bin first (cmake --build $build --target coordinator_system_tests)"; exit 2; }

policies=(target_tracking alarm)
declare -A test_name=(
  [target_tracking]="target tracking on HAProxy's requests per instance*"
  [alarm]="a load alarm pair*"
)
declare -A target=([target_tracking]="<= 3 s" [alarm]="<= 11 s")
declare -A reactions=()

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq 1 "$runs"); do
  for policy in "${policies[@]}"; do
    out=$("$test_bin" "${test_name[$policy]}" 2>&1 || true)
    reaction=$(printf '%s\n' "$out" | sed -n 's/.*load start -> scale-out activity: \([0-9.]*\) s.*/\1/p' | head -1)
    status=$(printf '%s\n' "$out" | grep -q "All tests passed" && echo passed || echo FAILED)
    echo "run $run, $policy: reaction ${reaction:-?} s (test $status; load average $(cut -d' ' -f1 /proc/loadavg))"
    [ -n "$reaction" ] && reactions[$policy]+="$reaction "
  done
done
for policy in "${policies[@]}"; do
  # shellcheck disable=SC2086 # one figure a word
  printf '%s\n' ${reactions[$policy]:-} | sort -n | awk -v name="$policy" -v target="${target[$policy]}" \
    'NF {a[++n]=$1} END {if (n) printf "%s: min %.2f s, median %.2f s, max %.2f s over %d runs (target %s)\n", name, a[1], a[int((n+1)/2)], a[n], n, target; else printf "%s: no reaction measured\n", name}'
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
