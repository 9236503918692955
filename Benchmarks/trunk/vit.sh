#!/usr/bin/env bash
# ViT trunk benchmark: ViT-S/16 and ViT-B/16 at 224×224 on VISSL's dino_vit taps (concatCLS4 +
# lastCLS), images/s of Linprobe against PyTorch (timm, inference_mode) and onnxruntime on the
# same model, same threads, one process per engine (peak RSS of each), engines interleaved.
#
# Environment: TRUNK_BENCH_THREADS (2), VIT_BENCH_BATCH (8), TRUNK_BENCH_ITERATIONS (3),
# VIT_BENCH_MODELS ("s16 b16"). Run through Benchmarks/run.sh (sets $PY) or set PY.
set -euo pipefail
cd "$(dirname "$0")/../.."
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
: "${PY:?run through Benchmarks/run.sh, or set PY to a Python with torch, timm, onnxruntime}"
# timm (the PyTorch reference's ViT): installed into the venv when missing (venvs made before it
# was on Benchmarks/venv.sh's list).
if ! "$PY" -c 'import timm' 2>/dev/null; then
  echo "installing timm into the benchmark venv" >&2
  "$PY" -m pip install -q timm >&2
fi
THREADS="${TRUNK_BENCH_THREADS:-2}"
BATCH="${VIT_BENCH_BATCH:-8}"
ITER="${TRUNK_BENCH_ITERATIONS:-3}"
MODELS="${VIT_BENCH_MODELS:-s16 b16}"
swift build -c release -Xswiftc -enable-testing --product bench-trunk >&2
BIN=.build/release/bench-trunk
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
common=(--batch "$BATCH" --threads "$THREADS" --iterations "$ITER" --warmup 1)
for m in $MODELS; do
  "$BIN" --vit "$m" "${common[@]}" >> "$OUT/linprobe-$m.jsonl"
  "$BIN" --vit "$m" "${common[@]}" --parallelism blas >> "$OUT/linprobe-blas-$m.jsonl"
  "$PY" Benchmarks/trunk/reference_vit.py --engine torch --model "$m" "${common[@]}" >> "$OUT/torch-$m.jsonl"
  "$PY" Benchmarks/trunk/reference_vit.py --engine onnxruntime --model "$m" "${common[@]}" 2>/dev/null \
    >> "$OUT/onnxruntime-$m.jsonl" || true
done
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
"$PY" - "$OUT" "$MODELS" "$CPU" <<'PYEOF'
import json, os, sys
out, models, cpu = sys.argv[1], sys.argv[2].split(), sys.argv[3]
def load(name):
    p = os.path.join(out, name + ".jsonl")
    return [json.loads(l) for l in open(p)] if os.path.exists(p) and os.path.getsize(p) else []
print(f"CPU: {cpu}")
print("| model | engine | images/s | × PyTorch | × onnxruntime | CPU s/image | utilisation | peak RSS MB |")
print("|---|---|---|---|---|---|---|---|")
for m in models:
    runs = {k: load(f"{k}-{m}") for k in ["linprobe", "linprobe-blas", "torch", "onnxruntime"]}
    ips = {k: v[0]["images_per_second"] for k, v in runs.items() if v}
    for k, v in runs.items():
        if not v:
            continue
        r = v[0]
        rt = f"{ips[k] / ips['torch']:.2f}" if "torch" in ips else "n/a"
        ro = f"{ips[k] / ips['onnxruntime']:.2f}" if "onnxruntime" in ips else "n/a"
        busy = 100 * r["cpu_seconds_per_image"] * ips[k] / r["threads"]
        print(f"| ViT-{m.upper()} | {k} | {ips[k]:.2f} | {rt} | {ro} | {r['cpu_seconds_per_image']:.3f} | {busy:.0f} % "
              f"| {r['peak_rss_mb']:.0f} |")
threads = load(f"linprobe-{models[0]}")
if threads:
    print(f"\n{threads[0]['threads']} threads, batch {threads[0]['batch']}, OpenBLAS core {threads[0]['blas_core']}, one run; "
          "utilisation = CPU s/image × images/s ÷ threads.")
PYEOF
