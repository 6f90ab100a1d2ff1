#!/bin/sh
# Fills npm's cache (~/.npm, or $npm_config_cache) with the web console's
# packages, so that CMake's `npm ci --offline` works without a network
# afterwards (coordinator/console/CMakeLists.txt). Called by
# scripts/install-deps; needs the npm registry unless the cache already
# holds them. Writes nothing into the source tree: the install runs in a
# temporary directory that is removed.
set -eu

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
if ! command -v npm >/dev/null 2>&1; then
  echo "fill-npm-cache: npm not found; the web console will not be built" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tide-console-npm.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
cp "$here/package.json" "$here/package-lock.json" "$work/"
cd "$work"
# No install scripts run: the build does not need them.
offline() { npm ci --offline --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null 2>&1; }
if offline; then
  echo "fill-npm-cache: npm's cache already holds the console's packages ($(npm config get cache))"
  exit 0
fi
# A registry that hiccups is tried again, a few times.
for attempt in 1 2 3; do
  rm -rf node_modules
  if npm ci --no-audit --no-fund --ignore-scripts --loglevel=error; then break; fi
  [ "$attempt" -eq 3 ] && exit 1
  echo "fill-npm-cache: npm ci failed (attempt $attempt of 3); again in 5 s" >&2
  sleep 5
done
# The proof that matters: the same install works from the cache alone.
rm -rf node_modules
if ! offline; then
  echo "fill-npm-cache: npm ci --offline still fails after filling the cache" >&2
  exit 1
fi
echo "fill-npm-cache: npm's cache now holds the console's packages ($(npm config get cache))"
