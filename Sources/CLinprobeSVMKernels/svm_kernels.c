// Mixed-precision kernels for the SVM solver (see include/svm_kernels.h).
#include "svm_kernels.h"

#include <math.h>
#include <unistd.h>

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

// Every axpy variant rounds once per element (a fused multiply-add), so the variants agree bit
// for bit and the lazy Gram updates below reproduce them exactly.
static void axpy_generic(double a, const float *x, double *y, long n) {
    for (long i = 0; i < n; i++) y[i] = fma(a, (double)x[i], y[i]);
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


// MARK: - Lazy Gram updates, portable
//
// A problem's pending updates (Gram row r_k, coefficient δ_k, k in the order they were made) are
// applied to an element u_j as fma(δ_k, K[r_k][j], ·) for k = 0, 1, ...: the same operations, in
// the same order, as one axpy per update. The flush walks the columns in chunks that keep the
// pending rows' pieces in L1 while every problem of the batch consumes them.

static double margin_generic(double u, const float *row, const int *cols, const double *deltas, long count) {
    for (long k = 0; k < count; k++) u = fma(deltas[k], (double)row[cols[k]], u);
    return u;
}

static void flush_span_generic(const float *const *rows, const double *deltas, long count, double *u, long from,
                               long to) {
    for (long j = from; j < to; j++) {
        double a = u[j];
        for (long k = 0; k < count; k++) a = fma(deltas[k], (double)rows[k][j], a);
        u[j] = a;
    }
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
    for (; i < n; i++) y[i] = fma(a, (double)x[i], y[i]);
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
    for (; i < n; i++) y[i] = fma(a, (double)x[i], y[i]);
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

// MARK: - Lazy Gram updates, AVX2 + FMA and AVX-512 (four independent accumulators per span)

__attribute__((target("avx2,fma")))
static double margin_avx2(double u, const float *row, const int *cols, const double *deltas, long count) {
    for (long k = 0; k < count; k++) u = fma(deltas[k], (double)row[cols[k]], u);
    return u;
}

__attribute__((target("avx2,fma")))
static void flush_span_avx2(const float *const *rows, const double *deltas, long count, double *u, long from,
                            long to) {
    long j = from;
    for (; j + 16 <= to; j += 16) {
        __m256d a0 = _mm256_loadu_pd(u + j), a1 = _mm256_loadu_pd(u + j + 4);
        __m256d a2 = _mm256_loadu_pd(u + j + 8), a3 = _mm256_loadu_pd(u + j + 12);
        for (long k = 0; k < count; k++) {
            const float *r = rows[k] + j;
            __m256d d = _mm256_set1_pd(deltas[k]);
            a0 = _mm256_fmadd_pd(d, _mm256_cvtps_pd(_mm_loadu_ps(r)), a0);
            a1 = _mm256_fmadd_pd(d, _mm256_cvtps_pd(_mm_loadu_ps(r + 4)), a1);
            a2 = _mm256_fmadd_pd(d, _mm256_cvtps_pd(_mm_loadu_ps(r + 8)), a2);
            a3 = _mm256_fmadd_pd(d, _mm256_cvtps_pd(_mm_loadu_ps(r + 12)), a3);
        }
        _mm256_storeu_pd(u + j, a0);
        _mm256_storeu_pd(u + j + 4, a1);
        _mm256_storeu_pd(u + j + 8, a2);
        _mm256_storeu_pd(u + j + 12, a3);
    }
    for (; j + 4 <= to; j += 4) {
        __m256d a = _mm256_loadu_pd(u + j);
        for (long k = 0; k < count; k++) {
            a = _mm256_fmadd_pd(_mm256_set1_pd(deltas[k]), _mm256_cvtps_pd(_mm_loadu_ps(rows[k] + j)), a);
        }
        _mm256_storeu_pd(u + j, a);
    }
    for (; j < to; j++) {
        double a = u[j];
        for (long k = 0; k < count; k++) a = fma(deltas[k], (double)rows[k][j], a);
        u[j] = a;
    }
}

__attribute__((target("avx512f")))
static void flush_span_avx512(const float *const *rows, const double *deltas, long count, double *u, long from,
                              long to) {
    long j = from;
    for (; j + 32 <= to; j += 32) {
        __m512d a0 = _mm512_loadu_pd(u + j), a1 = _mm512_loadu_pd(u + j + 8);
        __m512d a2 = _mm512_loadu_pd(u + j + 16), a3 = _mm512_loadu_pd(u + j + 24);
        for (long k = 0; k < count; k++) {
            const float *r = rows[k] + j;
            __m512d d = _mm512_set1_pd(deltas[k]);
            a0 = _mm512_fmadd_pd(d, _mm512_cvtps_pd(_mm256_loadu_ps(r)), a0);
            a1 = _mm512_fmadd_pd(d, _mm512_cvtps_pd(_mm256_loadu_ps(r + 8)), a1);
            a2 = _mm512_fmadd_pd(d, _mm512_cvtps_pd(_mm256_loadu_ps(r + 16)), a2);
            a3 = _mm512_fmadd_pd(d, _mm512_cvtps_pd(_mm256_loadu_ps(r + 24)), a3);
        }
        _mm512_storeu_pd(u + j, a0);
        _mm512_storeu_pd(u + j + 8, a1);
        _mm512_storeu_pd(u + j + 16, a2);
        _mm512_storeu_pd(u + j + 24, a3);
    }
    while (j < to) {
        long left = to - j;
        __mmask8 m = left >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << left) - 1u);
        __m512d a = _mm512_maskz_loadu_pd(m, u + j);
        for (long k = 0; k < count; k++) {
            __m512d x = _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_maskz_loadu_ps((__mmask16)m, rows[k] + j)));
            a = _mm512_fmadd_pd(_mm512_set1_pd(deltas[k]), x, a);
        }
        _mm512_mask_storeu_pd(u + j, m, a);
        j += left >= 8 ? 8 : left;
    }
}
#endif

