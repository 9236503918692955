#include "trunk_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#define LP_TRUNK_X86 1
#include <immintrin.h>
#endif

// Constants of the Swift kernels (TransformerKernels.exp4 / erf4).
#define EXP_LO -87.3f
#define EXP_HI 88.3f
static const float exp_poly[6] = {1.98756915e-4f, 1.39819995e-3f, 8.3334519e-3f,
                                  4.1665796e-2f, 1.66666655e-1f, 5.0000001e-1f};
static const float erfc_poly[10] = {0.17087277f, -0.82215223f, 1.48851587f, -1.13520398f,
                                    0.27886807f, -0.18628806f, 0.09678418f, 0.37409196f,
                                    1.00002368f, -1.26551223f};

#ifdef LP_TRUNK_X86

// MARK: - AVX-512

// The lanes of a 16-float step that lie before the end, `left` floats away (all when left ≥ 16).
static inline __mmask16 lanes16(long left) {
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
}

__attribute__((target("avx512f"))) static inline __m512 exp16(__m512 x) {
    __m512 c = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(EXP_LO)), _mm512_set1_ps(EXP_HI));
    __m512 n = _mm512_roundscale_ps(_mm512_fmadd_ps(c, _mm512_set1_ps(1.44269504f), _mm512_set1_ps(0.5f)),
                                    _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), c);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.1219444e-4f), r);
    __m512 p = _mm512_set1_ps(exp_poly[0]);
    for (int i = 1; i < 6; i++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(exp_poly[i]));
    p = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127)), 23);
    __m512 out = _mm512_mul_ps(p, _mm512_castsi512_ps(e));
    __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(EXP_LO), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(under, out, _mm512_setzero_ps());
}

__attribute__((target("avx512f"))) static inline __m512 gelu16(__m512 v) {
    __m512 x = _mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f));
    __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 z = _mm512_abs_ps(x);
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(z, _mm512_set1_ps(0.5f), _mm512_set1_ps(1.0f)));
    __m512 p = _mm512_set1_ps(erfc_poly[0]);
    for (int i = 1; i < 10; i++) p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(erfc_poly[i]));
    __m512 erfc = _mm512_mul_ps(t, exp16(_mm512_fnmadd_ps(z, z, p)));
    __m512 r = _mm512_sub_ps(_mm512_set1_ps(1.0f), erfc);
    r = _mm512_mask_sub_ps(r, negative, _mm512_setzero_ps(), r);
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), _mm512_add_ps(_mm512_set1_ps(1.0f), r));
}

__attribute__((target("avx512f"))) static void gelu_avx512(float *x, long n) {
    for (long i = 0; i < n; i += 16) {
        __mmask16 m = lanes16(n - i);
        _mm512_mask_storeu_ps(x + i, m, gelu16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

__attribute__((target("avx512f"))) static void softmax_avx512(float *a, long rows, long cols, float scale) {
    __m512 s = _mm512_set1_ps(scale);
    for (long r = 0; r < rows; r++) {
        float *row = a + r * cols;
        __m512 m16 = _mm512_set1_ps(-__builtin_inff());
        for (long j = 0; j < cols; j += 16) {
            __mmask16 m = lanes16(cols - j);
            m16 = _mm512_mask_max_ps(m16, m, m16, _mm512_maskz_loadu_ps(m, row + j));
        }
        __m512 shift = _mm512_set1_ps(_mm512_reduce_max_ps(m16) * scale);
        __m512 sum16 = _mm512_setzero_ps();
        for (long j = 0; j < cols; j += 16) {
            __mmask16 m = lanes16(cols - j);
            __m512 e = exp16(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(m, row + j), s, shift));
            _mm512_mask_storeu_ps(row + j, m, e);
            sum16 = _mm512_mask_add_ps(sum16, m, sum16, e);
        }
        __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum16));
        for (long j = 0; j < cols; j += 16) {
            __mmask16 m = lanes16(cols - j);
            _mm512_mask_storeu_ps(row + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + j), inv));
        }
    }
}

// MARK: - AVX2 + FMA

