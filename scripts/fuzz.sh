#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for FUZZ_SECONDS seconds each (default 30): token and
# configuration parsing, cookie lookup, credential headers, JSON request bodies. A crash stops
# the run and leaves its input in fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh                  # 30 s per target
#   FUZZ_SECONDS=600 scripts/fuzz.sh # the long run
#
# cargo-fuzz needs a nightly toolchain (`rustup toolchain install nightly`) and
# `cargo install cargo-fuzz`; without them the script says so and exits 2.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECONDS_PER_TARGET="${FUZZ_SECONDS:-30}"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz.sh: needs a nightly toolchain: rustup toolchain install nightly" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: needs cargo-fuzz: cargo install --locked cargo-fuzz" >&2
  exit 2
fi

LOGS="$(mktemp -d)"
for target in $(cargo +nightly fuzz list); do
  echo "--- fuzz $target (${SECONDS_PER_TARGET}s)"
  if ! cargo +nightly fuzz run "$target" -- -max_total_time="$SECONDS_PER_TARGET" \
    -print_final_stats=1 >"$LOGS/$target.log" 2>&1; then
    tail -n 40 "$LOGS/$target.log" >&2
    echo "fuzz.sh: $target failed; a crashing input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E "^stat::number_of_executed_units|^Done [0-9]+ runs" "$LOGS/$target.log" || true
done
echo "--- every fuzz target ran ${SECONDS_PER_TARGET}s without a crash"
