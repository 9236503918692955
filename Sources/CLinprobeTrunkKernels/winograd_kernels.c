#include "trunk_kernels.h"
#include "kernel_macros.h"

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
            LP_STORE_TILE(NAME##_v, NAME##_i, LP_VRELU, 4, out, b, y, res, ch, relu);               \
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
            LP_STORE_TILE(float, int, LP_SRELU, 4, out, bias[ch], y, res, ch, relu);                \
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

// Winograd F(4×4, 3×3) (points 0, ±1, ±2, ∞; Lavin & Gray's matrices) input and output transforms
// of one tile, on the same vector widths. Every product is by a power of two (4 x0 − 5 x2 + x4 is
// computed as 4 (x0 − x2) + (x4 − x2), and so on), so products are exact and a fused multiply-add
// rounds as the separate multiply and add do: every width and compiler contraction gives the
// same bits.
//
//   Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1]
//   Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]

#define LP_BT6(T, x0, x1, x2, x3, x4, x5, r0, r1, r2, r3, r4, r5)                                     \
    do {                                                                                             \
        T s_ = (x4) - 4.0f * (x2), q_ = 4.0f * (x1) - (x3);                                          \
        T s2_ = (x4) - (x2), q2_ = 2.0f * ((x1) - (x3));                                             \
        r0 = 4.0f * ((x0) - (x2)) + s2_;                                                             \
        r1 = s_ - q_;                                                                                \
        r2 = s_ + q_;                                                                                \
        r3 = s2_ - q2_;                                                                              \
        r4 = s2_ + q2_;                                                                              \
        r5 = 4.0f * ((x1) - (x3)) + ((x5) - (x3));                                                   \
    } while (0)

#define LP_AT6(T, m0, m1, m2, m3, m4, m5, y0, y1, y2, y3)                                             \
    do {                                                                                             \
        T a_ = (m1) + (m2), b_ = (m1) - (m2), c_ = (m3) + (m4), d_ = (m3) - (m4);                    \
        y0 = ((m0) + a_) + c_;                                                                       \
        y1 = b_ + 2.0f * d_;                                                                         \
        y2 = a_ + 4.0f * c_;                                                                         \
        y3 = (b_ + 8.0f * d_) + (m5);                                                                \
    } while (0)

#define LP_WINOGRAD4_VARIANT(NAME, W, TARGET)                                                        \
    typedef float NAME##_v __attribute__((vector_size(4 * W), aligned(4)));                         \
    typedef int NAME##_i __attribute__((vector_size(4 * W), aligned(4)));                           \
    TARGET static void NAME##_input(const float *const *p, float *out, long c, long stride) {       \
        long ch = 0;                                                                                \
        for (; ch + W <= c; ch += W) {                                                              \
            NAME##_v t[36];                                                                         \
            for (int j = 0; j < 6; j++) {                                                           \
                NAME##_v x0 = *(const NAME##_v *)(p[j] + ch), x1 = *(const NAME##_v *)(p[6 + j] + ch); \
                NAME##_v x2 = *(const NAME##_v *)(p[12 + j] + ch);                                  \
                NAME##_v x3 = *(const NAME##_v *)(p[18 + j] + ch);                                  \
                NAME##_v x4 = *(const NAME##_v *)(p[24 + j] + ch);                                  \
                NAME##_v x5 = *(const NAME##_v *)(p[30 + j] + ch);                                  \
                LP_BT6(NAME##_v, x0, x1, x2, x3, x4, x5, t[j], t[6 + j], t[12 + j], t[18 + j],      \
                       t[24 + j], t[30 + j]);                                                       \
            }                                                                                       \
            for (int i = 0; i < 6; i++) {                                                           \
                const NAME##_v *r = t + 6 * i;                                                      \
                NAME##_v v0, v1, v2, v3, v4, v5;                                                    \
                LP_BT6(NAME##_v, r[0], r[1], r[2], r[3], r[4], r[5], v0, v1, v2, v3, v4, v5);       \
                float *o = out + (6 * i) * stride + ch;                                             \
                *(NAME##_v *)(o) = v0;                                                              \
                *(NAME##_v *)(o + stride) = v1;                                                     \
                *(NAME##_v *)(o + 2 * stride) = v2;                                                 \
                *(NAME##_v *)(o + 3 * stride) = v3;                                                 \
                *(NAME##_v *)(o + 4 * stride) = v4;                                                 \
                *(NAME##_v *)(o + 5 * stride) = v5;                                                 \
            }                                                                                       \
        }                                                                                           \
        for (; ch < c; ch++) {                                                                      \
            float t[36];                                                                            \
            for (int j = 0; j < 6; j++) {                                                           \
                LP_BT6(float, p[j][ch], p[6 + j][ch], p[12 + j][ch], p[18 + j][ch], p[24 + j][ch],  \
                       p[30 + j][ch], t[j], t[6 + j], t[12 + j], t[18 + j], t[24 + j], t[30 + j]);   \
            }                                                                                       \
            for (int i = 0; i < 6; i++) {                                                           \
                const float *r = t + 6 * i;                                                         \
                float *o = out + (6 * i) * stride + ch;                                             \
                LP_BT6(float, r[0], r[1], r[2], r[3], r[4], r[5], o[0], o[stride], o[2 * stride],   \
                       o[3 * stride], o[4 * stride], o[5 * stride]);                                \
            }                                                                                       \
        }                                                                                           \
    }                                                                                               \
    TARGET static void NAME##_output(const float *m, long stride, long c, const float *bias,        \
                                     float *const *y, const float *const *res, int relu) {          \
        long ch = 0;                                                                                \
        for (; ch + W <= c; ch += W) {                                                              \
            NAME##_v s[24], out[16];                                                                \
            for (int j = 0; j < 6; j++) {                                                           \
                const float *q = m + j * stride + ch;                                               \
                LP_AT6(NAME##_v, *(const NAME##_v *)(q), *(const NAME##_v *)(q + 6 * stride),       \
                       *(const NAME##_v *)(q + 12 * stride), *(const NAME##_v *)(q + 18 * stride),  \
                       *(const NAME##_v *)(q + 24 * stride), *(const NAME##_v *)(q + 30 * stride),  \
                       s[j], s[6 + j], s[12 + j], s[18 + j]);                                       \
            }                                                                                       \
            for (int i = 0; i < 4; i++) {                                                           \
                const NAME##_v *r = s + 6 * i;                                                      \
                LP_AT6(NAME##_v, r[0], r[1], r[2], r[3], r[4], r[5], out[4 * i], out[4 * i + 1],    \
                       out[4 * i + 2], out[4 * i + 3]);                                             \
            }                                                                                       \
            NAME##_v b = *(const NAME##_v *)(bias + ch);                                            \
            LP_STORE_TILE(NAME##_v, NAME##_i, LP_VRELU, 16, out, b, y, res, ch, relu);              \
        }                                                                                           \
        for (; ch < c; ch++) {                                                                      \
            float s[24], out[16];                                                                   \
            for (int j = 0; j < 6; j++) {                                                           \
                const float *q = m + j * stride + ch;                                               \
                LP_AT6(float, q[0], q[6 * stride], q[12 * stride], q[18 * stride], q[24 * stride],  \
                       q[30 * stride], s[j], s[6 + j], s[12 + j], s[18 + j]);                       \
            }                                                                                       \
            for (int i = 0; i < 4; i++) {                                                           \
                const float *r = s + 6 * i;                                                         \
                LP_AT6(float, r[0], r[1], r[2], r[3], r[4], r[5], out[4 * i], out[4 * i + 1],       \
                       out[4 * i + 2], out[4 * i + 3]);                                             \
            }                                                                                       \
            LP_STORE_TILE(float, int, LP_SRELU, 16, out, bias[ch], y, res, ch, relu);               \
        }                                                                                           \
    }

#if defined(__x86_64__) || defined(_M_X64)
LP_WINOGRAD4_VARIANT(wino4x16, 16, __attribute__((target("avx512f"))))
LP_WINOGRAD4_VARIANT(wino4x8, 8, __attribute__((target("avx2"))))
#endif
LP_WINOGRAD4_VARIANT(wino4x4, 4, )

void lp_winograd4_input_f32(const float *const *p, float *out, long c, long stride, int level) {
#if defined(__x86_64__) || defined(_M_X64)
    if (level == 2) return wino4x16_input(p, out, c, stride);
    if (level == 1) return wino4x8_input(p, out, c, stride);
#endif
    (void)level;
    wino4x4_input(p, out, c, stride);
}

void lp_winograd4_output_f32(const float *m, long stride, long c, const float *bias, float *const *y,
                             const float *const *residual, int relu, int level) {
#if defined(__x86_64__) || defined(_M_X64)
    if (level == 2) return wino4x16_output(m, stride, c, bias, y, residual, relu);
    if (level == 1) return wino4x8_output(m, stride, c, bias, y, residual, relu);
#endif
    (void)level;
    wino4x4_output(m, stride, c, bias, y, residual, relu);
}