// MARK: - Dispatch (chosen once; a benign race stores the same pointers)

typedef double (*dot_fn)(const float *, const double *, long);
typedef void (*axpy_fn)(double, const float *, double *, long);
typedef double (*sumsq_fn)(const float *, long);
typedef double (*margin_fn)(double, const float *, const int *, const double *, long);
typedef void (*span_fn)(const float *const *, const double *, long, double *, long, long);

static int chosen = -1;  // 0 generic, 1 avx2, 2 avx512
static dot_fn dot_impl = dot_generic;
static axpy_fn axpy_impl = axpy_generic;
static sumsq_fn sumsq_impl = sumsq_generic;
static margin_fn margin_impl = margin_generic;
static span_fn span_impl = flush_span_generic;

static void choose(void) {
    int level = 0;
#ifdef LP_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) level = 2;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) level = 1;
    if (level == 2) {
        dot_impl = dot_avx512; axpy_impl = axpy_avx512; sumsq_impl = sumsq_avx512;
        margin_impl = margin_avx2; span_impl = flush_span_avx512;
    } else if (level == 1) {
        dot_impl = dot_avx2; axpy_impl = axpy_avx2; sumsq_impl = sumsq_avx2;
        margin_impl = margin_avx2; span_impl = flush_span_avx2;
    }
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

double lp_gram_lazy_margin(double u, const float *row, const int *cols, const double *deltas, long count) {
    ensure_chosen();
    return margin_impl(u, row, cols, deltas, count);
}

/// Columns per span of a flush: the pending rows' pieces of a span (count × span floats) take at
/// most half the L1 data cache, so every problem of the batch reads them from L1.
static long flush_span(long count) {
    static long l1 = 0;
    long size = __atomic_load_n(&l1, __ATOMIC_RELAXED);
    if (size == 0) {
        long v = -1;
#ifdef _SC_LEVEL1_DCACHE_SIZE
        v = sysconf(_SC_LEVEL1_DCACHE_SIZE);
#endif
        size = v >= 16384 && v <= (1L << 22) ? v : 32768;
        __atomic_store_n(&l1, size, __ATOMIC_RELAXED);
    }
    long span = (size / 2) / (4 * (count > 0 ? count : 1));
    span -= span % 32;
    return span < 64 ? 64 : span;
}

static void gram_flush(span_fn span_impl_, axpy_fn axpy_, const float *gram, long columns, double *values,
                       long problems, const long *counts, const int *cols, const double *deltas, long stride) {
    enum { MAX_PENDING = 256 };
    if (stride > MAX_PENDING) {  // not used by the solver; kept correct for any caller
        for (long p = 0; p < problems; p++) {
            for (long k = 0; k < counts[p]; k++) {
                axpy_(deltas[p * stride + k], gram + (long)cols[p * stride + k] * columns, values + p * columns,
                      columns);
            }
        }
        return;
    }
    const float *rows[MAX_PENDING];
    long span = flush_span(stride);
    for (long from = 0; from < columns; from += span) {
        long to = from + span < columns ? from + span : columns;
        for (long p = 0; p < problems; p++) {
            long count = counts[p];
            if (count == 0) continue;
            const int *c = cols + p * stride;
            for (long k = 0; k < count; k++) rows[k] = gram + (long)c[k] * columns;
            span_impl_(rows, deltas + p * stride, count, values + p * columns, from, to);
        }
    }
}

void lp_gram_flush(const float *gram, long columns, double *values, long problems, const long *counts,
                   const int *cols, const double *deltas, long stride) {
    ensure_chosen();
    gram_flush(span_impl, axpy_impl, gram, columns, values, problems, counts, cols, deltas, stride);
}

int lp_svm_kernel_level(void) {
    ensure_chosen();
    return chosen;
}

// The variants of one level, for tests (a level above the CPU's falls back to the chosen one).
static int usable(int level) {
    ensure_chosen();
    return level < 0 ? 0 : (level > chosen ? chosen : level);
}

void lp_axpy_f32_f64_at(int level, double a, const float *x, double *y, long n) {
    switch (usable(level)) {
#ifdef LP_X86
    case 2: axpy_avx512(a, x, y, n); return;
    case 1: axpy_avx2(a, x, y, n); return;
#endif
    default: axpy_generic(a, x, y, n); return;
    }
}

double lp_gram_lazy_margin_at(int level, double u, const float *row, const int *cols, const double *deltas,
                              long count) {
#ifdef LP_X86
    if (usable(level) >= 1) return margin_avx2(u, row, cols, deltas, count);
#endif
    return margin_generic(u, row, cols, deltas, count);
}

void lp_gram_flush_at(int level, const float *gram, long columns, double *values, long problems, const long *counts,
                      const int *cols, const double *deltas, long stride) {
    switch (usable(level)) {
#ifdef LP_X86
    case 2:
        gram_flush(flush_span_avx512, axpy_avx512, gram, columns, values, problems, counts, cols, deltas, stride);
        return;
    case 1:
        gram_flush(flush_span_avx2, axpy_avx2, gram, columns, values, problems, counts, cols, deltas, stride);
        return;
#endif
    default:
        gram_flush(flush_span_generic, axpy_generic, gram, columns, values, problems, counts, cols, deltas, stride);
        return;
    }
}

const char *lp_svm_kernel_name(void) {
    ensure_chosen();
    switch (chosen) {
    case 2: return "avx512";
    case 1: return "avx2";
    default: return "generic";
    }
}
