#!/usr/bin/env bash
# Prints one line naming the machine a benchmark table comes from: CPU model, cores, widest
# vector ISA, and whether the OpenBLAS variables are set (Benchmarks/run.sh unsets them).
model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
flags=$(grep -m1 '^flags' /proc/cpuinfo)
isa="no AVX2"
case "$flags" in
  *" avx512f "*) isa="AVX-512" ;;
  *" avx2 "*) isa="AVX2" ;;
esac
blas="OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset}"
echo "machine: CPU ${model:-unknown}, $(nproc) cores available, $isa, $blas"
