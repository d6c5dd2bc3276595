#!/usr/bin/env bash
# The exit of a test binary under HeapSweep: CPU time (perf stat -e task-clock, mean of
# RUNS runs) of a trivial test, a panicking test and a leaking test, each with the exit
# check (default) and without it (check_at_exit=0). Builds benches/exit-probe, a user's
# crate outside the workspace, in target/exit-probe.
#
#   bash benches/exit-probe.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/exit-probe"
runs="${1:-20}"
export CARGO_TARGET_DIR="$PWD/../../target/exit-probe"
cargo test --quiet --no-run 2>/dev/null
bin=$(ls -t "$CARGO_TARGET_DIR"/debug/deps/exit-* | grep -v '\.d$' | head -1)
cpu_ms() {
  # The leaking test's exit status is 23: not an error here.
  { HEAPSWEEP="$2" perf stat -x, -r "$runs" -e task-clock "$bin" "$1" --exact 2>&1 >/dev/null || true; } |
    awk -F, '/task-clock/ { printf "%.1f", $1 }'
}
echo "| test | exit check | check_at_exit=0 | the check and its report |"
echo "| --- | ---: | ---: | ---: |"
for t in trivial panics leaks; do
  with=$(cpu_ms "$t" "")
  without=$(cpu_ms "$t" "check_at_exit=0")
  echo "| $t | $with ms | $without ms | $(awk "BEGIN { printf \"%.1f\", $with - $without }") ms |"
done
