#include "trunk_kernels.h"

#include <stddef.h>

// Winograd F(2×2, 3×3) input and output transforms of one tile, on 16-wide (AVX-512), 8-wide
// (AVX2) or 4-wide (baseline) vectors, with a scalar tail. They only add and subtract, in the
// order of the Swift SIMD4 transforms (`Winograd.bt` / `Winograd.at`), so every width gives the
// same bits. Vectors are GCC/Clang vector extensions; the `aligned(4)` typedefs load and store
// unaligned.

#define LP_WINOGRAD_VARIANT(NAME, W, TARGET)                                                         \
    typedef float NAME##_v __attribute__((vector_size(4 * W), aligned(4)));                         \
    typedef int NAME##_i __attribute__((vector_size(4 * W), aligned(4)));                           \
    TARGET static void NAME##_input(const float *const *p, float *out, long c, long stride) {       \
        long ch = 0;                                                                                \
        for (; ch + W <= c; ch += W) {                                                              \
            NAME##_v d[16], a[16];                                                                  \
            for (int k = 0; k < 16; k++) d[k] = *(const NAME##_v *)(p[k] + ch);                     \
            for (int j = 0; j < 4; j++) {                                                           \
                a[0 + j] = d[0 + j] - d[8 + j];                                                     \
                a[4 + j] = d[4 + j] + d[8 + j];                                                     \
                a[8 + j] = d[8 + j] - d[4 + j];                                                     \
                a[12 + j] = d[4 + j] - d[12 + j];                                                   \
            }                                                                                       \
            for (int i = 0; i < 4; i++) {                                                           \
                const NAME##_v *r = a + 4 * i;                                                      \
                float *o = out + (4 * i) * stride + ch;                                             \
                *(NAME##_v *)(o) = r[0] - r[2];                                                     \
                *(NAME##_v *)(o + stride) = r[1] + r[2];                                            \
                *(NAME##_v *)(o + 2 * stride) = r[2] - r[1];                                        \
                *(NAME##_v *)(o + 3 * stride) = r[1] - r[3];                                        \
            }                                                                                       \
        }                                                                                           \
        for (; ch < c; ch++) {                                                                      \
            float a[16];                                                                            \
            for (int j = 0; j < 4; j++) {                                                           \
                a[0 + j] = p[0 + j][ch] - p[8 + j][ch];                                             \
                a[4 + j] = p[4 + j][ch] + p[8 + j][ch];                                             \
                a[8 + j] = p[8 + j][ch] - p[4 + j][ch];                                             \
                a[12 + j] = p[4 + j][ch] - p[12 + j][ch];                                           \
            }                                                                                       \
            for (int i = 0; i < 4; i++) {                                                           \
                const float *r = a + 4 * i;                                                         \
                float *o = out + (4 * i) * stride + ch;                                             \
                o[0] = r[0] - r[2];                                                                 \
                o[stride] = r[1] + r[2];                                                            \
                o[2 * stride] = r[2] - r[1];                                                        \
                o[3 * stride] = r[1] - r[3];                                                        \
            }                                                                                       \
        }                                                                                           \
    }                                                                                               \
    TARGET static void NAME##_output(const float *m, long stride, long c, const float *bias,        \
                                     float *const *y, const float *const *res, int relu) {          \
        long ch = 0;                                                                                \
        for (; ch + W <= c; ch += W) {                                                              \
            NAME##_v q[16], s[8], out[4];                                                           \
            for (int k = 0; k < 16; k++) q[k] = *(const NAME##_v *)(m + k * stride + ch);           \
            for (int j = 0; j < 4; j++) {                                                           \
                s[j] = q[j] + q[4 + j] + q[8 + j];                                                  \
                s[4 + j] = q[4 + j] - q[8 + j] - q[12 + j];                                         \
            }                                                                                       \
            NAME##_v b = *(const NAME##_v *)(bias + ch);                                            \
            for (int i = 0; i < 2; i++) {                                                           \
                out[2 * i] = s[4 * i] + s[4 * i + 1] + s[4 * i + 2];                                \
                out[2 * i + 1] = s[4 * i + 1] - s[4 * i + 2] - s[4 * i + 3];                        \
            }                                                                                       \
            for (int k = 0; k < 4; k++) {                                                           \
                if (!y[k]) continue;                                                                \
                NAME##_v v = out[k] + b;                                                            \
                if (res[k]) v += *(const NAME##_v *)(res[k] + ch);                                  \
                if (relu) v = (NAME##_v)((NAME##_i)v & ~(NAME##_i)(v < 0));                         \
                *(NAME##_v *)(y[k] + ch) = v;                                                       \
            }                                                                                       \
        }                                                                                           \
        for (; ch < c; ch++) {                                                                      \
            float s[8], out[4];                                                                     \
            for (int j = 0; j < 4; j++) {                                                           \
                s[j] = m[j * stride + ch] + m[(4 + j) * stride + ch] + m[(8 + j) * stride + ch];    \
                s[4 + j] = m[(4 + j) * stride + ch] - m[(8 + j) * stride + ch]                      \
                           - m[(12 + j) * stride + ch];                                             \
            }                                                                                       \
            for (int i = 0; i < 2; i++) {                                                           \
                out[2 * i] = s[4 * i] + s[4 * i + 1] + s[4 * i + 2];                                \
                out[2 * i + 1] = s[4 * i + 1] - s[4 * i + 2] - s[4 * i + 3];                        \
            }                                                                                       \
            for (int k = 0; k < 4; k++) {                                                           \
                if (!y[k]) continue;                                                                \
                float v = out[k] + bias[ch];                                                        \
                if (res[k]) v += res[k][ch];                                                        \
                if (relu && v < 0) v = 0;                                                           \
                y[k][ch] = v;                                                                       \
            }                                                                                       \
        }                                                                                           \
    }

#if defined(__x86_64__) || defined(_M_X64)
LP_WINOGRAD_VARIANT(wino16, 16, __attribute__((target("avx512f"))))
LP_WINOGRAD_VARIANT(wino8, 8, __attribute__((target("avx2"))))
#endif
LP_WINOGRAD_VARIANT(wino4, 4, )

void lp_winograd_input_f32(const float *const *p, float *out, long c, long stride, int level) {
#if defined(__x86_64__) || defined(_M_X64)
    if (level == 2) return wino16_input(p, out, c, stride);
    if (level == 1) return wino8_input(p, out, c, stride);
#endif
    (void)level;
    wino4_input(p, out, c, stride);
}

void lp_winograd_output_f32(const float *m, long stride, long c, const float *bias, float *const *y,
                            const float *const *residual, int relu, int level) {
#if defined(__x86_64__) || defined(_M_X64)
    if (level == 2) return wino16_output(m, stride, c, bias, y, residual, relu);
    if (level == 1) return wino8_output(m, stride, c, bias, y, residual, relu);
#endif
    (void)level;
    wino4_output(m, stride, c, bias, y, residual, relu);
}
