#!/usr/bin/env bash
# Extraction end to end, Linprobe vs PyTorch and vs onnxruntime on the same 2 cores, in one run:
#   a folder of real JPEG photos at ~500x375 (built once from offline photo sets into
#   .bench-cache/extract by make_photos.py), VISSL's test transform (Resize 256, CenterCrop 224),
#   ResNet-50 with VISSL's canonical six-tap pool map, every feature stored in HDF5.
#   Linprobe: `linprobe extract` (decode workers x trunk threads); PyTorch: reference.py
#   (ImageFolder + DataLoader num_workers, channels_last, inference_mode, h5py); onnxruntime:
#   reference.py --engine onnxruntime (the same DataLoader and h5py, the same six-tap ResNet-50
#   exported to ONNX once, before timing; intra-op threads = the trunk threads). Each
#   configuration runs BENCH_EXTRACT_REPEATS times, interleaved; medians are compared. CPU s/img
#   is user + system time of the whole command (DataLoader worker processes included) per image.
# Then peak memory of `linprobe extract` at 1k and 10k images (ResNet-18, 64x64 input), which
# must not grow with the dataset.
# Weights are random (speed does not depend on them); OPENBLAS_CORETYPE/L2_SIZE are unset by
# Benchmarks/run.sh for both sides. Knobs: BENCH_EXTRACT_IMAGES (320), BENCH_EXTRACT_REPEATS (3),
# BENCH_EXTRACT_MEMORY=0 skips the memory part.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${PY:?source Benchmarks/venv.sh first (Benchmarks/run.sh does)}"
N="${BENCH_EXTRACT_IMAGES:-320}"
REPS="${BENCH_EXTRACT_REPEATS:-3}"
CACHE="$PWD/.bench-cache/extract"
mkdir -p "$CACHE"

swift build -c release -Xswiftc -enable-testing --product linprobe >/dev/null
BIN="$(swift build -c release -Xswiftc -enable-testing --show-bin-path)/linprobe"

