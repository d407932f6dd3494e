#!/usr/bin/env bash
# Validate throughput at concurrency 1 and 32 under Node (`npm start`'s server) and under the
# native host's `serve`, one after the other on loopback, with wrk.
#
#   bash node/scripts/bench.sh            # from the repository root, or `npm run bench` in node/
#   DURATION=10s bash node/scripts/bench.sh
#
# Needs wrk (`apt-get install wrk`), node_modules (`npm ci` in node/) and a built component.
# `serve` is target/release/zoe-session-host (`cargo build --release -p zoe-session-host`), else
# the debug binary (slower; the output says which), else that half is skipped. Set HOST_BIN to
# choose another. Both servers get request logging off and a fresh database in a temporary
# directory; each run validates one session's token.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo="$(cd "$here/.." && pwd)"
duration="${DURATION:-3s}"
node_port="${NODE_PORT:-39731}"
serve_port="${SERVE_PORT:-39732}"
key="bench-admin-key-0123456789abcdef"
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

wait_for() { # url
  for _ in $(seq 1 200); do
    curl -fs "$1/health" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "no server at $1" >&2
  return 1
}

token_for() { # url
  curl -fs -X POST "$1/sessions/create" -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' -d '{"user_id":"bench"}' |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).session_id))'
}

measure() { # label url token connections
  local out rps lat
  out="$(wrk -t1 -c"$4" -d"$duration" -H "X-Session-ID: $3" "$2/sessions/validate")"
  if grep -q 'Non-2xx' <<<"$out"; then
    echo "$1: non-2xx answers:" >&2
    echo "$out" >&2
    exit 1
  fi
  rps="$(awk '/^Requests\/sec/ {print $2}' <<<"$out")"
  lat="$(awk '/^ +Latency/ {print $2}' <<<"$out")"
  printf '| %-28s | %4s | %10s | %9s |\n' "$1" "$4" "$rps" "$lat"
}

(cd "$here" && node scripts/build.js)

echo "| server                       | conc | requests/s | latency avg |"
echo "|---|---|---|---|"

PORT="$node_port" HOST=127.0.0.1 SESSION_DB_PATH="$work/node.db" SESSION_ADMIN_KEY="$key" \
  SESSION_LOG_REQUESTS=false node "$here/bin/zoe-session.js" 2>"$work/node.log" &
pids+=($!)
wait_for "http://127.0.0.1:$node_port"
token="$(token_for "http://127.0.0.1:$node_port")"
node_label="Node $(node --version) (jco)"
measure "$node_label" "http://127.0.0.1:$node_port" "$token" 1
measure "$node_label" "http://127.0.0.1:$node_port" "$token" 32
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

bin="${HOST_BIN:-}"
label="serve (release)"
if [ -z "$bin" ]; then
  if [ -x "$repo/target/release/zoe-session-host" ]; then
    bin="$repo/target/release/zoe-session-host"
  elif [ -x "$repo/target/debug/zoe-session-host" ]; then
    bin="$repo/target/debug/zoe-session-host"
    label="serve (DEBUG build)"
  fi
else
  label="serve ($bin)"
fi
if [ -z "$bin" ]; then
  echo "(no zoe-session-host binary: build it with \`cargo build --release -p zoe-session-host\` for the serve rows)" >&2
  exit 0
fi
SESSION_ADMIN_KEY="$key" SESSION_DB_PATH="$work/serve.db" SESSION_LOG_REQUESTS=false \
  "$bin" serve --listen "127.0.0.1:$serve_port" 2>"$work/serve.log" &
pids+=($!)
wait_for "http://127.0.0.1:$serve_port"
token="$(token_for "http://127.0.0.1:$serve_port")"
measure "$label" "http://127.0.0.1:$serve_port" "$token" 1
measure "$label" "http://127.0.0.1:$serve_port" "$token" 32
