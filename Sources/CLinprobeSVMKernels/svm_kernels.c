// Mixed-precision kernels for the SVM solver (see include/svm_kernels.h).
#include "svm_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#define LP_X86 1
#include <immintrin.h>
#endif

// MARK: - Portable versions (four independent accumulators)

static double dot_generic(const float *x, const double *w, long n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    long i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += (double)x[i] * w[i];
        s1 += (double)x[i + 1] * w[i + 1];
        s2 += (double)x[i + 2] * w[i + 2];
        s3 += (double)x[i + 3] * w[i + 3];
    }
    for (; i < n; i++) s0 += (double)x[i] * w[i];
    return (s0 + s1) + (s2 + s3);
}

static void axpy_generic(double a, const float *x, double *y, long n) {
    for (long i = 0; i < n; i++) y[i] += a * (double)x[i];
}

static double sumsq_generic(const float *x, long n) {
    double s0 = 0, s1 = 0;
    long i = 0;
    for (; i + 2 <= n; i += 2) {
        s0 += (double)x[i] * x[i];
        s1 += (double)x[i + 1] * x[i + 1];
    }
    for (; i < n; i++) s0 += (double)x[i] * x[i];
    return s0 + s1;
}

#ifdef LP_X86

// MARK: - AVX2 + FMA

__attribute__((target("avx2,fma")))
static double dot_avx2(const float *x, const double *w, long n) {
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    __m256d a2 = _mm256_setzero_pd(), a3 = _mm256_setzero_pd();
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 f0 = _mm256_loadu_ps(x + i);
        __m256 f1 = _mm256_loadu_ps(x + i + 8);
        a0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(f0)), _mm256_loadu_pd(w + i), a0);
        a1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(f0, 1)), _mm256_loadu_pd(w + i + 4), a1);
        a2 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(f1)), _mm256_loadu_pd(w + i + 8), a2);
        a3 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(f1, 1)), _mm256_loadu_pd(w + i + 12), a3);
    }
    __m256d acc = _mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3));
    double lanes[4];
    _mm256_storeu_pd(lanes, acc);
    double s = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (; i < n; i++) s += (double)x[i] * w[i];
    return s;
}

__attribute__((target("avx2,fma")))
static void axpy_avx2(double a, const float *x, double *y, long n) {
    __m256d va = _mm256_set1_pd(a);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 f = _mm256_loadu_ps(x + i);
        __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(f));
        __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1));
        _mm256_storeu_pd(y + i, _mm256_fmadd_pd(va, lo, _mm256_loadu_pd(y + i)));
        _mm256_storeu_pd(y + i + 4, _mm256_fmadd_pd(va, hi, _mm256_loadu_pd(y + i + 4)));
    }
    for (; i < n; i++) y[i] += a * (double)x[i];
}

__attribute__((target("avx2,fma")))
static double sumsq_avx2(const float *x, long n) {
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 f = _mm256_loadu_ps(x + i);
        __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(f));
        __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1));
        a0 = _mm256_fmadd_pd(lo, lo, a0);
        a1 = _mm256_fmadd_pd(hi, hi, a1);
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(a0, a1));
    double s = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

// MARK: - AVX-512

__attribute__((target("avx512f")))
static double dot_avx512(const float *x, const double *w, long n) {
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    __m512d a2 = _mm512_setzero_pd(), a3 = _mm512_setzero_pd();
    long i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 f0 = _mm512_loadu_ps(x + i);
        __m512 f1 = _mm512_loadu_ps(x + i + 16);
        a0 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(f0)), _mm512_loadu_pd(w + i), a0);
        a1 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f0), 1))),
                             _mm512_loadu_pd(w + i + 8), a1);
        a2 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(f1)), _mm512_loadu_pd(w + i + 16), a2);
        a3 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f1), 1))),
                             _mm512_loadu_pd(w + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) {
        a0 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), _mm512_loadu_pd(w + i), a0);
    }
    double s = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
    for (; i < n; i++) s += (double)x[i] * w[i];
    return s;
}

__attribute__((target("avx512f")))
static void axpy_avx512(double a, const float *x, double *y, long n) {
    __m512d va = _mm512_set1_pd(a);
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512d lo = _mm512_cvtps_pd(_mm256_loadu_ps(x + i));
        __m512d hi = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8));
        _mm512_storeu_pd(y + i, _mm512_fmadd_pd(va, lo, _mm512_loadu_pd(y + i)));
        _mm512_storeu_pd(y + i + 8, _mm512_fmadd_pd(va, hi, _mm512_loadu_pd(y + i + 8)));
    }
    for (; i < n; i++) y[i] += a * (double)x[i];
}

__attribute__((target("avx512f")))
static double sumsq_avx512(const float *x, long n) {
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512d lo = _mm512_cvtps_pd(_mm256_loadu_ps(x + i));
        __m512d hi = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8));
        a0 = _mm512_fmadd_pd(lo, lo, a0);
        a1 = _mm512_fmadd_pd(hi, hi, a1);
    }
    double s = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
    for (; i < n; i++) s += (double)x[i] * x[i];
    return s;
}
#endif

// MARK: - Dispatch (chosen once; a benign race stores the same pointers)

typedef double (*dot_fn)(const float *, const double *, long);
typedef void (*axpy_fn)(double, const float *, double *, long);
typedef double (*sumsq_fn)(const float *, long);

static int chosen = -1;  // 0 generic, 1 avx2, 2 avx512
static dot_fn dot_impl = dot_generic;
static axpy_fn axpy_impl = axpy_generic;
static sumsq_fn sumsq_impl = sumsq_generic;

static void choose(void) {
    int level = 0;
#ifdef LP_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) level = 2;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) level = 1;
    if (level == 2) { dot_impl = dot_avx512; axpy_impl = axpy_avx512; sumsq_impl = sumsq_avx512; }
    else if (level == 1) { dot_impl = dot_avx2; axpy_impl = axpy_avx2; sumsq_impl = sumsq_avx2; }
#endif
    __atomic_store_n(&chosen, level, __ATOMIC_RELEASE);
}

static inline void ensure_chosen(void) {
    if (__builtin_expect(__atomic_load_n(&chosen, __ATOMIC_ACQUIRE) < 0, 0)) choose();
}

double lp_dot_f32_f64(const float *x, const double *w, long n) {
    ensure_chosen();
    return dot_impl(x, w, n);
}

void lp_axpy_f32_f64(double a, const float *x, double *y, long n) {
    ensure_chosen();
    axpy_impl(a, x, y, n);
}

double lp_sumsq_f32(const float *x, long n) {
    ensure_chosen();
    return sumsq_impl(x, n);
}

const char *lp_svm_kernel_name(void) {
    ensure_chosen();
    switch (chosen) {
    case 2: return "avx512";
    case 1: return "avx2";
    default: return "generic";
    }
}
