#!/usr/bin/env bash
# Runs every benchmark section (Benchmarks/<area>/bench.sh) and prints their tables.
# Each section measures Linprobe and its reference side by side in one run and prints ratios.
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for both sides, as on users' machines.
set -euo pipefail
cd "$(dirname "$0")/.."
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
source Benchmarks/venv.sh
for section in Benchmarks/*/bench.sh; do
  [ -n "${BENCH_ONLY:-}" ] && [[ "$section" != *"/${BENCH_ONLY}/"* ]] && continue
  echo "== $(basename "$(dirname "$section")") =="
  bash "$section"
  echo
done
