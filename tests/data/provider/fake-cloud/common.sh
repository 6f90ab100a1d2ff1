# Shared helpers of the fake cloud: an exec-provider backend whose "instances"
# are `sleep` processes on this host, with state kept under $FAKE_CLOUD_DIR.
# It exists to exercise tide's exec provider contract (docs/providers.md)
# without a real cloud; a real backend would call the cloud's CLI instead.
#
# Knobs (environment):
#   FAKE_CLOUD_DIR    state directory (required)
#   FAKE_CLOUD_FAULT  "<operation>:<fault>" to misbehave on purpose, where
#                     fault is one of: hang, badjson, badfield, fail, tempfail

set -u
: "${FAKE_CLOUD_DIR:?FAKE_CLOUD_DIR must name the fake cloud state directory}"
mkdir -p "$FAKE_CLOUD_DIR/instances"

input=$(cat)

# json_str NAME: the string value of "NAME" in the request. tide writes
# compact JSON and its identifiers never hold quotes or backslashes, so a
# pattern match is enough here; a real script would use jq.
json_str() {
  printf '%s' "$input" | sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"
}
# json_num NAME: the integer value of "NAME" in the request.
json_num() {
  printf '%s' "$input" | sed -n "s/.*\"$1\":\\([0-9][0-9]*\\).*/\\1/p"
}

maybe_fault() {
  case "${FAKE_CLOUD_FAULT:-}" in
    "$1:hang") sleep 300 & echo $! >"$FAKE_CLOUD_DIR/hang.pid"; wait ;;
    "$1:badjson") echo '{"provider_id": "x", oops'; exit 0 ;;
    "$1:badfield") echo '{"provider_id": "x", "address": "127.0.0.1", "port": "eighty", "state": "running", "instances": 5}'; exit 0 ;;
    "$1:fail") echo "fake cloud: quota exceeded for $1" >&2; exit 3 ;;
    "$1:tempfail") echo "fake cloud: API rate limited" >&2; exit 75 ;;
  esac
}

# alive PID: the process exists and is not a zombie.
alive() {
  [ -r "/proc/$1/stat" ] || return 1
  state=$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [ "$state" != Z ] && [ "$state" != X ]
}

# instance_json DIR STATE: one instance object of the contract.
instance_json() {
  d=$1
  printf '{"provider_id":"%s","instance_id":"%s","group":"%s","idempotency_key":"%s","address":"%s","port":%s,"state":"%s","started_at_ms":%s}' \
    "$(basename "$d")" "$(cat "$d/instance_id")" "$(cat "$d/group")" "$(cat "$d/key")" \
    "$(cat "$d/address")" "$(cat "$d/port")" "$2" "$(cat "$d/started_at_ms")"
}
