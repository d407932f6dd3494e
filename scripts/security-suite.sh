#!/usr/bin/env bash
# The whole reliability and security suite in one command (SECURITY.md, "Test and fuzz suite"):
#   1. property tests of every parser (tokens, configuration, expiry, cookies, credentials, bodies,
#      routes, query strings) and the engine's unit tests;
#   2. races on one session and limits under concurrent creates, on every backend (the race
#      rules of tests/all/conformance/rules.rs);
#   3. SIGKILL mid-load, restart, nothing acknowledged lost, integrity ok (host/tests/all/crash.rs);
#   4. abuse of `serve` (floods, header/body/connection caps, slow and idle clients, epoch
#      deadline) and the invalid-token flood latency ratio, which it prints;
#   5. schemathesis against /openapi.json without credentials, with the admin key and with a
#      session (scripts/schemathesis.sh);
#   6. every cargo-fuzz target (scripts/fuzz.sh), when nightly and cargo-fuzz are installed.
#
#   scripts/security-suite.sh          # --short: what CI runs plus the ratio and 10 s of fuzzing
#   scripts/security-suite.sh --long   # long schemathesis run (stateful phase) and 10 min per fuzzer
set -euo pipefail
cd "$(dirname "$0")/.."

MODE="${1:---short}"
case "$MODE" in
  --short) SCHEMATHESIS_MODE=short; FUZZ_SECONDS=10 ;;
  --long) SCHEMATHESIS_MODE=long; FUZZ_SECONDS=600 ;;
  *) echo "usage: scripts/security-suite.sh [--short|--long]" >&2; exit 2 ;;
esac
export SCHEMATHESIS_MODE FUZZ_SECONDS

echo "=== 1. property and unit tests (component crate, native)"
cargo test -p zoe-session --lib
echo "=== 2. concurrency"
cargo test -p zoe-session --test all -- racing_ a_deleted_session_never_comes_back \
  many_writers_never_see_a_storage_error forty_concurrent_creates concurrent_cleanups
echo "=== 3. crash safety"
cargo test -p zoe-session-host --test all -- crash::
echo "=== 4. abuse, then the flood latency ratio"
cargo test -p zoe-session-host --test all -- abuse::
cargo test -p zoe-session-host --test all -- --ignored --nocapture abuse::invalid_token_flood_latency_ratio
echo "=== 5. schemathesis ($SCHEMATHESIS_MODE)"
scripts/schemathesis.sh
echo "=== 6. fuzzing (${FUZZ_SECONDS}s per target)"
fuzz_status=0
scripts/fuzz.sh || fuzz_status=$?
case "$fuzz_status" in
  0) ;;
  2) echo "(fuzzing skipped: see the message above)" ;;
  *) exit "$fuzz_status" ;;
esac
echo "=== the security suite passed ($MODE)"
