#!/usr/bin/env bash
# Store write/read throughput against h5py: 20,000 × 9,216 float32, same chunking (32 rows, as
# Linprobe chooses for this width), same compression, same Fletcher-32 checksums (Linprobe's store
# layout has them), same access pattern; both sides run in this one invocation, alternating, and the
# medians are compared, by wall time (MB/s) and by CPU time (user + system, steadier on a shared
# machine). h5py without checksums is shown too, for reference.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${PY:?source Benchmarks/venv.sh first (Benchmarks/run.sh does)}"
ROWS=${STORE_BENCH_ROWS:-20000}; DIM=${STORE_BENCH_DIM:-9216}; REPEATS=${STORE_BENCH_REPEATS:-5}
swift build -c release -Xswiftc -enable-testing --product bench-store >/dev/null
TMP=$(mktemp -d "${TMPDIR:-/tmp}/linprobe-bench-store.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
bash Benchmarks/machine.sh
for LEVEL in 0 1; do
  # One untimed run of each side first: the first file written after a quiet spell pays for the
  # file system's and the page cache's warm-up, and would always be Linprobe's.
  .build/release/bench-store "$TMP" "$ROWS" "$DIM" "$LEVEL" 1 >/dev/null
  "$PY" Benchmarks/store/reference.py "$TMP" "$ROWS" "$DIM" "$LEVEL" 1 32 >/dev/null
  ours=(); theirs=(); plain=()
  for r in $(seq 1 "$REPEATS"); do
    ours+=("$(.build/release/bench-store "$TMP" "$ROWS" "$DIM" "$LEVEL" 1)")
    theirs+=("$("$PY" Benchmarks/store/reference.py "$TMP" "$ROWS" "$DIM" "$LEVEL" 1 32)")
    plain+=("$("$PY" Benchmarks/store/reference.py "$TMP" "$ROWS" "$DIM" "$LEVEL" 1 32 --no-checksum)")
  done
  printf '%s\n' "${ours[@]}" > "$TMP/ours.jsonl"; printf '%s\n' "${theirs[@]}" > "$TMP/theirs.jsonl"
  printf '%s\n' "${plain[@]}" > "$TMP/plain.jsonl"
  "$PY" - "$TMP" "$ROWS" "$DIM" "$LEVEL" <<'PYEOF'
import json, statistics, sys
runs = {k: [json.loads(l) for l in open(f"{sys.argv[1]}/{k}.jsonl")] for k in ("ours", "theirs", "plain")}
rows, dim, level = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
mb = rows * dim * 4 / 1e6
comp = "none" if level == 0 else f"shuffle+deflate {level}"
print(f"store {rows} x {dim} float32 ({mb:.0f} MB), compression {comp}, Fletcher-32, {len(runs['ours'])} runs each, medians:")
print(f"  {'':6} {'Linprobe':>10} {'h5py':>10} {'ratio':>6} {'CPU s ours':>11} {'CPU s h5py':>11} {'CPU ratio':>9}"
      f" {'h5py no checksum':>17}")
for op in ("write", "read"):
    m = {k: statistics.median(r[f"{op}_s"] for r in v) for k, v in runs.items()}
    c = {k: statistics.median(r[f"{op}_cpu_s"] for r in v) for k, v in runs.items()}
    print(f"  {op:6} {mb/m['ours']:5.0f} MB/s {mb/m['theirs']:5.0f} MB/s {m['theirs']/m['ours']:5.2f}x"
          f" {c['ours']:11.2f} {c['theirs']:11.2f} {c['theirs']/c['ours']:8.2f}x {mb/m['plain']:12.0f} MB/s")
PYEOF
done