# Photo sources: OpenCV's samples (Debian opencv-doc) if installable, plus what Python ships.
if [ ! -d /usr/share/doc/opencv-doc/examples/data ] && [ "$(id -u)" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq opencv-doc >/dev/null 2>&1 || true
fi
photos() {  # photos <dir> <count> [make_photos args]
  local dir=$1 count=$2; shift 2
  if [ "$(find "$dir" -name '*.jpg' 2>/dev/null | wc -l)" != "$count" ]; then
    rm -rf "$dir"
    "$PY" Benchmarks/extract/make_photos.py "$dir" "$count" "$@"
  fi
}
photos "$CACHE/photos$N" "$N"

pipeline() {  # pipeline <file> <data> <depth> <resize> <crop> <pool map>
  cat > "$1" <<EOF
config:
  DATA:
    TEST:
      DATA_SOURCES: [disk_folder]
      LABEL_SOURCES: [disk_folder]
      DATA_PATHS: ["$2"]
      BATCHSIZE_PER_REPLICA: 32
      TRANSFORMS:
        - {name: Resize, size: $4}
        - {name: CenterCrop, size: $5}
        - {name: ToTensor}
        - {name: Normalize, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}
  MODEL:
    TRUNK: {NAME: resnet, RESNETS: {DEPTH: $3}}
    FEATURE_EVAL_SETTINGS:
      LINEAR_EVAL_FEAT_POOL_OPS_MAP: $6
    WEIGHTS_INIT: {PARAMS_FILE: ""}
EOF
}
CANONICAL='[["conv1", ["AvgPool2d", [[10, 10], 10, 4]]], ["res2", ["AvgPool2d", [[16, 16], 8, 0]]], ["res3", ["AvgPool2d", [[13, 13], 5, 0]]], ["res4", ["AvgPool2d", [[8, 8], 3, 0]]], ["res5", ["AvgPool2d", [[6, 6], 1, 0]]], ["res5avg", ["Identity", []]]]'
pipeline "$CACHE/rn50.yaml" "$CACHE/photos$N" 50 256 224 "$CANONICAL"

RESULTS="$CACHE/results.jsonl"
: > "$RESULTS"
ours() {  # ours <threads> <decode workers>
  local work="$CACHE/work" log="$CACHE/ours.log"
  rm -rf "$work"
  /usr/bin/time -f "TIME %e %M %U %S" "$BIN" extract "$CACHE/rn50.yaml" --workdir "$work" --threads "$1" --decode-workers "$2" \
    >/dev/null 2>"$log"
  "$PY" - "$1" "$2" "$log" "$N" >>"$RESULTS" <<'PYEOF'
import json, re, sys
threads, workers, log, n = sys.argv[1], sys.argv[2], open(sys.argv[3]).read(), int(sys.argv[4])
wall, rss, user, system = re.search(r"TIME ([\d.]+) (\d+) ([\d.]+) ([\d.]+)", log).groups()
rate = float(re.search(r"\(([\d.]+)/s,", log).group(1))
print(json.dumps({"engine": "linprobe", "config": f"{threads} trunk threads, {workers} decode workers",
                  "wall": float(wall), "e2e": n / float(wall), "loop": rate, "rss_mb": int(rss) / 1024,
                  "cpu": (float(user) + float(system)) / n}))
PYEOF
}
theirs() {  # theirs <torch|onnxruntime> <threads> <workers>
  local out
  out=$(/usr/bin/time -f "TIME %e %M %U %S" "$PY" Benchmarks/extract/reference.py --engine "$1" --onnx "$ONNX" \
        --data "$CACHE/photos$N" --out "$CACHE/reference.h5" --threads "$2" --workers "$3" 2>"$CACHE/theirs.log")
  "$PY" - "$1" "$2" "$3" "$out" "$CACHE/theirs.log" "$N" >>"$RESULTS" <<'PYEOF'
import json, re, sys
engine, threads, workers, out = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
log, n = open(sys.argv[5]).read(), int(sys.argv[6])
wall, rss, user, system = re.search(r"TIME ([\d.]+) (\d+) ([\d.]+) ([\d.]+)", log).groups()
label = "pytorch" if engine == "torch" else engine
print(json.dumps({"engine": label, "config": f"{threads} {engine} threads, {workers} DataLoader workers",
                  "wall": float(wall), "e2e": n / float(wall), "loop": out["images_per_second"],
                  "rss_mb": max(int(rss) / 1024, out["peak_rss_mb"]) + out["worker_peak_rss_mb"] * int(workers),
                  "cpu": (float(user) + float(system)) / n}))
PYEOF
}
ONNX="$CACHE/resnet50_taps.onnx"
[ -s "$ONNX" ] || "$PY" Benchmarks/extract/reference.py --export "$ONNX" >/dev/null 2>&1

bash Benchmarks/machine.sh
echo "ResNet-50, six VISSL taps, Resize 256 + CenterCrop 224, $N JPEG photos ~500x375, batch 32, 2 cores; median of $REPS (interleaved)"
for rep in $(seq "$REPS"); do
  for w in 0 1 2; do ours 2 "$w"; theirs torch 2 "$w"; theirs onnxruntime 2 "$w"; done
  ours 1 1
done

"$PY" - "$RESULTS" <<'PYEOF'
import collections, json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
groups = collections.OrderedDict()
for r in rows:
    groups.setdefault((r["engine"], r["config"]), []).append(r)
med = {}
print(f"{'engine':<11} {'configuration':<42} {'wall s':>7} {'img/s e2e':>10} {'img/s loop':>11} {'CPU s/img':>10} {'peak MB':>8}")
for (engine, config), rs in groups.items():
    m = {k: statistics.median(r[k] for r in rs) for k in ("wall", "e2e", "loop", "rss_mb", "cpu")}
    med[(engine, config)] = m
    print(f"{engine:<11} {config:<42} {m['wall']:7.1f} {m['e2e']:10.2f} {m['loop']:11.2f} {m['cpu']:10.3f} {m['rss_mb']:8.0f}")
best = {e: max((v for (k, v) in med.items() if k[0] == e), key=lambda m: m["e2e"])
        for e in ("linprobe", "pytorch", "onnxruntime")}
for other, target in (("pytorch", 1.3), ("onnxruntime", 1.2)):
    print(f"ratio to {other}, best configuration of each: "
          f"{best['linprobe']['e2e'] / best[other]['e2e']:.2f}x end to end (whole command), "
          f"{best['linprobe']['loop'] / best[other]['loop']:.2f}x streaming loop  (target >= {target}x)")
PYEOF

# Memory: the same command at 1k and 10k images must peak at the same RSS.
[ "${BENCH_EXTRACT_MEMORY:-1}" = 1 ] || exit 0
echo
echo "peak memory of linprobe extract vs dataset size (ResNet-18, Resize 72 + CenterCrop 64, six taps, 96x72 JPEGs)"
SMALL='[["conv1", ["AvgPool2d", [[10, 10], 10, 4]]], ["res2", ["AvgPool2d", [[4, 4], 4, 0]]], ["res3", ["AvgPool2d", [[2, 2], 2, 0]]], ["res4", ["Identity", []]], ["res5", ["Identity", []]], ["res5avg", ["Identity", []]]]'
printf '%-8s %10s %10s %12s %10s\n' images "wall s" "images/s" "store MB" "peak MB"
for count in 1000 10000; do
  photos "$CACHE/small$count" "$count" --size 96x72 --classes 10
  pipeline "$CACHE/small$count.yaml" "$CACHE/small$count" 18 72 64 "$SMALL"
  rm -rf "$CACHE/work-small"
  /usr/bin/time -f "TIME %e %M %U %S" "$BIN" extract "$CACHE/small$count.yaml" --workdir "$CACHE/work-small" \
    >/dev/null 2>"$CACHE/small.log"
  read -r wall rss < <(sed -n 's/^TIME //p' "$CACHE/small.log")
  store=$(du -m "$CACHE"/work-small/features/*/test.h5 | cut -f1)
  awk -v n="$count" -v w="$wall" -v s="$store" -v r="$rss" 'BEGIN { printf "%-8s %10.1f %10.1f %12s %10.0f\n", n, w, n / w, s, r / 1024 }'
done
