#ifndef LINPROBE_TRUNK_KERNELS_H
#define LINPROBE_TRUNK_KERNELS_H

/// Element-wise kernels of the transformer trunks in AVX-512 or AVX2+FMA, chosen at run time
/// from the CPU (the package is compiled for baseline x86-64). They compute what the Swift
/// SIMD4 kernels of `TransformerKernels` compute (same exp range reduction and polynomial, same
/// erfc approximation); fused multiply-adds round differently, so results agree to float
/// rounding, not bit for bit. Where neither ISA is present, `lp_trunk_simd_level` is 0 and the
/// Swift kernels run.

#ifdef __cplusplus
extern "C" {
#endif

/// 2 for AVX-512F, 1 for AVX2+FMA, 0 for neither (or not x86-64).
int lp_trunk_simd_level(void);

/// Exact GELU, x/2·(1 + erf(x/√2)), in place over n floats. Only when the level is above 0.
void lp_gelu_f32(float *x, long n);

/// Row softmax of rows × cols floats (scaled by `scale` first, row maximum subtracted), in
/// place. Only when the level is above 0.
void lp_softmax_rows_f32(float *a, long rows, long cols, float scale);

/// The same at a given level (1 or 2, at most `lp_trunk_simd_level()`), for tests of each variant.
void lp_gelu_f32_at(float *x, long n, int level);
void lp_softmax_rows_f32_at(float *a, long rows, long cols, float scale, int level);

#ifdef __cplusplus
}
#endif
#endif
