#!/usr/bin/env bash
# Trunk benchmark: ResNet-50, 224×224, batch 32, the six canonical VISSL taps with their pool
# ops, images/s of Linprobe against PyTorch (channels_last, inference_mode) and onnxruntime on
# the same model, same threads, measured in one run (engines interleaved, median of rounds).
# Linprobe's default row is the pipeline's default: parallelism and per-layer convolution
# algorithm `auto`, measured by the first process on a fresh tuning cache (a temporary
# XDG_CACHE_HOME, so the measurement's time is shown) and read from the cache by the others.
# Also: the forced parallelism × algorithm variants, share of the machine's measured FP32 peak,
# utilisation, peak memory of each process.
#
# Environment: TRUNK_BENCH_THREADS (2), TRUNK_BENCH_BATCH (32), TRUNK_BENCH_ROUNDS (3),
# TRUNK_BENCH_ITERATIONS (3 timed batches per process, after 1 warm-up), TRUNK_BENCH_QUICK=1
# (one round, no variants), TRUNK_BENCH_PROBE=1 (adds the GEMM-only layout probe), TRUNK_BENCH_VIT=0
# (skips the ViT-S/16 and ViT-B/16 table of vit.sh, which runs after the ResNet table),
# TRUNK_BENCH_REGNET=0 (skips the RegNetY-8GF table of regnet.sh, which runs last).
# Run through Benchmarks/run.sh (which unsets OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE and sets $PY).
set -euo pipefail
cd "$(dirname "$0")/../.."
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
: "${PY:?run through Benchmarks/run.sh, or set PY to a Python with torch, torchvision, onnxruntime}"
THREADS="${TRUNK_BENCH_THREADS:-2}"
BATCH="${TRUNK_BENCH_BATCH:-32}"
ROUNDS="${TRUNK_BENCH_ROUNDS:-3}"
ITER="${TRUNK_BENCH_ITERATIONS:-3}"
[ "${TRUNK_BENCH_QUICK:-0}" = 1 ] && ROUNDS=1

swift build -c release -Xswiftc -enable-testing --product bench-trunk >&2
BIN=.build/release/bench-trunk
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
export XDG_CACHE_HOME="$OUT/cache"

# Machine FP32 peak, measured now on $THREADS cores (AVX-512 if the CPU has it).
PEAK="${TRUNK_PEAK_GFLOPS:-}"
if [ -z "$PEAK" ] && command -v gcc >/dev/null; then
  if grep -qw avx512f /proc/cpuinfo; then FLAGS="-mavx512f -mfma"; else FLAGS="-mavx2 -mfma"; fi
  if gcc -O3 -funroll-all-loops $FLAGS -pthread Benchmarks/trunk/peak.c -o "$OUT/peak" 2>/dev/null; then
    PEAK=$("$OUT/peak" "$THREADS")
  fi
fi

common=(--batch "$BATCH" --threads "$THREADS" --iterations "$ITER" --warmup 1)
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS" >&2
  "$BIN" "${common[@]}" >> "$OUT/linprobe.jsonl"
  "$PY" Benchmarks/trunk/reference.py --engine torch "${common[@]}" >> "$OUT/torch.jsonl"
  "$PY" Benchmarks/trunk/reference.py --engine onnxruntime "${common[@]}" 2>/dev/null >> "$OUT/onnxruntime.jsonl"
done
if [ "${TRUNK_BENCH_QUICK:-0}" != 1 ]; then
  for p in batch blas; do
    for a in winograd winograd4 im2col; do
      "$BIN" "${common[@]}" --parallelism $p --algorithm $a >> "$OUT/linprobe-$p-$a.jsonl"
    done
  done
fi
if [ "${TRUNK_BENCH_PROBE:-0}" = 1 ]; then
  "$BIN" --gemm-probe --batch "$BATCH" --threads "$THREADS" --iterations "$ITER" > "$OUT/probe.json"
fi

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
"$PY" - "$OUT" "${PEAK:-}" "$CPU" <<'PYEOF'
import json, os, statistics, sys
out, peak, cpu_model = sys.argv[1], (float(sys.argv[2]) if sys.argv[2] else None), sys.argv[3]
def load(name):
    path = os.path.join(out, name + ".jsonl")
    return [json.loads(l) for l in open(path)] if os.path.exists(path) else []
