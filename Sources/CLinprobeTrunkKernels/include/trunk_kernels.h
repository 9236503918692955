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

/// Winograd F(2×2, 3×3) input transform of one tile: `p` holds the tile's 16 input pixels (row
/// major, `c` channels each; padding points at zeros); V[ξ] for ξ = 0…15 goes to
/// `out + ξ·stride` (`c` floats). Level 2 (AVX-512), 1 (AVX2) or 0 (baseline vectors): the same
/// bits at every level (additions and subtractions in one order).
void lp_winograd_input_f32(const float *const *p, float *out, long c, long stride, int level);

/// Winograd output transform of one tile: M[ξ] at `m + ξ·stride` → the 2×2 outputs y[0…3]
/// (y00, y01, y10, y11; NULL where the tile passes the image edge) plus `bias`, plus
/// `residual[k]` when not NULL, then ReLU when `relu` (x < 0 → 0; −0 and NaN kept).
void lp_winograd_output_f32(const float *m, long stride, long c, const float *bias, float *const *y,
                            const float *const *residual, int relu, int level);

/// Winograd F(4×4, 3×3) input transform of one tile: `p` holds the tile's 36 input pixels (6×6,
/// row major); V[ξ] for ξ = 0…35 goes to `out + ξ·stride`. Same bits at every level (every product
/// is by a power of two, so exact).
void lp_winograd4_input_f32(const float *const *p, float *out, long c, long stride, int level);

/// Winograd F(4×4, 3×3) output transform of one tile: M[ξ] at `m + ξ·stride` (ξ < 36) → the 4×4
/// outputs y[0…15] (row major; NULL past the image edge) plus `bias`, plus `residual[k]` when not
/// NULL, then ReLU when `relu`, as `lp_winograd_output_f32`.
void lp_winograd4_output_f32(const float *m, long stride, long c, const float *bias, float *const *y,
                             const float *const *residual, int relu, int level);

/// out[ch] = Σ x[iy][ix][ch] over iy in [y0, y1), ix in [x0, x1) of an NHWC image `w` pixels wide
/// with `c` channels, summed from 0 in row-major window order (float32): the same bits at every
/// level (2 AVX-512, 1 AVX2, 0 baseline vectors; `lp_window_sum_f32` uses this CPU's).
void lp_window_sum_f32(const float *src, long w, long c, long y0, long y1, long x0, long x1, float *out);
void lp_window_sum_f32_at(const float *src, long w, long c, long y0, long y1, long x0, long x1, float *out,
                          int level);

/// The convolution epilogue over `rows` rows of `channels`: c = relu?((c + bias) + residual) (residual
/// may be NULL; ReLU maps x < 0 to 0, keeps −0 and NaN). Same bits at every level.
void lp_bias_activation_f32(float *c, long rows, long channels, const float *bias, const float *residual,
                            int relu);
void lp_bias_activation_f32_at(float *c, long rows, long channels, const float *bias, const float *residual,
                               int relu, int level);

#ifdef __cplusplus
}
#endif
#endif
