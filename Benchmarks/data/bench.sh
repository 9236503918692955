#!/usr/bin/env bash
# Per-image preprocessing on one core: decode + VISSL's test transform (Resize 256, CenterCrop
# 224, ToTensor, Normalize) and train transform (RandomResizedCrop 224, flip), Linprobe vs
# PIL + torchvision on the same photos, medians of repeated passes, printed side by side.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${PY:?source Benchmarks/venv.sh first (Benchmarks/run.sh does)}"
REPEATS="${BENCH_DATA_REPEATS:-30}"
swift build -c release -Xswiftc -enable-testing --product LinprobeDataBench >/dev/null
BIN="$(swift build -c release -Xswiftc -enable-testing --show-bin-path)/LinprobeDataBench"
FILES=(Tests/Fixtures/images/files/photo_500x375.jpg Tests/Fixtures/images/files/photo_375x500.jpg)
bash Benchmarks/machine.sh
printf '%-6s %-10s %12s %12s %8s\n' pipeline phase "linprobe ms" "PIL+tv ms" speedup
for kind in test train; do
  ours=$(taskset -c 0 "$BIN" "$REPEATS" "$kind" "${FILES[@]}")
  ref=$(taskset -c 0 "$PY" Benchmarks/data/reference.py "$REPEATS" "$kind" "${FILES[@]}")
  "$PY" - "$kind" "$ours" "$ref" <<'PYEOF'
import json, sys
kind, ours, ref = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
for phase in ("decode", "transform", "total"):
    a, b = ours[phase + "_ms"], ref[phase + "_ms"]
    print(f"{kind:<6} {phase:<10} {a:12.3f} {b:12.3f} {b / a:7.2f}x")
PYEOF
done
