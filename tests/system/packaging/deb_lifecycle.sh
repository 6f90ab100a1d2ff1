#!/usr/bin/env bash
# System test of the Debian packages: cpack -> dpkg -i -> checks -> dpkg -r ->
# dpkg -P, with the real dpkg on this machine. Exit 77 = skipped (CTest
# SKIP_RETURN_CODE). Steps share a time budget below CTest's timeout, so the
# EXIT trap always runs and the machine is left as it was, even on failure.
# Usage: deb_lifecycle.sh <build-dir> <version> [cpack]
set -euo pipefail

build=${1:?usage: deb_lifecycle.sh <build-dir> <version> [cpack]}
version=${2:?version}
cpack=${3:-cpack}
export DEBIAN_FRONTEND=noninteractive

# One budget for all steps (CTest's TIMEOUT is 420 s): the EXIT trap gets
# the remaining 45 s even if a step hangs until the budget runs out.
deadline=$((SECONDS + 360))
left() { local n=$((deadline - SECONDS)); [ $n -gt 1 ] && echo $n || echo 1; }
step() { echo "--- $* ($(left) s left)"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
expect_file() { [ -e "$1" ] || fail "$1 is missing"; }
expect_gone() { if [ -e "$1" ] || [ -L "$1" ]; then fail "$1 is still there"; fi; }

[ "$(id -u)" -eq 0 ] || skip "needs root to dpkg -i (run the system tests as root)"
for tool in dpkg dpkg-deb dpkg-shlibdeps "$cpack"; do
  command -v "$tool" >/dev/null || skip "$tool is not installed"
done
for b in tide-agent tide-coordinator tidectl; do
  [ -x "$build/bin/$b" ] || fail "$build/bin/$b is not built (cmake --build $build --target $b)"
done
# Never touch a real installation of tide on this machine.
for p in tide-agent tide-coordinator; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q ' installed$\|half\|unpacked\|config-files'; then
    skip "package $p is present on this machine; not replacing it"
  fi
done
for f in /usr/bin/tide-agent /usr/bin/tide-coordinator /usr/bin/tidectl; do
  if [ -e "$f" ]; then skip "$f exists outside dpkg's knowledge; not overwriting it"; fi
done

# The users and groups the packages create (postinst): tide, tide-agent.
existing_users=""; existing_groups=""
for u in tide tide-agent; do
  getent passwd "$u" >/dev/null && existing_users="$existing_users $u"
  getent group "$u" >/dev/null && existing_groups="$existing_groups $u"
done
work=$(mktemp -d /tmp/tide-deb-test.XXXXXX)
coord_pid=
cleanup() {
  local rc=$?
  if [ -n "$coord_pid" ]; then kill -INT "$coord_pid" 2>/dev/null || true; wait "$coord_pid" 2>/dev/null || true; fi
  timeout 45 dpkg --purge tide-agent tide-coordinator >/dev/null 2>&1 || true
  # The packages keep their users on purge (Debian practice); the test
  # created them, so the test removes them.
  for u in tide tide-agent; do
    case " $existing_users " in *" $u "*) ;; *) if getent passwd "$u" >/dev/null; then userdel "$u" || true; fi ;; esac
    case " $existing_groups " in *" $u "*) ;; *) if getent group "$u" >/dev/null; then groupdel "$u" || true; fi ;; esac
  done
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "cpack -G DEB"
timeout "$(left)" "$cpack" --config "$build/CPackConfig.cmake" -G DEB -B "$work" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log"; fail "cpack failed"; }
arch=$(dpkg --print-architecture)
agent_deb=$work/tide-agent_${version}-1_${arch}.deb
coord_deb=$work/tide-coordinator_${version}-1_${arch}.deb
expect_file "$agent_deb"
expect_file "$coord_deb"
ls -l "$work"/*.deb

step "package metadata"
field() { dpkg-deb -f "$1" "$2"; }
[ "$(field "$agent_deb" Package)" = tide-agent ] || fail "agent package name"
[ "$(field "$coord_deb" Package)" = tide-coordinator ] || fail "coordinator package name"
[ "$(field "$agent_deb" Version)" = "${version}-1" ] || fail "agent version is $(field "$agent_deb" Version)"
agent_deps=$(field "$agent_deb" Depends)
coord_deps=$(field "$coord_deb" Depends)
echo "tide-agent Depends: $agent_deps"
echo "tide-coordinator Depends: $coord_deps"
# Filled by dpkg-shlibdeps from the binaries' NEEDED entries.
for d in libc6 libzmq5 libuv1 libyaml-cpp adduser; do
  grep -q "$d" <<<"$agent_deps" || fail "tide-agent does not depend on $d"
done
for d in libc6 libzmq5 libsqlite3-0 haproxy adduser; do
  grep -q "$d" <<<"$coord_deps" || fail "tide-coordinator does not depend on $d"
done
dpkg-deb -c "$agent_deb" >"$work/agent.list"
dpkg-deb -c "$coord_deb" >"$work/coord.list"
for f in ./usr/bin/tide-agent ./lib/systemd/system/tide-agent.service ./etc/tide/agent.yaml \
         ./usr/share/doc/tide-agent/copyright ./usr/share/doc/tide-agent/examples/cloud-init.yaml; do
  grep -q " $f\$" "$work/agent.list" || fail "tide-agent lacks $f"
done
for f in ./usr/bin/tide-coordinator ./usr/bin/tidectl ./lib/systemd/system/tide-coordinator.service \
         ./etc/tide/coordinator.yaml ./usr/share/doc/tide-coordinator/copyright; do
  grep -q " $f\$" "$work/coord.list" || fail "tide-coordinator lacks $f"
done
if grep -v '/doc/' "$work/coord.list" | grep -q 'bin/tide-agent\|agent\.yaml\|tide-agent\.service'; then
  fail "tide-coordinator ships agent files"
fi
if grep -v '/doc/' "$work/agent.list" | grep -q 'tidectl\|tide-coordinator'; then
  fail "tide-agent ships coordinator files"
fi
for pair in "$agent_deb:/etc/tide/agent.yaml" "$coord_deb:/etc/tide/coordinator.yaml"; do
  deb=${pair%%:*}; conf=${pair#*:}
  dpkg-deb -I "$deb" conffiles | grep -qx "$conf" || fail "$conf is not a conffile of $(basename "$deb")"
  for s in postinst prerm postrm; do
    dpkg-deb -I "$deb" "$s" >"$work/$s" || fail "$(basename "$deb") has no $s"
    sh -n "$work/$s" || fail "$(basename "$deb") $s is not valid sh"
  done
done

step "dpkg -i (systemd running: $([ -d /run/systemd/system ] && echo yes || echo no))"
timeout "$(left)" dpkg --force-confold -i "$agent_deb" "$coord_deb" </dev/null || fail "dpkg -i failed"

step "installed files"
for f in /lib/systemd/system/tide-agent.service /lib/systemd/system/tide-coordinator.service \
         /etc/tide/agent.yaml /etc/tide/coordinator.yaml; do
  expect_file "$f"
done
grep -q '^EnvironmentFile=-/etc/tide/agent.env$' /lib/systemd/system/tide-agent.service ||
  fail "tide-agent.service does not read /etc/tide/agent.env"
grep -q '^User=tide$' /lib/systemd/system/tide-coordinator.service || fail "tide-coordinator.service does not run as tide"
grep -q '^User=tide-agent$' /lib/systemd/system/tide-agent.service || fail "tide-agent.service does not run as tide-agent"
grep -q '^Type=notify$' /lib/systemd/system/tide-coordinator.service || fail "tide-coordinator.service is not Type=notify"
# Enabled offline by deb-systemd-helper, so an image baked in a chroot starts them on boot.
expect_file /etc/systemd/system/multi-user.target.wants/tide-agent.service
expect_file /etc/systemd/system/multi-user.target.wants/tide-coordinator.service
if command -v systemd-analyze >/dev/null; then
  # Works offline; any message (unknown key, bad value, missing binary) fails.
  for u in tide-agent tide-coordinator; do
    if ! out=$(timeout 30 systemd-analyze verify "/lib/systemd/system/$u.service" 2>&1) || [ -n "$out" ]; then
      echo "$out"; fail "systemd-analyze verify $u.service"
    fi
  done
fi

step "tide and tide-agent users and state directories"
for u in tide tide-agent; do
  getent passwd "$u" >/dev/null || fail "no $u user"
  getent group "$u" >/dev/null || fail "no $u group"
done
[ "$(stat -c '%U:%G %a' /var/lib/tide)" = "tide:tide 750" ] || fail "/var/lib/tide is $(stat -c '%U:%G %a' /var/lib/tide)"
[ "$(stat -c '%U:%G %a' /var/lib/tide-agent)" = "tide-agent:tide-agent 700" ] ||
  fail "/var/lib/tide-agent is $(stat -c '%U:%G %a' /var/lib/tide-agent)"
# It may hold api.token.
[ "$(stat -c '%U:%G %a' /etc/tide/coordinator.yaml)" = "root:tide 640" ] ||
  fail "/etc/tide/coordinator.yaml is $(stat -c '%U:%G %a' /etc/tide/coordinator.yaml)"

step "binaries run"
out=$(timeout 10 /usr/bin/tide-agent --version) || fail "tide-agent --version"
echo "$out"; grep -q "$version" <<<"$out" || fail "tide-agent --version does not print $version"
out=$(timeout 10 /usr/bin/tide-coordinator --version) || fail "tide-coordinator --version"
echo "$out"; grep -q "$version" <<<"$out" || fail "tide-coordinator --version does not print $version"
out=$(timeout 10 /usr/bin/tidectl --version) || fail "tidectl --version"
echo "$out"; grep -q "$version" <<<"$out" || fail "tidectl --version does not print $version"
# The shipped configs are valid as shipped.
timeout 10 /usr/bin/tide-agent --check-config --config /etc/tide/agent.yaml || fail "shipped agent.yaml is invalid"
timeout 10 /usr/bin/tide-coordinator --check-config --config /etc/tide/coordinator.yaml ||
  fail "shipped coordinator.yaml is invalid"

step "installed coordinator runs as tide with the packaged layout"
# Free loopback ports (the shipped 7400/7401 may be taken on a shared host).
if ports=$(python3 -c 'import socket
ss=[socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' 2>/dev/null); then
  read -r agent_port api_port lb_port <<<"$ports"
  cat >"$work/coordinator.yaml" <<EOT
agents:
  listen: tcp://127.0.0.1:$agent_port
api:
  listen_port: $api_port
load_balancer:
  backends:
    - name: web
      bind_address: 127.0.0.1
      bind_port: $lb_port
EOT
  chmod 0755 "$work"; chmod 0644 "$work/coordinator.yaml"
  # As the unit runs it: user tide, working directory /var/lib/tide.
  # umask 022, as a root shell has it: the coordinator sets its own modes.
  (cd /var/lib/tide && umask 022 && exec timeout -k 5 60 setpriv --reuid=tide --regid=tide --init-groups \
     /usr/bin/tide-coordinator --config "$work/coordinator.yaml") >"$work/coordinator.log" 2>&1 &
  coord_pid=$!
  up=0
  for _ in $(seq 1 150); do
    if timeout 5 /usr/bin/tidectl --endpoint "http://127.0.0.1:$api_port" status >"$work/status.out" 2>&1; then up=1; break; fi
    kill -0 "$coord_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ $up -eq 1 ] || { cat "$work/coordinator.log" "$work/status.out"; fail "the installed coordinator did not come up"; }
  cat "$work/status.out"
  for f in tide.db coordinator.key haproxy.cfg; do
    [ "$(stat -c %U "/var/lib/tide/$f")" = tide ] || fail "/var/lib/tide/$f is not owned by tide"
  done
  # The database (and its WAL, which holds launch configurations' environment)
  # and the secret key are the coordinator's alone.
  for f in tide.db tide.db-wal tide.db-shm coordinator.key; do
    [ "$(stat -c %a "/var/lib/tide/$f")" = 600 ] || fail "/var/lib/tide/$f is mode $(stat -c %a "/var/lib/tide/$f")"
  done
  [ "$(stat -c %a /var/lib/tide)" = 750 ] || fail "/var/lib/tide became $(stat -c %a /var/lib/tide)"
  kill -INT "$coord_pid"
  wait "$coord_pid" || { cat "$work/coordinator.log"; fail "the coordinator did not stop cleanly on SIGINT"; }
  coord_pid=
else
  echo "python3 not available to pick free ports: coordinator start not checked"
fi

step "cloud-init template renders to an agent.env the agent accepts"
template=/usr/share/doc/tide-agent/examples/cloud-init.yaml
[ "$(head -n1 "$template")" = "#cloud-config" ] || fail "$template does not start with #cloud-config"
if command -v envsubst >/dev/null; then
  # What an exec provider's launch script would substitute (packaging/image/README.md).
  export TIDE_INSTANCE_ID=web-7f3a TIDE_GROUP=web TIDE_COORDINATOR_ENDPOINT=tcp://10.0.0.2:7400 \
    TIDE_COORDINATOR_PUBLIC_KEY='rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7' TIDE_ENROLLMENT_TOKEN=0123456789abcdef \
    TIDE_SERVICE_PORT=8080 TIDE_READINESS_HTTP=http://127.0.0.1:8080/ready
  # The write_files content block: the lines indented under "content: |".
  # shellcheck disable=SC2016 # the $NAMES are for envsubst, not the shell
  envsubst '$TIDE_INSTANCE_ID $TIDE_GROUP $TIDE_COORDINATOR_ENDPOINT $TIDE_COORDINATOR_PUBLIC_KEY
            $TIDE_ENROLLMENT_TOKEN $TIDE_SERVICE_PORT $TIDE_READINESS_HTTP' <"$template" |
    awk '/content: \|/ {on=1; next} on && /^      [A-Z]/ {sub(/^ +/, ""); print; next} {on=0}' >"$work/agent.env"
  unset TIDE_INSTANCE_ID TIDE_GROUP TIDE_COORDINATOR_ENDPOINT TIDE_COORDINATOR_PUBLIC_KEY TIDE_ENROLLMENT_TOKEN \
    TIDE_SERVICE_PORT TIDE_READINESS_HTTP
  grep -q '^TIDE_ENROLLMENT_TOKEN=0123456789abcdef$' "$work/agent.env" || { cat "$work/agent.env"; fail "rendered agent.env"; }
  grep -q '\$' "$work/agent.env" && { cat "$work/agent.env"; fail "rendered agent.env has unsubstituted placeholders"; }
  echo 192.0.2.10 >"$work/service-address"
  # systemd's EnvironmentFile= reads KEY=value lines; so does env(1) here.
  mapfile -t env_lines < <(sed "s#/run/tide-service-address#$work/service-address#; s#^TIDE_STATE_DIR=.*#TIDE_STATE_DIR=$work/state#" "$work/agent.env")
  out=$(env "${env_lines[@]}" timeout 10 /usr/bin/tide-agent --check-config --config /etc/tide/agent.yaml) ||
    { cat "$work/agent.env"; fail "tide-agent rejects the rendered agent.env: $out"; }
  echo "$out"
  grep -q 'instance web-7f3a, coordinator tcp://10.0.0.2:7400, 1 probes' <<<"$out" || fail "rendered agent.env not applied: $out"
else
  echo "envsubst (gettext-base) not installed: template rendering not checked"
fi

step "reinstall keeps an edited conffile"
echo "# edited by the packaging test" >>/etc/tide/agent.yaml
timeout "$(left)" dpkg --force-confold -i "$agent_deb" </dev/null || fail "dpkg -i (reinstall) failed"
grep -q 'edited by the packaging test' /etc/tide/agent.yaml || fail "reinstall overwrote the edited /etc/tide/agent.yaml"

step "dpkg -r keeps config and state"
touch /var/lib/tide/tide.db /var/lib/tide-agent/agent.key
timeout "$(left)" dpkg -r tide-coordinator tide-agent </dev/null || fail "dpkg -r failed"
for f in /usr/bin/tide-agent /usr/bin/tide-coordinator /usr/bin/tidectl \
         /lib/systemd/system/tide-agent.service /lib/systemd/system/tide-coordinator.service; do
  expect_gone "$f"
done
expect_file /etc/tide/agent.yaml
expect_file /etc/tide/coordinator.yaml
expect_file /var/lib/tide/tide.db
expect_file /var/lib/tide-agent/agent.key

step "dpkg -P removes config, state and the enable links"
timeout "$(left)" dpkg -P tide-coordinator tide-agent </dev/null || fail "dpkg -P failed"
for f in /etc/tide/agent.yaml /etc/tide/coordinator.yaml /etc/tide /var/lib/tide /var/lib/tide-agent \
         /etc/systemd/system/multi-user.target.wants/tide-agent.service \
         /etc/systemd/system/multi-user.target.wants/tide-coordinator.service; do
  expect_gone "$f"
done
for p in tide-agent tide-coordinator; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'installed\|config-files'; then
    fail "$p is still known to dpkg: $(dpkg-query -W -f='${Status}' "$p")"
  fi
done

echo "PASS: packages build, install, run, upgrade in place, remove and purge cleanly"
