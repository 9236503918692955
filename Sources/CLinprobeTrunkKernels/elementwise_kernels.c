#include "trunk_kernels.h"
#include "kernel_macros.h"

// Element-wise kernels around the trunk's GEMMs, on 16-, 8- or 4-wide vectors (GCC/Clang vector
// extensions; the `aligned(4)` typedefs load and store unaligned), each giving the same bits at
// every width.
//
// Window sums of the pool ops (average pools of the feature taps) on 16-, 8- or 4-wide vectors:
// per channel, 0 + x[y0][x0] + x[y0][x0 + 1] + … in row-major window order, with the sums of a
// block of channels kept in registers (one pass over the window per block instead of a load and
// store of the sums per pixel). Additions only, in that order at every width: the same bits.

#define LP_POOL_VARIANT(NAME, W, TARGET)                                                             \
    typedef float NAME##_v __attribute__((vector_size(4 * W), aligned(4)));                         \
    TARGET static void NAME##_window_sum(const float *src, long w, long c, long y0, long y1, long x0, \
                                         long x1, float *out) {                                     \
        long ch = 0;                                                                                \
        for (; ch + 4 * W <= c; ch += 4 * W) {                                                      \
            NAME##_v a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                                        \
            for (long iy = y0; iy < y1; iy++) {                                                     \
                for (long ix = x0; ix < x1; ix++) {                                                 \
                    const float *p = src + (iy * w + ix) * c + ch;                                  \
                    a0 += *(const NAME##_v *)(p);                                                   \
                    a1 += *(const NAME##_v *)(p + W);                                               \
                    a2 += *(const NAME##_v *)(p + 2 * W);                                           \
                    a3 += *(const NAME##_v *)(p + 3 * W);                                           \
                }                                                                                   \
            }                                                                                       \
            *(NAME##_v *)(out + ch) = a0;                                                           \
            *(NAME##_v *)(out + ch + W) = a1;                                                       \
            *(NAME##_v *)(out + ch + 2 * W) = a2;                                                   \
            *(NAME##_v *)(out + ch + 3 * W) = a3;                                                   \
        }                                                                                           \
        for (; ch + W <= c; ch += W) {                                                              \
            NAME##_v a = {0};                                                                       \
            for (long iy = y0; iy < y1; iy++) {                                                     \
                for (long ix = x0; ix < x1; ix++) a += *(const NAME##_v *)(src + (iy * w + ix) * c + ch); \
            }                                                                                       \
            *(NAME##_v *)(out + ch) = a;                                                            \
        }                                                                                           \
        for (; ch < c; ch++) {                                                                      \
            float a = 0;                                                                            \
            for (long iy = y0; iy < y1; iy++) {                                                     \
                for (long ix = x0; ix < x1; ix++) a += src[(iy * w + ix) * c + ch];                 \
            }                                                                                       \
            out[ch] = a;                                                                            \
        }                                                                                           \
    }

// The convolution epilogue over rows (`LP_FINISH`): c[r][j] = relu?((c[r][j] + bias[j]) +
// residual[r][j]), as `Kernels.biasActivation`'s Swift code did.
#define LP_EPILOGUE_VARIANT(NAME, W, TARGET)                                                         \
    typedef int NAME##_i __attribute__((vector_size(4 * W), aligned(4)));                           \
    TARGET static void NAME##_bias_activation(float *c, long rows, long channels, const float *bias,  \
                                              const float *residual, int relu) {                    \
        for (long r = 0; r < rows; r++) {                                                           \
            float *row = c + r * channels;                                                          \
            const float *res = residual ? residual + r * channels : 0;                              \
            long j = 0;                                                                             \
            for (; j + W <= channels; j += W) {                                                     \
                LP_FINISH(NAME##_v, NAME##_i, LP_VRELU, *(NAME##_v *)(row + j), *(const NAME##_v *)(bias + j), \
                          res ? (const NAME##_v *)(res + j) : 0, relu, (NAME##_v *)(row + j));      \
            }                                                                                       \
            for (; j < channels; j++) {                                                             \
                LP_FINISH(float, int, LP_SRELU, row[j], bias[j], res ? res + j : 0, relu, row + j); \
            }                                                                                       \
        }                                                                                           \
    }

#if defined(__x86_64__) || defined(_M_X64)
LP_POOL_VARIANT(ew16, 16, __attribute__((target("avx512f"))))
LP_POOL_VARIANT(ew8, 8, __attribute__((target("avx2"))))
#endif
LP_POOL_VARIANT(ew4, 4, )
#if defined(__x86_64__) || defined(_M_X64)
LP_EPILOGUE_VARIANT(ew16, 16, __attribute__((target("avx512f"))))
LP_EPILOGUE_VARIANT(ew8, 8, __attribute__((target("avx2"))))
#endif
LP_EPILOGUE_VARIANT(ew4, 4, )

void lp_bias_activation_f32_at(float *c, long rows, long channels, const float *bias, const float *residual,
                               int relu, int level) {
#if defined(__x86_64__) || defined(_M_X64)
    if (level == 2) return ew16_bias_activation(c, rows, channels, bias, residual, relu);
    if (level == 1) return ew8_bias_activation(c, rows, channels, bias, residual, relu);
#endif
    (void)level;
    ew4_bias_activation(c, rows, channels, bias, residual, relu);
}

void lp_bias_activation_f32(float *c, long rows, long channels, const float *bias, const float *residual,
                            int relu) {
    lp_bias_activation_f32_at(c, rows, channels, bias, residual, relu, lp_trunk_simd_level());
}

void lp_window_sum_f32_at(const float *src, long w, long c, long y0, long y1, long x0, long x1, float *out,
                          int level) {
#if defined(__x86_64__) || defined(_M_X64)
    if (level == 2) return ew16_window_sum(src, w, c, y0, y1, x0, x1, out);
    if (level == 1) return ew8_window_sum(src, w, c, y0, y1, x0, x1, out);
#endif
    (void)level;
    ew4_window_sum(src, w, c, y0, y1, x0, x1, out);
}

void lp_window_sum_f32(const float *src, long w, long c, long y0, long y1, long x0, long x1, float *out) {
    lp_window_sum_f32_at(src, w, c, y0, y1, x0, x1, out, lp_trunk_simd_level());
}