rows = [("linprobe (default: auto-tuned)", "linprobe"), ("PyTorch channels_last", "torch"),
        ("onnxruntime", "onnxruntime"),
        ("linprobe, batch split, Winograd F(2x2) (forced; the former default)", "linprobe-batch-winograd"),
        ("linprobe, batch split, Winograd F(4x4) (forced)", "linprobe-batch-winograd4"),
        ("linprobe, batch split, im2col (forced)", "linprobe-batch-im2col"),
        ("linprobe, BLAS threads, Winograd F(2x2) (forced)", "linprobe-blas-winograd"),
        ("linprobe, BLAS threads, Winograd F(4x4) (forced)", "linprobe-blas-winograd4"),
        ("linprobe, BLAS threads, im2col (forced)", "linprobe-blas-im2col")]
runs = {key: load(key) for _, key in rows}
ours = runs["linprobe"][0]
macs = ours["macs_per_image"]
med = {k: statistics.median(r["images_per_second"] for r in v) for k, v in runs.items() if v}
print(f"ResNet-50 trunk, {ours['size']}x{ours['size']}, batch {ours['batch']}, {ours['threads']} threads, "
      f"six VISSL taps + pools; OpenBLAS core {ours['blas_core']}; median of {len(runs['linprobe'])} round(s)")
threads = ours["threads"]
print(f"CPU: {cpu_model}")
print(f"FP32 peak measured now on {threads} cores (per core over its own CPU time): "
      + (f"{peak:.0f} GFLOP/s" if peak else "n/a (no gcc; set TRUNK_PEAK_GFLOPS)"))
print()
print("| engine | images/s | × PyTorch | × onnxruntime | GFLOP/s | share of FP32 peak | CPU s/image | utilisation | peak RSS MB |")
print("|---|---|---|---|---|---|---|---|---|")
for label, key in rows:
    if key not in med:
        continue
    ips = med[key]
    gflops = 2 * macs * ips / 1e9
    cpu = statistics.median(r["cpu_seconds_per_image"] for r in runs[key])
    # Share of peak from CPU time (work per CPU-second on all cores vs the cores' peak), so
    # that other load on the machine does not distort it.
    share = f"{100 * (2 * macs / cpu / 1e9) / (peak / threads):.0f} %" if peak else "n/a"
    rss = max(r["peak_rss_mb"] for r in runs[key])
    rt = f"{ips / med['torch']:.2f}" if "torch" in med else "n/a"
    ro = f"{ips / med['onnxruntime']:.2f}" if "onnxruntime" in med else "n/a"
    # Utilisation: CPU seconds per image against threads × wall seconds per image.
    busy = f"{100 * cpu * ips / threads:.0f} %"
    print(f"| {label} | {ips:.2f} | {rt} | {ro} | {gflops:.0f} | {share} | {cpu:.3f} | {busy} | {rss:.0f} |")
tuning = ours.get("tuning") or {}
if tuning:
    layers = tuning.get("layers", {})
    counts = {a: sum(1 for v in layers.values() if v == a) for a in ("winograd", "winograd4", "im2col")}
    print(f"\nAuto-tuning (first process, fresh cache): {tuning.get('source')} in "
          f"{ours.get('extractor_setup_seconds', 0):.2f} s; chose {tuning.get('parallelism')}; of "
          f"{len(layers)} 3x3 stride-1 shapes, F(2x2) {counts['winograd']}, F(4x4) {counts['winograd4']}, "
          f"im2col {counts['im2col']}: " + ", ".join(f"{k}: {v}" for k, v in sorted(layers.items())))
probe = os.path.join(out, "probe.json")
if os.path.exists(probe):
    p = json.load(open(probe))
    print(f"\nGEMM-only layout probe (all RN50 conv GEMMs, im2col shapes): NHWC batched {p['nhwc_batched_img_s']:.2f} img/s, "
          f"NCHW per image {p['nchw_per_image_img_s']:.2f} img/s")
print("\nImages/s are wall-clock medians; on a shared machine compare ratios from the same run. Utilisation is "
      "CPU s/image × images/s ÷ threads (100 % = every thread busy for the whole timed run). GFLOP/s and the "
      "share of peak count ResNet-50's direct-convolution work (4.09 GMAC/image incl. fc; Winograd does fewer "
      "multiplications, so Linprobe's share can exceed what its GEMMs actually run at).")
PYEOF

if [ "${TRUNK_BENCH_VIT:-1}" = 1 ]; then
  echo
  bash Benchmarks/trunk/vit.sh
fi

if [ "${TRUNK_BENCH_REGNET:-1}" = 1 ]; then
  echo
  bash Benchmarks/trunk/regnet.sh
fi
