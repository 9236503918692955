// The visits of the lockstep Gram solver (see include/svm_kernels.h, "Lockstep visits"): liblinear's
// coordinate step with its shrinking rule (`ShrinkingRule.visit` in LinprobeSVM) for many problems
// at one row, eight problems per AVX-512 vector. Every operation is the scalar rule's, unfused and in
// the same order (the file turns off floating-point contraction), so each variant gives the same bits.
#include "svm_kernels.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define LP_X86 1
#include <immintrin.h>
#endif

#pragma clang fp contract(off)

// MARK: - Portable

/// Swift's `max(x, y)` and `min(x, y)` (ties and NaN as the standard library picks them).
static inline double swift_max(double x, double y) { return y >= x ? y : x; }
static inline double swift_min(double x, double y) { return y < x ? y : x; }

static long visit_generic(const lp_lockstep_state *s, long row, double norm, long byteFrom, long byteTo,
                          const double *margins, double *coefficients) {
    const long P = s->problems;
    const unsigned char *running = s->running;
    unsigned char *active = s->active + row * s->maskBytes;
    const unsigned char *positive = s->positive + row * s->maskBytes;
    double *alpha = s->alpha + row * P;
    long j = 0, any = 0;
    for (long b = byteFrom; b < byteTo; b++) {
        for (long bit = 0; bit < 8; bit++) {
            if (!((running[b] >> bit) & 1)) continue;
            long p = b * 8 + bit;
            double m = margins[j];
            double *out = coefficients + j;
            j++;
            *out = 0;
            if (!((active[b] >> bit) & 1)) continue;
            int pos = (positive[b] >> bit) & 1;
            double yi = pos ? 1 : -1;
            double diag = s->diagonal[pos * P + p], upper = s->upper[pos * P + p];
            double a = alpha[p];
            double g = yi * m - 1 + a * diag;
            double pg = 0;
            int shrink = 0;
            if (a == 0) {
                if (g > s->maxOld[p]) shrink = 1;
                else if (g < 0) pg = g;
            } else if (a == upper) {
                if (g < s->minOld[p]) shrink = 1;
                else if (g > 0) pg = g;
            } else {
                pg = g;
            }
            if (shrink) {
                active[b] &= (unsigned char)~(1u << bit);
                s->activeCount[p] -= 1;
                continue;
            }
            if (pg > s->maxNew[p]) s->maxNew[p] = pg;
            if (pg < s->minNew[p]) s->minNew[p] = pg;
            if (fabs(pg) <= 1e-12) continue;
            double updated = swift_min(swift_max(a - g / (diag + norm), 0), upper);
            alpha[p] = updated;
            double d = (updated - a) * yi;
            if (d != 0) {
                *out = d;
                any = 1;
            }
        }
    }
    return any;
}

// MARK: - AVX-512: eight problems per vector