__attribute__((target("avx2,fma"))) static inline __m256 exp8(__m256 x) {
    __m256 c = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(EXP_LO)), _mm256_set1_ps(EXP_HI));
    __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(c, _mm256_set1_ps(1.44269504f), _mm256_set1_ps(0.5f)));
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), c);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.1219444e-4f), r);
    __m256 p = _mm256_set1_ps(exp_poly[0]);
    for (int i = 1; i < 6; i++) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(exp_poly[i]));
    p = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 out = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(EXP_LO), _CMP_LT_OQ);
    return _mm256_blendv_ps(out, _mm256_setzero_ps(), under);
}

__attribute__((target("avx2,fma"))) static inline __m256 gelu8(__m256 v) {
    __m256 x = _mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752f));
    __m256 negative = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    __m256 z = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(z, _mm256_set1_ps(0.5f), _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(erfc_poly[0]);
    for (int i = 1; i < 10; i++) p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(erfc_poly[i]));
    __m256 erfc = _mm256_mul_ps(t, exp8(_mm256_fnmadd_ps(z, z, p)));
    __m256 r = _mm256_sub_ps(_mm256_set1_ps(1.0f), erfc);
    r = _mm256_blendv_ps(r, _mm256_sub_ps(_mm256_setzero_ps(), r), negative);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), _mm256_add_ps(_mm256_set1_ps(1.0f), r));
}

// AVX2 has no masked float loads that fault-free pad; tails go through an 8-float buffer.
__attribute__((target("avx2,fma"))) static void gelu_avx2(float *x, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, gelu8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float tail[8] = {0};
        for (long j = i; j < n; j++) tail[j - i] = x[j];
        _mm256_storeu_ps(tail, gelu8(_mm256_loadu_ps(tail)));
        for (long j = i; j < n; j++) x[j] = tail[j - i];
    }
}

__attribute__((target("avx2,fma"))) static float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) static void softmax_avx2(float *a, long rows, long cols, float scale) {
    __m256 s = _mm256_set1_ps(scale);
    long vectorEnd = cols & ~7L;
    for (long r = 0; r < rows; r++) {
        float *row = a + r * cols;
        float m = -__builtin_inff();
        for (long j = 0; j < cols; j++) m = row[j] > m ? row[j] : m;
        __m256 shift = _mm256_set1_ps(m * scale);
        __m256 sum8 = _mm256_setzero_ps();
        long j = 0;
        for (; j < vectorEnd; j += 8) {
            __m256 e = exp8(_mm256_fmsub_ps(_mm256_loadu_ps(row + j), s, shift));
            _mm256_storeu_ps(row + j, e);
            sum8 = _mm256_add_ps(sum8, e);
        }
        float sum = hsum8(sum8);
        for (; j < cols; j++) {
            float e = _mm256_cvtss_f32(exp8(_mm256_set1_ps(row[j] * scale - m * scale)));
            row[j] = e;
            sum += e;
        }
        float inv = 1.0f / sum;
        for (j = 0; j < cols; j++) row[j] *= inv;
    }
}

#endif

// MARK: - Dispatch

static int level_cache = -1;

int lp_trunk_simd_level(void) {
    int level = __atomic_load_n(&level_cache, __ATOMIC_ACQUIRE);
    if (level >= 0) return level;
    level = 0;
#ifdef LP_TRUNK_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) level = 2;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) level = 1;
#endif
    __atomic_store_n(&level_cache, level, __ATOMIC_RELEASE);
    return level;
}

void lp_gelu_f32_at(float *x, long n, int level) {
#ifdef LP_TRUNK_X86
    if (level == 2) gelu_avx512(x, n);
    else if (level == 1) gelu_avx2(x, n);
#else
    (void)x; (void)n; (void)level;
#endif
}

void lp_softmax_rows_f32_at(float *a, long rows, long cols, float scale, int level) {
#ifdef LP_TRUNK_X86
    if (level == 2) softmax_avx512(a, rows, cols, scale);
    else if (level == 1) softmax_avx2(a, rows, cols, scale);
#else
    (void)a; (void)rows; (void)cols; (void)scale; (void)level;
#endif
}

void lp_gelu_f32(float *x, long n) { lp_gelu_f32_at(x, n, lp_trunk_simd_level()); }

void lp_softmax_rows_f32(float *a, long rows, long cols, float scale) {
    lp_softmax_rows_f32_at(a, rows, cols, scale, lp_trunk_simd_level());
}
