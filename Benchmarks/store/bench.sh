#!/usr/bin/env bash
# Store write/read throughput against h5py: 20,000 × 9,216 float32, same chunking (32 rows, as
# Linprobe chooses for this width), same compression, same access pattern; both sides run in this
# one invocation, alternating, and the medians are compared.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${PY:?source Benchmarks/venv.sh first (Benchmarks/run.sh does)}"
ROWS=${STORE_BENCH_ROWS:-20000}; DIM=${STORE_BENCH_DIM:-9216}; REPEATS=${STORE_BENCH_REPEATS:-3}
swift build -c release -Xswiftc -enable-testing --product bench-store >/dev/null
TMP=$(mktemp -d "${TMPDIR:-/tmp}/linprobe-bench-store.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
for LEVEL in 0 1; do
  ours=(); theirs=()
  for r in $(seq 1 "$REPEATS"); do
    ours+=("$(.build/release/bench-store "$TMP" "$ROWS" "$DIM" "$LEVEL" 1)")
    theirs+=("$("$PY" Benchmarks/store/reference.py "$TMP" "$ROWS" "$DIM" "$LEVEL" 1 32)")
  done
  printf '%s\n' "${ours[@]}" > "$TMP/ours.jsonl"; printf '%s\n' "${theirs[@]}" > "$TMP/theirs.jsonl"
  "$PY" - "$TMP/ours.jsonl" "$TMP/theirs.jsonl" "$ROWS" "$DIM" "$LEVEL" <<'PYEOF'
import json, statistics, sys
ours = [json.loads(l) for l in open(sys.argv[1])]
theirs = [json.loads(l) for l in open(sys.argv[2])]
rows, dim, level = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
mb = rows * dim * 4 / 1e6
comp = "none" if level == 0 else f"shuffle+deflate {level}"
print(f"store {rows} x {dim} float32 ({mb:.0f} MB), compression {comp}, {len(ours)} runs each, medians:")
print(f"  {'':8} {'Linprobe':>12} {'h5py':>12} {'ratio':>8}")
for key, label in (("write_s", "write"), ("read_s", "read")):
    a = statistics.median(o[key] for o in ours); b = statistics.median(t[key] for t in theirs)
    print(f"  {label:8} {mb/a:9.0f} MB/s {mb/b:9.0f} MB/s {b/a:7.2f}x")
PYEOF
done
