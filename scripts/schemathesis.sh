#!/usr/bin/env bash
# Schema-driven fuzzing: runs schemathesis against `zoe-session-host serve` for every operation
# of /openapi.json, three times — without credentials, with the admin key, and with a session
# token — and fails on any 5xx (`not_a_server_error`) or any response that does not match the
# document (status code, content type, body schema, documented headers).
#
#   scripts/schemathesis.sh                         # short run (CI): a few examples per operation
#   SCHEMATHESIS_MODE=long scripts/schemathesis.sh  # long run: many examples, stateful phase too
#
# Installs schemathesis from PyPI into .venv-schemathesis/ the first time. Serves on a free
# loopback port with a temporary database; nothing else on the machine is touched.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE="${SCHEMATHESIS_MODE:-short}"
VENV="${SCHEMATHESIS_VENV:-.venv-schemathesis}"
SEED="${SCHEMATHESIS_SEED:-20261128}"
case "$MODE" in
  short) EXAMPLES=12; PHASES="examples,coverage,fuzzing"; MAX_TIME=30 ;;
  long) EXAMPLES=400; PHASES="examples,coverage,fuzzing,stateful"; MAX_TIME=900 ;;
  *) echo "SCHEMATHESIS_MODE must be short or long" >&2; exit 2 ;;
esac

if [ ! -x "$VENV/bin/st" ]; then
  echo "--- installing schemathesis into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis>=4.32,<5"
fi
"$VENV/bin/st" --version

echo "--- building zoe-session-host"
# The same selection as `cargo test --workspace`, so that after the test run this builds nothing:
# `-p zoe-session-host` alone unifies features differently and recompiles Wasmtime.
cargo build --quiet --workspace --all-targets
BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/zoe-session-host"

WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
ADMIN_KEY="schemathesis-admin-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "--- serving on $BASE (database in $WORK)"
SESSION_DB_PATH="$WORK/sessions.db" SESSION_ADMIN_KEY="$ADMIN_KEY" SESSION_LOG_REQUESTS=false \
  "$BIN" serve --listen "127.0.0.1:$PORT" 2>"$WORK/serve.log" &
SERVER_PID=$!
for _ in $(seq 1 300); do
  if curl -fsS "$BASE/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then cat "$WORK/serve.log" >&2; exit 1; fi
  sleep 0.1
done
curl -fsS "$BASE/health" >/dev/null

# One worker: with two, schemathesis compiles generated code on two threads, and CPython 3.11's
# AST constructor can then fail with "SystemError: AST constructor recursion depth mismatch"
# (python/cpython#106905) — a crash of the tool, reported as a runtime error, that failed a CI
# run once. The server is exercised the same way, one request at a time.
CHECKS="not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance"
status=0
run() {
  local name="$1"; shift
  echo "--- schemathesis ($MODE): $name"
  "$VENV/bin/st" run "$BASE/openapi.json" --url "$BASE" \
    --checks "$CHECKS" --max-examples "$EXAMPLES" --phases "$PHASES" --max-time "$MAX_TIME" \
    --seed "$SEED" --workers 1 --request-timeout 15 --no-color \
    --report junit --report-junit-path "$WORK/junit-$name.xml" \
    --suppress-health-check all "$@" || status=1
}
run anonymous
run admin -H "Authorization: Bearer $ADMIN_KEY"

# A real session for the token-authenticated run, made after the admin run (which may call
# `DELETE /sessions?all=true` and end every session). Its user gets many sessions during the run,
# so the per-user limit evicts; that is fine: the checks are about server errors and the schema.
TOKEN="$(curl -fsS -X POST "$BASE/sessions/create" -H "Authorization: Bearer $ADMIN_KEY" \
  -H 'content-type: application/json' -d '{"user_id":"schemathesis","metadata":{"role":"admin"}}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["session_id"])')"
run session -H "X-Session-ID: $TOKEN"

if [ "$status" -ne 0 ]; then
  echo "--- server log (last 50 lines)"
  tail -n 50 "$WORK/serve.log"
fi
exit "$status"
