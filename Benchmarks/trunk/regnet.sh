#!/usr/bin/env bash
# RegNet trunk benchmark: RegNetY-8GF with ClassyVision's (VISSL's) widths 168/448/896/2016 at
# 224×224 on VISSL's regnet8Gf ImageNet-1k taps (res4 AdaptiveAvgPool2d [3, 3], res5 [6, 1],
# avgpool), images/s of Linprobe against PyTorch (torchvision's RegNet built from the same stage
# parameters, channels_last and contiguous, inference_mode), same threads, one process per engine
# (peak RSS of each), one run. REGNET_BENCH_MODELS adds e.g. regnet_y_128gf (use batch 1).
#
# Environment: TRUNK_BENCH_THREADS (2), REGNET_BENCH_BATCH (8), TRUNK_BENCH_ITERATIONS (3),
# REGNET_BENCH_MODELS ("regnet_y_8gf"). Run through Benchmarks/run.sh (sets $PY) or set PY.
set -euo pipefail
cd "$(dirname "$0")/../.."
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
: "${PY:?run through Benchmarks/run.sh, or set PY to a Python with torch and torchvision}"
THREADS="${TRUNK_BENCH_THREADS:-2}"
BATCH="${REGNET_BENCH_BATCH:-8}"
ITER="${TRUNK_BENCH_ITERATIONS:-3}"
MODELS="${REGNET_BENCH_MODELS:-regnet_y_8gf}"
swift build -c release -Xswiftc -enable-testing --product bench-trunk >&2
BIN=.build/release/bench-trunk
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
common=(--batch "$BATCH" --threads "$THREADS" --iterations "$ITER" --warmup 1)
for m in $MODELS; do
  "$BIN" --regnet "$m" "${common[@]}" >> "$OUT/linprobe-$m.jsonl"
  "$PY" Benchmarks/trunk/reference_regnet.py --model "$m" "${common[@]}" >> "$OUT/torch-$m.jsonl"
  "$PY" Benchmarks/trunk/reference_regnet.py --model "$m" --layout contiguous "${common[@]}" \
    >> "$OUT/torch-contiguous-$m.jsonl"
done
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
"$PY" - "$OUT" "$MODELS" "$CPU" <<'PYEOF'
import json, os, sys
out, models, cpu = sys.argv[1], sys.argv[2].split(), sys.argv[3]
def load(name):
    p = os.path.join(out, name + ".jsonl")
    return [json.loads(l) for l in open(p)] if os.path.exists(p) and os.path.getsize(p) else []
print(f"CPU: {cpu}")
print("| model | engine | images/s | × PyTorch (channels_last) | CPU s/image | peak RSS MB |")
print("|---|---|---|---|---|---|")
for m in models:
    runs = {k: load(f"{k}-{m}") for k in ["linprobe", "torch", "torch-contiguous"]}
    ips = {k: v[0]["images_per_second"] for k, v in runs.items() if v}
    for k, v in runs.items():
        if not v:
            continue
        r = v[0]
        rt = f"{ips[k] / ips['torch']:.2f}" if "torch" in ips else "n/a"
        print(f"| {m} | {k} | {ips[k]:.2f} | {rt} | {r['cpu_seconds_per_image']:.3f} | {r['peak_rss_mb']:.0f} |")
first = load(f"linprobe-{models[0]}")
if first:
    print(f"\n{first[0]['threads']} threads, batch {first[0]['batch']}, OpenBLAS core {first[0]['blas_core']}, one run; "
          "Linprobe's weights are seeded random, folded at load (its peak RSS includes the load).")
PYEOF
