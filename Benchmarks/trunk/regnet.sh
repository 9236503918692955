#!/usr/bin/env bash
# RegNet trunk benchmark: RegNetY-8GF with ClassyVision's (VISSL's) widths 168/448/896/2016 at
# 224×224 on VISSL's regnet8Gf ImageNet-1k taps (res4 AdaptiveAvgPool2d [3, 3], res5 [6, 1],
# avgpool), images/s of Linprobe against PyTorch (torchvision's RegNet built from the same stage
# parameters, channels_last and contiguous, inference_mode), same threads, one process per engine
# (peak RSS of each), one run. RegNetY-128GF (644 M parameters) follows with one timed batch of
# REGNET_BENCH_LARGE_BATCH images after one warm-up batch.
#
# Environment: TRUNK_BENCH_THREADS (2), REGNET_BENCH_BATCH (8), TRUNK_BENCH_ITERATIONS (3),
# REGNET_BENCH_MODELS ("regnet_y_8gf regnet_y_128gf"), REGNET_BENCH_LARGE_BATCH (2, for models of
# 64 GF and more). Run through Benchmarks/run.sh (sets $PY) or set PY.
set -euo pipefail
cd "$(dirname "$0")/../.."
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
: "${PY:?run through Benchmarks/run.sh, or set PY to a Python with torch and torchvision}"
THREADS="${TRUNK_BENCH_THREADS:-2}"
BATCH="${REGNET_BENCH_BATCH:-8}"
ITER="${TRUNK_BENCH_ITERATIONS:-3}"
MODELS="${REGNET_BENCH_MODELS:-regnet_y_8gf regnet_y_128gf}"
LARGE_BATCH="${REGNET_BENCH_LARGE_BATCH:-2}"
swift build -c release -Xswiftc -enable-testing --product bench-trunk >&2
BIN=.build/release/bench-trunk
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for m in $MODELS; do
  case "$m" in
    *64gf | *128gf | *256gf) common=(--batch "$LARGE_BATCH" --threads "$THREADS" --iterations 1 --warmup 1) ;;
    *) common=(--batch "$BATCH" --threads "$THREADS" --iterations "$ITER" --warmup 1) ;;
  esac
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
print("| model | engine | images/s | × PyTorch (channels_last) | CPU s/image | utilisation | peak RSS MB |")
print("|---|---|---|---|---|---|---|")
for m in models:
    runs = {k: load(f"{k}-{m}") for k in ["linprobe", "torch", "torch-contiguous"]}
    ips = {k: v[0]["images_per_second"] for k, v in runs.items() if v}
    for k, v in runs.items():
        if not v:
            continue
        r = v[0]
        rt = f"{ips[k] / ips['torch']:.2f}" if "torch" in ips else "n/a"
        busy = 100 * r["cpu_seconds_per_image"] * ips[k] / r["threads"]
        print(f"| {m} | {k} | {ips[k]:.2f} | {rt} | {r['cpu_seconds_per_image']:.3f} | {busy:.0f} % | {r['peak_rss_mb']:.0f} |")
for m in models:
    first = load(f"linprobe-{m}")
    if first:
        r = first[0]
        print(f"\n{m}: {r['threads']} threads, batch {r['batch']}, "
              f"OpenBLAS core {r['blas_core']}, one run.", end="")
print(" Utilisation = CPU s/image × images/s ÷ threads. Linprobe's weights are seeded random, folded at load (its peak RSS includes the load); "
      "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for both engines.")
PYEOF