#ifdef LP_X86
__attribute__((target("avx512f"))) static long visit_avx512(const lp_lockstep_state *s, long row, double norm,
                                                            long byteFrom, long byteTo, const double *margins,
                                                            double *coefficients) {
    const long P = s->problems;
    const unsigned char *running = s->running;
    unsigned char *active = s->active + row * s->maskBytes;
    const unsigned char *positive = s->positive + row * s->maskBytes;
    double *alpha = s->alpha + row * P;
    const __m512d zero = _mm512_setzero_pd(), one = _mm512_set1_pd(1), minusOne = _mm512_set1_pd(-1);
    const __m512d tiny = _mm512_set1_pd(1e-12), vnorm = _mm512_set1_pd(norm);
    const __m512i oneCount = _mm512_set1_epi64(1);
    long j = 0;
    __mmask8 any = 0;
    for (long b = byteFrom; b < byteTo; b++) {
        __mmask8 run = running[b];
        if (!run) continue;
        long p = b * 8;
        __m512d m = _mm512_maskz_expandloadu_pd(run, margins + j);
        double *out = coefficients + j;
        __mmask8 slots = (__mmask8)((1u << __builtin_popcount(run)) - 1);
        j += __builtin_popcount(run);
        // Zero coefficients first: the rows of a block are written once here, never cleared.
        _mm512_mask_storeu_pd(out, slots, zero);
        __mmask8 act = active[b] & run;
        if (!act) continue;
        __mmask8 pos = positive[b];
        __m512d yi = _mm512_mask_blend_pd(pos, minusOne, one);
        __m512d diag = _mm512_mask_blend_pd(pos, _mm512_maskz_loadu_pd(act, s->diagonal + p),
                                            _mm512_maskz_loadu_pd(act, s->diagonal + P + p));
        __m512d upper = _mm512_mask_blend_pd(pos, _mm512_maskz_loadu_pd(act, s->upper + p),
                                             _mm512_maskz_loadu_pd(act, s->upper + P + p));
        __m512d a = _mm512_maskz_loadu_pd(act, alpha + p);
        __m512d g = _mm512_add_pd(_mm512_sub_pd(_mm512_mul_pd(yi, m), one), _mm512_mul_pd(a, diag));
        __mmask8 atZero = _mm512_cmp_pd_mask(a, zero, _CMP_EQ_OQ);
        __mmask8 atUpper = (__mmask8)(~atZero & _mm512_cmp_pd_mask(a, upper, _CMP_EQ_OQ));
        __mmask8 inside = (__mmask8)(~atZero & ~atUpper);
        __mmask8 aboveMax = _mm512_cmp_pd_mask(g, _mm512_maskz_loadu_pd(act, s->maxOld + p), _CMP_GT_OQ);
        __mmask8 belowMin = _mm512_cmp_pd_mask(g, _mm512_maskz_loadu_pd(act, s->minOld + p), _CMP_LT_OQ);
        __mmask8 shrink = act & ((atZero & aboveMax) | (atUpper & belowMin));
        __mmask8 negative = _mm512_cmp_pd_mask(g, zero, _CMP_LT_OQ);
        __mmask8 positiveG = _mm512_cmp_pd_mask(g, zero, _CMP_GT_OQ);
        __mmask8 projected = (atZero & ~aboveMax & negative) | (atUpper & ~belowMin & positiveG) | inside;
        __mmask8 live = act & ~shrink;
        __m512d pg = _mm512_maskz_mov_pd(projected, g);
        __m512d maxNew = _mm512_maskz_loadu_pd(live, s->maxNew + p);
        __m512d minNew = _mm512_maskz_loadu_pd(live, s->minNew + p);
        _mm512_mask_storeu_pd(s->maxNew + p, live & _mm512_cmp_pd_mask(pg, maxNew, _CMP_GT_OQ), pg);
        _mm512_mask_storeu_pd(s->minNew + p, live & _mm512_cmp_pd_mask(pg, minNew, _CMP_LT_OQ), pg);
        if (shrink) {
            active[b] = (unsigned char)(active[b] & ~shrink);
            __m512i count = _mm512_maskz_loadu_epi64(shrink, s->activeCount + p);
            _mm512_mask_storeu_epi64(s->activeCount + p, shrink, _mm512_sub_epi64(count, oneCount));
        }
        __mmask8 move = live & _mm512_cmp_pd_mask(_mm512_abs_pd(pg), tiny, _CMP_NLE_UQ);
        if (!move) continue;
        // max(a − g/qd, 0) then min(·, upper), as Swift's max and min pick.
        __m512d step = _mm512_sub_pd(a, _mm512_div_pd(g, _mm512_add_pd(diag, vnorm)));
        step = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(zero, step, _CMP_GE_OQ), step, zero);
        __m512d updated = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(upper, step, _CMP_LT_OQ), step, upper);
        _mm512_mask_storeu_pd(alpha + p, move, updated);
        __m512d d = _mm512_mul_pd(_mm512_sub_pd(updated, a), yi);
        __mmask8 nonzero = move & _mm512_cmp_pd_mask(d, zero, _CMP_NEQ_UQ);
        if (!nonzero) continue;
        // The coefficients of this byte's running problems, packed to their consecutive slots.
        __m512d packed = _mm512_maskz_compress_pd(run, _mm512_maskz_mov_pd(nonzero, d));
        _mm512_mask_storeu_pd(out, slots, packed);
        any |= nonzero;
    }
    return any != 0;
}
#endif

long lp_lockstep_visit(int level, const lp_lockstep_state *s, long row, double norm, long byteFrom, long byteTo,
                       const double *margins, double *coefficients) {
    int usable = lp_svm_kernel_level();
    if (level < 0 || level > usable) level = usable;
#ifdef LP_X86
    if (level == 2) return visit_avx512(s, row, norm, byteFrom, byteTo, margins, coefficients);
#endif
    return visit_generic(s, row, norm, byteFrom, byteTo, margins, coefficients);
}

void lp_lockstep_gather(const double *values, long problems, long column, const long *which, long count,
                        double *out) {
    const double *tile = values + (column / LP_LOCKSTEP_TILE) * problems * LP_LOCKSTEP_TILE + column % LP_LOCKSTEP_TILE;
    for (long j = 0; j < count; j++) out[j] = tile[which[j] * LP_LOCKSTEP_TILE];
}

void lp_lockstep_prefetch(const lp_lockstep_state *s, const double *values, long column, const long *which,
                          long count, long byteFrom, long byteTo) {
    if (count <= 0) return;
    const long P = s->problems;
    const double *tile = values + (column / LP_LOCKSTEP_TILE) * P * LP_LOCKSTEP_TILE + column % LP_LOCKSTEP_TILE;
    for (long j = 0; j < count; j++) __builtin_prefetch(tile + which[j] * LP_LOCKSTEP_TILE);
    const char *alpha = (const char *)(s->alpha + column * P + which[0]);
    const char *end = (const char *)(s->alpha + column * P + which[count - 1] + 1);
    for (; alpha < end; alpha += 64) __builtin_prefetch(alpha);
    __builtin_prefetch(end - 1);
    for (long b = byteFrom; b < byteTo; b += 64) {
        __builtin_prefetch(s->active + column * s->maskBytes + b);
        __builtin_prefetch(s->positive + column * s->maskBytes + b);
    }
    __builtin_prefetch(s->active + column * s->maskBytes + byteTo - 1);
    __builtin_prefetch(s->positive + column * s->maskBytes + byteTo - 1);
}

void lp_lockstep_prefetch_gram(const float *gram, long stride, long row, const long *columns, long count) {
    const float *r = gram + row * stride;
    for (long i = 0; i < count; i++) __builtin_prefetch(r + columns[i]);
}
