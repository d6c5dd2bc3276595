#!/usr/bin/env bash
# Real crates' test suites run three ways: plain, under `heapsweep run` (the LD_PRELOAD
# library, through cargo's runner variable) and under LeakSanitizer (nightly,
# -Zsanitizer=leak). Prints one Markdown table row per crate and way: leaks found, wall
# time of the test run (the build is done first and not timed), peak RSS of the largest
# process. Not part of CI: it fetches and builds the crates (several minutes).
#
#   bash benches/preload-suites.sh                      # serde_json, indexmap, bytes
#   CRATES="itoa@1.0.19" bash benches/preload-suites.sh  # other crates, name@version
#
# Scratch space: target/preload-bench (WORK=... to move it). Each crate's published
# source is fetched with cargo (a scratch package depending on it), copied out of cargo's
# registry, and its tests (`--tests`: unit and integration tests, no doctests) built
# once with stable for the plain and heapsweep runs, once with nightly for LeakSanitizer.
#
# RUST_BACKTRACE is 1 unless set (CI jobs often set it): the tests that panic then make
# std print symbolized backtraces, which is part of what a suite costs. Its value is
# printed with the table.
set -euo pipefail
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$ROOT/target/preload-bench}
CRATES=${CRATES:-"serde_json@1.0.154 indexmap@2.14.2 bytes@1.12.2"}
TARGET=x86_64-unknown-linux-gnu
mkdir -p "$WORK"

echo "== building the preload library and heapsweep (release)" >&2
(cd "$ROOT" && cargo build --release -p heapsweep-preload >&2)
HEAPSWEEP=$ROOT/target/release/heapsweep
LIB=$ROOT/target/release/libheapsweep_preload.so

# The published source of NAME@VERSION, copied to $WORK/src/NAME-VERSION.
fetch() {
  local name=$1 version=$2 dir=$WORK/fetch-$1
  mkdir -p "$dir/src"
  printf '[package]\nname = "fetch-%s"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\n%s = "=%s"\n\n[workspace]\n' \
    "$name" "$name" "$version" >"$dir/Cargo.toml"
  : >"$dir/src/lib.rs"
  local manifest
  manifest=$(cd "$dir" && cargo metadata --format-version 1 2>/dev/null |
    python3 -c "import json,sys; m=json.load(sys.stdin); print(next(p['manifest_path'] for p in m['packages'] if p['name']=='$name'))")
  local dst=$WORK/src/$name-$version
  rm -rf "$dst"
  mkdir -p "$WORK/src"
  cp -r "$(dirname "$manifest")" "$dst"
  # Its own workspace: the scratch space lies inside this repository's.
  grep -q '^\[workspace\]' "$dst/Cargo.toml" || printf '\n[workspace]\n' >>"$dst/Cargo.toml"
  echo "$dst"
}

# Runs "$@" under /usr/bin/time; prints "SECONDS MAXRSS_KB EXIT" on fd 3.
timed() {
  local out
  out=$(mktemp)
  set +e
  /usr/bin/time -f "%e %M" -o "$out" "$@"
  local rc=$?
  set -e
  # The last line: /usr/bin/time writes "Command exited with non-zero status N" first.
  echo "$(tail -n 1 "$out") $rc" >&3
  rm -f "$out"
}

row() { # crate way leaks seconds rss_kb exit
  printf '| %s | %s | %s | %s | %s MiB | %s |\n' "$1" "$2" "$3" "$4" "$(($5 / 1024))" "$6"
}

echo "RUST_BACKTRACE=$RUST_BACKTRACE"
echo
echo "| crate | way | leaks found | wall time (s) | peak RSS | cargo test exit |"
echo "| --- | --- | --- | ---: | ---: | --- |"
for spec in $CRATES; do
  name=${spec%@*}
  version=${spec#*@}
  src=$(fetch "$name" "$version")
  plain_target=$WORK/target-stable
  lsan_target=$WORK/target-lsan
  echo "== $name $version: building (stable, then nightly with LeakSanitizer)" >&2
  (cd "$src" && CARGO_TARGET_DIR=$plain_target cargo +stable test --tests --no-run -q >&2)
  (cd "$src" && RUSTFLAGS="-Zsanitizer=leak" CARGO_TARGET_DIR=$lsan_target \
    cargo +nightly test --tests --no-run -q --target $TARGET >&2)

  echo "== $name: plain" >&2
  read -r secs rss rc < <( (cd "$src" && CARGO_TARGET_DIR=$plain_target \
    timed cargo +stable test --tests --no-fail-fast -q >/dev/null 2>"$WORK/$name.plain.err") 3>&1)
  row "$name $version" plain "-" "$secs" "$rss" "$rc"

  echo "== $name: heapsweep run" >&2
  reports=$WORK/reports-$name
  rm -rf "$reports" && mkdir -p "$reports"
  read -r secs rss rc < <( (cd "$src" && CARGO_TARGET_DIR=$plain_target \
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="$HEAPSWEEP run --lib $LIB --" \
    HEAPSWEEP="report=$reports/%p.json" \
    timed cargo +stable test --tests --no-fail-fast -q >/dev/null 2>"$WORK/$name.heapsweep.err") 3>&1)
  leaks=$(python3 - "$reports" <<'EOF'
import json, os, sys
d = sys.argv[1]
reps = [json.load(open(os.path.join(d, f))) for f in os.listdir(d) if f.endswith(".json")]
blocks = sum(r["summary"]["leaked_blocks"] for r in reps)
bad = sum(1 for r in reps if r["summary"]["leaked_blocks"])
print(f"{blocks} blocks in {bad} of {len(reps)} binaries")
EOF
)
  row "$name $version" "heapsweep run" "$leaks" "$secs" "$rss" "$rc"

  echo "== $name: LeakSanitizer" >&2
  read -r secs rss rc < <( (cd "$src" && RUSTFLAGS="-Zsanitizer=leak" CARGO_TARGET_DIR=$lsan_target \
    timed cargo +nightly test --tests --no-fail-fast -q --target $TARGET >/dev/null 2>"$WORK/$name.lsan.err") 3>&1)
  leaks=$(grep -c "ERROR: LeakSanitizer: detected memory leaks" "$WORK/$name.lsan.err" || true)
  allocs=$({ grep -o "leaked in [0-9]* allocation" "$WORK/$name.lsan.err" || true; } | awk '{s += $3} END {print s + 0}')
  row "$name $version" LeakSanitizer "$allocs blocks in $leaks binaries" "$secs" "$rss" "$rc"
done
echo "stderr of each run: $WORK/*.err" >&2
