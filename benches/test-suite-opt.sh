#!/usr/bin/env bash
# What optimizing alloc-core in test builds buys: a real crate's test suite run plain
# (its default allocator), with HeapSweep as the global allocator at the dev profile's
# opt-level 0, and with HeapSweep at opt-level 2 (`[profile.dev.package.alloc-core]
# opt-level = 2`, given here with `--config`). Not part of CI.
#
#   bash benches/test-suite-opt.sh [RUNS]
#
# The crate (regex-syntax, by default; CRATE=name VERSION=x.y.z to change) is fetched
# with cargo into target/test-suite-opt/, given alloc-core as an optional dependency
# (feature `heapsweep`) and a `#[global_allocator]` under `cfg(all(test, feature =
# "heapsweep"))` in its lib.rs; its lib tests are built once per variant, then the test
# binaries run RUNS times each (default 5), interleaved. Prints the median wall and CPU
# (user + sys) seconds of each variant and the ratios to the plain run. `HEAPSWEEP` is
# passed through to the runs (e.g. `HEAPSWEEP=check_at_exit=0` to leave out the check).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${1:-5}
CRATE=${CRATE:-regex-syntax}
VERSION=${VERSION:-0.8.12}
SCRATCH=$ROOT/target/test-suite-opt
mkdir -p "$SCRATCH/fetch/src"

# 1. Fetch the crate's published source with cargo.
cat >"$SCRATCH/fetch/Cargo.toml" <<EOF
[package]
name = "fetch-test-suite"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
$CRATE = "=$VERSION"
[workspace]
EOF
: >"$SCRATCH/fetch/src/lib.rs"
(cd "$SCRATCH/fetch" && cargo fetch -q)
SRC=$(cd "$SCRATCH/fetch" && cargo metadata --format-version 1 |
  python3 -c "import json,sys; m=json.load(sys.stdin); print([p['manifest_path'] for p in m['packages'] if p['name']=='$CRATE'][0])")
CRATE_DIR=$SCRATCH/$CRATE-$VERSION
rm -rf "$CRATE_DIR"
cp -r "$(dirname "$SRC")" "$CRATE_DIR"
chmod -R u+w "$CRATE_DIR"

# 2. HeapSweep as an optional global allocator of its lib tests.
python3 - "$CRATE_DIR" "$ROOT/alloc-core" <<'EOF'
import re, sys
crate, alloc_core = sys.argv[1], sys.argv[2]
toml = open(f"{crate}/Cargo.toml").read()
if "[features]" in toml:
    toml = toml.replace("[features]\n", '[features]\nheapsweep = ["dep:alloc-core"]\n', 1)
else:
    toml += '\n[features]\nheapsweep = ["dep:alloc-core"]\n'
toml += f'\n[dependencies.alloc-core]\npath = "{alloc_core}"\noptional = true\n\n[workspace]\n'
open(f"{crate}/Cargo.toml", "w").write(toml)
lib = re.search(r'\[lib\][^\[]*?path = "([^"]+)"', toml)
lib_path = f"{crate}/{lib.group(1) if lib else 'src/lib.rs'}"
with open(lib_path, "a") as f:
    f.write('\n#[cfg(all(test, feature = "heapsweep"))]\n#[global_allocator]\n'
            'static HEAPSWEEP: alloc_core::HeapSweep = alloc_core::HeapSweep::new();\n')
EOF
rm -f "$CRATE_DIR/Cargo.lock"

# 3. One test binary per variant (builds kept outside the copy, so that a rerun only
# rebuilds the crate).
export CARGO_TARGET_DIR=$SCRATCH/target
build() {
  (cd "$CRATE_DIR" && cargo test --lib --no-run --message-format=json "$@" 2>/dev/null |
    python3 -c "import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get('reason')=='compiler-artifact' and m.get('executable') and m['profile']['test']: print(m['executable'])" | tail -1)
}
PLAIN=$(build)
OPT0=$(build --features heapsweep)
OPT2=$(build --features heapsweep --config 'profile.dev.package.alloc-core.opt-level=2')
echo "binaries: $PLAIN $OPT0 $OPT2"
[ "$PLAIN" != "$OPT0" ] && [ "$OPT0" != "$OPT2" ] || { echo "variants did not build apart" >&2; exit 1; }

# 4. Run them, interleaved; one line per run: variant wall cpu.
TIMES=$SCRATCH/times.txt
: >"$TIMES"
for run in $(seq 1 "$RUNS"); do
  for variant in plain opt0 opt2; do
    case $variant in plain) bin=$PLAIN ;; opt0) bin=$OPT0 ;; opt2) bin=$OPT2 ;; esac
    (cd "$CRATE_DIR" && /usr/bin/time -f "$variant %e %U %S" -a -o "$TIMES" "$bin" -q >/dev/null 2>"$SCRATCH/$variant.stderr") ||
      { echo "$variant failed: see $SCRATCH/$variant.stderr" >&2; exit 1; }
  done
done

# 5. Medians and ratios.
python3 - "$TIMES" "$CRATE" "$VERSION" "$RUNS" <<'EOF'
import statistics, sys
times, crate, version, runs = sys.argv[1:]
rows = {}
for line in open(times):
    v, wall, user, sys_ = line.split()
    rows.setdefault(v, []).append((float(wall), float(user) + float(sys_)))
med = {v: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r)) for v, r in rows.items()}
names = {"plain": "plain (its default allocator)", "opt0": "HeapSweep, alloc-core opt-level 0",
         "opt2": "HeapSweep, alloc-core opt-level 2"}
print(f"{crate} {version} lib tests, median of {runs} runs")
print("| variant | wall (s) | wall ratio | CPU user+sys (s) | CPU ratio |")
print("| --- | ---: | ---: | ---: | ---: |")
for v in ["plain", "opt0", "opt2"]:
    w, c = med[v]
    print(f"| {names[v]} | {w:.2f} | {w / med['plain'][0]:.2f}x | {c:.2f} | {c / med['plain'][1]:.2f}x |")
print(f"opt-level 0 / opt-level 2: wall {med['opt0'][0] / med['opt2'][0]:.2f}x, CPU {med['opt0'][1] / med['opt2'][1]:.2f}x")
EOF
