#!/usr/bin/env bash
# Quality checks of the Debian packages, as a Debian developer would run them:
#   - lintian on both .debs: any error or warning fails;
#   - systemd-analyze security --offline=yes on both shipped units: an
#     exposure above 2.5 fails;
#   - the daemons' manual pages name every flag their --help lists and no
#     other; tidectl's page and its bash/zsh completions are in the package.
# Needs no root. Exit 77 = skipped (CTest SKIP_RETURN_CODE), only when a tool
# cannot run on this machine at all.
# Usage: deb_lint.sh <build-dir> <version> [cpack]
set -euo pipefail

build=${1:?usage: deb_lint.sh <build-dir> <version> [cpack]}
version=${2:?version}
cpack=${3:-cpack}
threshold=2.5

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

for tool in dpkg dpkg-deb dpkg-shlibdeps "$cpack" python3 man; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/install-deps installs it)"
done
command -v lintian >/dev/null || fail "lintian is not installed (scripts/install-deps installs it)"
for b in tide-agent tide-coordinator tidectl; do
  [ -x "$build/bin/$b" ] || fail "$build/bin/$b is not built (cmake --build $build --target $b)"
done
for f in tidectl.1.gz tidectl _tidectl; do
  [ -s "$build/packaging/tidectl/$f" ] ||
    fail "$build/packaging/tidectl/$f is not built (cmake --build $build --target tidectl-docs)"
done

work=$(mktemp -d /tmp/tide-deb-lint.XXXXXX)
trap 'rm -rf "$work"' EXIT

step "cpack -G DEB"
timeout 300 "$cpack" --config "$build/CPackConfig.cmake" -G DEB -B "$work" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log"; fail "cpack failed"; }
arch=$(dpkg --print-architecture)
agent_deb=$work/tide-agent_${version}-1_${arch}.deb
coord_deb=$work/tide-coordinator_${version}-1_${arch}.deb
for deb in "$agent_deb" "$coord_deb"; do [ -f "$deb" ] || fail "cpack made no $(basename "$deb")"; done

step "lintian"
# --fail-on error,warning: exit status 2 on any E: or W: tag. Info and
# pedantic tags are shown (they guide, they do not fail).
status=0
timeout 300 lintian --fail-on error,warning --display-info "$agent_deb" "$coord_deb" >"$work/lintian.out" 2>&1 ||
  status=$?
cat "$work/lintian.out"
if grep -q '^[EW]: ' "$work/lintian.out" || [ $status -ne 0 ]; then
  fail "lintian reports errors or warnings (exit $status)"
fi
echo "lintian: no errors, no warnings"

step "files only a well-packaged daemon has"
dpkg-deb -c "$agent_deb" >"$work/agent.list"
dpkg-deb -c "$coord_deb" >"$work/coord.list"
for f in ./usr/share/man/man8/tide-agent.8.gz ./usr/share/doc/tide-agent/changelog.Debian.gz \
         ./usr/share/doc/tide-agent/copyright; do
  grep -q " $f\$" "$work/agent.list" || fail "tide-agent lacks $f"
done
for f in ./usr/share/man/man8/tide-coordinator.8.gz ./usr/share/man/man1/tidectl.1.gz \
         ./usr/share/bash-completion/completions/tidectl ./usr/share/zsh/vendor-completions/_tidectl \
         ./usr/share/doc/tide-coordinator/changelog.Debian.gz ./usr/share/doc/tide-coordinator/copyright; do
  grep -q " $f\$" "$work/coord.list" || fail "tide-coordinator lacks $f"
done
dpkg-deb -x "$agent_deb" "$work/agent"
dpkg-deb -x "$coord_deb" "$work/coord"
grep -q '^License: Apache-2.0$' "$work/agent/usr/share/doc/tide-agent/copyright" || fail "copyright names no licence"
zcat "$work/agent/usr/share/doc/tide-agent/changelog.Debian.gz" | head -n1 | grep -q "^tide (${version}-1) " ||
  fail "changelog.Debian.gz does not start with tide (${version}-1)"

step "manual pages match --help"
# Each long or short flag --help lists must be in the page's OPTIONS section,
# and each flag the section describes must exist.
check_flags() {
  local binary=$1 page=$2 name
  name=$(basename "$binary")
  "$binary" --help | grep -oE '(^|[ ,])--?[a-z][a-z-]*' | sed 's/^[ ,]//' | sort -u >"$work/$name.help"
  MANWIDTH=200 man -l "$page" 2>/dev/null | col -b |
    awk '/^OPTIONS/ {on=1; next} /^[A-Z]/ {on=0} on && /^       -/' |
    grep -oE '(^|[ ,])--?[a-z][a-z-]*' | sed 's/^[ ,]//' | sort -u >"$work/$name.man"
  if ! diff -u "$work/$name.help" "$work/$name.man"; then
    fail "$page and $name --help disagree on the flags (- only in --help, + only in the page)"
  fi
  echo "$name: $(wc -l <"$work/$name.help") flags, all in the manual page"
}
check_flags "$build/bin/tide-agent" "$work/agent/usr/share/man/man8/tide-agent.8.gz"
check_flags "$build/bin/tide-coordinator" "$work/coord/usr/share/man/man8/tide-coordinator.8.gz"
MANWIDTH=200 man -l "$work/coord/usr/share/man/man1/tidectl.1.gz" 2>/dev/null | col -b >"$work/tidectl.txt"
for cmd in "tidectl group create" "tidectl instance list" "tidectl completion"; do
  grep -q "^   $cmd" "$work/tidectl.txt" || fail "tidectl(1) does not describe $cmd"
done

step "systemd-analyze security --offline=yes (threshold $threshold)"
units="$work/agent/lib/systemd/system/tide-agent.service $work/coord/lib/systemd/system/tide-coordinator.service"
if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze is not installed: unit exposure not checked"
  exit 77
fi
# --offline (systemd >= 250) reads the unit file alone: no running systemd,
# and the unit's user need not exist here.
if ! probe=$(systemd-analyze security --offline=yes --threshold=100 "$work/agent/lib/systemd/system/tide-agent.service" 2>&1); then
  if grep -qi 'unrecognized option\|unknown option\|invalid option' <<<"$probe"; then
    echo "SKIP: this systemd-analyze ($(systemd-analyze --version | head -n1)) has no --offline: $probe"
    exit 77
  fi
  echo "$probe"; fail "systemd-analyze security --offline=yes does not run"
fi
for unit in $units; do
  status=0
  # --threshold counts tenths (0..100) of the exposure it prints (0.0..10.0).
  out=$(systemd-analyze security --offline=yes --threshold="${threshold/./}" "$unit" 2>&1) || status=$?
  score=$(grep -oE 'Overall exposure level for [^:]+: [0-9.]+' <<<"$out" | awk '{print $NF}' || true)
  [ -n "$score" ] || { echo "$out"; fail "no exposure level for $(basename "$unit")"; }
  echo "$(basename "$unit"): exposure $score"
  if [ $status -ne 0 ] || ! awk -v s="$score" -v t=$threshold 'BEGIN {exit !(s <= t)}'; then
    grep '✗' <<<"$out" || true
    fail "$(basename "$unit") exposure $score is above $threshold"
  fi
done

echo "PASS: lintian clean, manual pages match the binaries, units at or below exposure $threshold"
