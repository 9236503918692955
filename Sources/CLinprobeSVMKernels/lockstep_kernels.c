// Kernels of the lockstep Gram solver (see include/svm_kernels.h, "Lockstep").
//
// Every update of a decision value is fma(δ_k, K[r_k][c], u) for the block positions k in order,
// whatever the level: the variants agree bit for bit, and a zero δ leaves u unchanged (u is never
// −0), so running over positions where a problem made no update changes nothing.
#include "svm_kernels.h"

#include <math.h>
#include <string.h>
#include <stdlib.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif
#include <sched.h>

#if defined(__x86_64__) || defined(__i386__)
#define LP_X86 1
#include <immintrin.h>
#endif

enum { TILE = LP_LOCKSTEP_TILE, MAX_ROWS = LP_LOCKSTEP_MAX_JOB };

void lp_lockstep_panel(const float *gram, long stride, long columns, const int *rows, const int *positions, long count,
                       long firstTile, long tiles, long kstride, float *panel) {
    long from = firstTile * TILE;
    long valid = columns - from < tiles * TILE ? columns - from : tiles * TILE;
    // Row by row (each row's piece is contiguous, so it streams), scattered into the tiles.
    for (long q = 0; q < count; q++) {
        long k = positions[q];
        const float *src = gram + (long)rows[k] * stride + from;
        if (q + 1 < count) {
            const char *next = (const char *)(gram + (long)rows[positions[q + 1]] * stride + from);
            for (long b = 0; b < valid * 4; b += 64) __builtin_prefetch(next + b);
        }
        for (long t = 0; t < tiles; t++) {
            float *dst = panel + t * kstride * TILE + k * TILE;
            long base = t * TILE;
            if (base + TILE <= valid) {
                memcpy(dst, src + base, sizeof(float) * TILE);
            } else {
                for (long c = 0; c < TILE; c++) dst[c] = base + c < valid ? src[base + c] : 0;
            }
        }
    }
}

// MARK: - The block's Gram submatrix and the margins

void lp_lockstep_block_gram(const float *gram, long stride, const int *rows, long from, long to, const int *positions,
                            long count, double *kb, long kbstride) {
    for (long k = from; k < to; k++) {
        const float *row = gram + (long)rows[k] * stride;
        double *dst = kb + k * kbstride;
        for (long q = 0; q < count; q++) dst[positions[q]] = (double)row[rows[positions[q]]];
    }
}

// m[(k − from)·ms + j] = fma(delta[klist[q]·dstride + j], kb[k·kbs + klist[q]], ·) for q < kn in
// order, k in [from, to), j < problems.
typedef void (*margins_fn)(const double *, long, long, long, const int *, long, const double *, long, long,
                           double *, long);

static void margins_generic(const double *kb, long kbs, long from, long to, const int *klist, long kn,
                            const double *delta, long dstride, long problems, double *m, long ms) {
    for (long k = from; k < to; k++) {
        double *out = m + (k - from) * ms;
        for (long q = 0; q < kn; q++) {
            double x = kb[k * kbs + klist[q]];
            const double *d = delta + (long)klist[q] * dstride;
            for (long j = 0; j < problems; j++) out[j] = fma(d[j], x, out[j]);
        }
    }
}

#ifdef LP_X86
// P positions × V vectors of problems per call, accumulators in registers; the klist loop is the
// innermost, so each accumulator's chain runs in klist order.
#define LP_MARGINS_TILE(NAME, TARGET, VEC, LANES, LOAD, STORE, FMA, SET1)                                    \
    __attribute__((target(TARGET))) static inline __attribute__((always_inline)) void NAME(                    \
        const double *kb, long kbs, long k0, long from, const long P, const int *klist, long kn,              \
        const double *delta, long dstride, long j, const long V, double *m, long ms) {                        \
        VEC acc[4][4];                                                                                        \
        for (long p = 0; p < P; p++)                                                                          \
            for (long v = 0; v < V; v++) acc[p][v] = LOAD(m + (k0 + p - from) * ms + j + LANES * v);          \
        for (long q = 0; q < kn; q++) {                                                                       \
            long kq = klist[q];                                                                               \
            const double *d = delta + kq * dstride + j;                                                       \
            VEC x[4];                                                                                         \
            for (long v = 0; v < V; v++) x[v] = LOAD(d + LANES * v);                                          \
            for (long p = 0; p < P; p++) {                                                                    \
                VEC b = SET1(kb[(k0 + p) * kbs + kq]);                                                        \
                for (long v = 0; v < V; v++) acc[p][v] = FMA(x[v], b, acc[p][v]);                             \
            }                                                                                                 \
        }                                                                                                     \
        for (long p = 0; p < P; p++)                                                                          \
            for (long v = 0; v < V; v++) STORE(m + (k0 + p - from) * ms + j + LANES * v, acc[p][v]);          \
    }
LP_MARGINS_TILE(margins512_tile, "avx512f", __m512d, 8, _mm512_loadu_pd, _mm512_storeu_pd, _mm512_fmadd_pd,
                _mm512_set1_pd)
// The last problems' lanes (fewer than 8: `lanes` masks them), P positions per call.
__attribute__((target("avx512f"))) static inline __attribute__((always_inline)) void margins512_tail(
    const double *kb, long kbs, long k0, long from, const long P, const int *klist, long kn, const double *delta,
    long dstride, long j, __mmask8 lanes, double *m, long ms) {
    __m512d acc[4];
    for (long p = 0; p < P; p++) acc[p] = _mm512_maskz_loadu_pd(lanes, m + (k0 + p - from) * ms + j);
    for (long q = 0; q < kn; q++) {
        long kq = klist[q];
        __m512d x = _mm512_maskz_loadu_pd(lanes, delta + kq * dstride + j);
        for (long p = 0; p < P; p++) acc[p] = _mm512_fmadd_pd(x, _mm512_set1_pd(kb[(k0 + p) * kbs + kq]), acc[p]);
    }
    for (long p = 0; p < P; p++) _mm512_mask_storeu_pd(m + (k0 + p - from) * ms + j, lanes, acc[p]);
}
LP_MARGINS_TILE(margins256_tile, "avx2,fma", __m256d, 4, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_fmadd_pd,
                _mm256_set1_pd)
#undef LP_MARGINS_TILE

// Positions four at a time (then one by one), problems in runs of 4·LANES, then LANES, then one by one.
#define LP_MARGINS_DRIVER(NAME, TARGET, TILE_FN, LANES, TAIL)                                                 \
    __attribute__((target(TARGET))) static void NAME(const double *kb, long kbs, long from, long to,          \
                                                     const int *klist, long kn, const double *delta,           \
                                                     long dstride, long problems, double *m, long ms) {        \
        long wide = problems / (4 * LANES) * (4 * LANES), narrow = problems / LANES * LANES;                  \
        long k = from;                                                                                        \
        for (; k + 4 <= to; k += 4) {                                                                         \
            for (long j = 0; j < wide; j += 4 * LANES)                                                        \
                TILE_FN(kb, kbs, k, from, 4, klist, kn, delta, dstride, j, 4, m, ms);                         \
            for (long j = wide; j < narrow; j += LANES)                                                       \
                TILE_FN(kb, kbs, k, from, 4, klist, kn, delta, dstride, j, 1, m, ms);                         \
        }                                                                                                     \
        for (; k < to; k++) {                                                                                 \
            for (long j = 0; j < wide; j += 4 * LANES)                                                        \
                TILE_FN(kb, kbs, k, from, 1, klist, kn, delta, dstride, j, 4, m, ms);                         \
            for (long j = wide; j < narrow; j += LANES)                                                       \
                TILE_FN(kb, kbs, k, from, 1, klist, kn, delta, dstride, j, 1, m, ms);                         \
        }                                                                                                     \
        if (narrow < problems) TAIL(kb, kbs, from, to, klist, kn, delta, dstride, narrow, problems, m, ms);   \
    }
// The problems after the last whole vector: one masked vector (AVX-512) or one by one.
__attribute__((target("avx512f"))) static void margins512_rest(const double *kb, long kbs, long from, long to,
                                                               const int *klist, long kn, const double *delta,
                                                               long dstride, long j, long problems, double *m,
                                                               long ms) {
    __mmask8 lanes = (__mmask8)((1u << (problems - j)) - 1);
    long k = from;
    for (; k + 4 <= to; k += 4) margins512_tail(kb, kbs, k, from, 4, klist, kn, delta, dstride, j, lanes, m, ms);
    for (; k < to; k++) margins512_tail(kb, kbs, k, from, 1, klist, kn, delta, dstride, j, lanes, m, ms);
}
static void margins_rest(const double *kb, long kbs, long from, long to, const int *klist, long kn,
                         const double *delta, long dstride, long j, long problems, double *m, long ms) {
    margins_generic(kb, kbs, from, to, klist, kn, delta + j, dstride, problems - j, m + j, ms);
}
LP_MARGINS_DRIVER(margins_avx512, "avx512f", margins512_tile, 8, margins512_rest)
LP_MARGINS_DRIVER(margins_avx2, "avx2,fma", margins256_tile, 4, margins_rest)
#undef LP_MARGINS_DRIVER
#endif

// MARK: - Block update of one job (≤ MAX_ROWS problems of a group) over one tile of TILE columns
//
// u_i[c] = fma(delta[k·dstride + cols[i]], panel[k·TILE + c], u_i[c]) for k in klist, in order.

static long tile_generic(const float *panel, long kstride, long available, const int *klist, long kn,
                         const double *delta, long dstride, const long *cols, long rowsCount, double *const *u,
                         long ustride) {
    (void)kstride;
    (void)available;
    (void)ustride;
    for (long i = 0; i < rowsCount; i++) {
        double acc[TILE];
        double *ui = u[i];
        for (long c = 0; c < TILE; c++) acc[c] = ui[c];
        for (long q = 0; q < kn; q++) {
            long k = klist[q];
            double d = delta[k * dstride + cols[i]];
            const float *x = panel + k * TILE;
            for (long c = 0; c < TILE; c++) acc[c] = fma(d, (double)x[c], acc[c]);
        }
        for (long c = 0; c < TILE; c++) ui[c] = acc[c];
    }
    return 1;
}

#ifdef LP_X86
// AVX2: 16 columns are 4 registers; three problems at a time keep 12 accumulators + 4 loads in
// the 16 registers.
__attribute__((target("avx2,fma"))) static inline __attribute__((always_inline)) void
tile_avx2_rows(const float *panel, const int *klist, long kn, const double *delta, long dstride, const long *cols,
               long mr, double *const *u) {
    __m256d acc[3][4];
    for (long i = 0; i < mr; i++)
        for (long v = 0; v < 4; v++) acc[i][v] = _mm256_loadu_pd(u[i] + 4 * v);
    for (long q = 0; q < kn; q++) {
        long k = klist[q];
        const float *x = panel + k * TILE;
        __m256d x0 = _mm256_cvtps_pd(_mm_loadu_ps(x)), x1 = _mm256_cvtps_pd(_mm_loadu_ps(x + 4));
        __m256d x2 = _mm256_cvtps_pd(_mm_loadu_ps(x + 8)), x3 = _mm256_cvtps_pd(_mm_loadu_ps(x + 12));
        const double *d = delta + k * dstride;
        for (long i = 0; i < mr; i++) {
            __m256d di = _mm256_set1_pd(d[cols[i]]);
            acc[i][0] = _mm256_fmadd_pd(di, x0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_pd(di, x1, acc[i][1]);
            acc[i][2] = _mm256_fmadd_pd(di, x2, acc[i][2]);
            acc[i][3] = _mm256_fmadd_pd(di, x3, acc[i][3]);
        }
    }
    for (long i = 0; i < mr; i++)
        for (long v = 0; v < 4; v++) _mm256_storeu_pd(u[i] + 4 * v, acc[i][v]);
}

__attribute__((target("avx2,fma")))
static long tile_avx2(const float *panel, long kstride, long available, const int *klist, long kn,
                      const double *delta, long dstride, const long *cols, long rowsCount, double *const *u,
                      long ustride) {
    (void)kstride;
    (void)available;
    (void)ustride;
    long i = 0;
    for (; i + 3 <= rowsCount; i += 3) tile_avx2_rows(panel, klist, kn, delta, dstride, cols + i, 3, u + i);
    if (rowsCount - i == 2) tile_avx2_rows(panel, klist, kn, delta, dstride, cols + i, 2, u + i);
    if (rowsCount - i == 1) tile_avx2_rows(panel, klist, kn, delta, dstride, cols + i, 1, u + i);
    return 1;
}

// AVX-512: a tile's 16 columns are 2 registers. A call updates `mr` problems over `w` consecutive
// tiles with mr·w ≤ 12 (at most 24 accumulators, named so that they stay in registers): several
// problems share each load of the panel, and every call has at least 8 independent accumulation
// chains (four problems take two tiles: 16 chains rather than 8 hide the FMA latency). A whole
// group of up to 12 problems (the 11 costs of a (class, fold)) shares one pass over the panel.
#define LP_UNIT_LOAD(i)                                                                                       \
    __m512d a##i##0 = _mm512_setzero_pd(), a##i##1 = _mm512_setzero_pd();                                   \
    if (units > i) {                                                                                          \
        a##i##0 = _mm512_loadu_pd(u[(i) / w] + ((i) % w) * ustride);                                          \
        a##i##1 = _mm512_loadu_pd(u[(i) / w] + ((i) % w) * ustride + 8);                                      \
    }
#define LP_TILE_LOAD(t)                                                                                       \
    __m512d x##t##0 = _mm512_setzero_pd(), x##t##1 = _mm512_setzero_pd();                                   \
    if (w > t) {                                                                                              \
        x##t##0 = _mm512_cvtps_pd(_mm256_loadu_ps(panel + (t) * kstride + k * TILE));                         \
        x##t##1 = _mm512_cvtps_pd(_mm256_loadu_ps(panel + (t) * kstride + k * TILE + 8));                     \
    }
#define LP_ROW_BROADCAST(r) __m512d b##r = mr > r ? _mm512_set1_pd(delta[off + cols[r]]) : _mm512_setzero_pd();
#define LP_ROW_PICK(i)                                                                                        \
    ((i) / w == 0    ? b0                                                                                     \
     : (i) / w == 1  ? b1                                                                                     \
     : (i) / w == 2  ? b2                                                                                     \
     : (i) / w == 3  ? b3                                                                                     \
     : (i) / w == 4  ? b4                                                                                     \
     : (i) / w == 5  ? b5                                                                                     \
     : (i) / w == 6  ? b6                                                                                     \
     : (i) / w == 7  ? b7                                                                                     \
     : (i) / w == 8  ? b8                                                                                     \
     : (i) / w == 9  ? b9                                                                                     \
     : (i) / w == 10 ? b10                                                                                    \
                     : b11)
#define LP_UNIT_STORE(i)                                                                                      \
    if (units > i) {                                                                                          \
        _mm512_storeu_pd(u[(i) / w] + ((i) % w) * ustride, a##i##0);                                          \
        _mm512_storeu_pd(u[(i) / w] + ((i) % w) * ustride + 8, a##i##1);                                      \
    }

__attribute__((target("avx512f"))) static inline __attribute__((always_inline)) void
tile_avx512_block(const float *panel, long kstride, const int *klist, long kn, const double *delta, long dstride,
                  const long *cols, const long mr, const long w, double *const *u, long ustride) {
    const long units = mr * w;
    LP_UNIT_LOAD(0) LP_UNIT_LOAD(1) LP_UNIT_LOAD(2) LP_UNIT_LOAD(3)
    LP_UNIT_LOAD(4) LP_UNIT_LOAD(5) LP_UNIT_LOAD(6) LP_UNIT_LOAD(7)
    LP_UNIT_LOAD(8) LP_UNIT_LOAD(9) LP_UNIT_LOAD(10) LP_UNIT_LOAD(11)
    for (long q = 0; q < kn; q++) {
        long k = klist[q];
        long off = k * dstride;
        LP_TILE_LOAD(0) LP_TILE_LOAD(1) LP_TILE_LOAD(2) LP_TILE_LOAD(3)
        LP_ROW_BROADCAST(0) LP_ROW_BROADCAST(1) LP_ROW_BROADCAST(2) LP_ROW_BROADCAST(3)
        LP_ROW_BROADCAST(4) LP_ROW_BROADCAST(5) LP_ROW_BROADCAST(6) LP_ROW_BROADCAST(7)
        LP_ROW_BROADCAST(8) LP_ROW_BROADCAST(9) LP_ROW_BROADCAST(10) LP_ROW_BROADCAST(11)
#define LP_FMA2(i, X0, X1)                                                                                    \
    if (units > i) {                                                                                          \
        a##i##0 = _mm512_fmadd_pd(LP_ROW_PICK(i), X0, a##i##0);                                               \
        a##i##1 = _mm512_fmadd_pd(LP_ROW_PICK(i), X1, a##i##1);                                               \
    }
#define LP_FMA_UNIT(i)                                                                                        \
    if ((i) % w == 0) { LP_FMA2(i, x00, x01) }                                                                \
    else if ((i) % w == 1) { LP_FMA2(i, x10, x11) }                                                           \
    else if ((i) % w == 2) { LP_FMA2(i, x20, x21) }                                                           \
    else { LP_FMA2(i, x30, x31) }
        LP_FMA_UNIT(0) LP_FMA_UNIT(1) LP_FMA_UNIT(2) LP_FMA_UNIT(3)
        LP_FMA_UNIT(4) LP_FMA_UNIT(5) LP_FMA_UNIT(6) LP_FMA_UNIT(7)
        LP_FMA_UNIT(8) LP_FMA_UNIT(9) LP_FMA_UNIT(10) LP_FMA_UNIT(11)
#undef LP_FMA_UNIT
#undef LP_FMA2
    }
    LP_UNIT_STORE(0) LP_UNIT_STORE(1) LP_UNIT_STORE(2) LP_UNIT_STORE(3)
    LP_UNIT_STORE(4) LP_UNIT_STORE(5) LP_UNIT_STORE(6) LP_UNIT_STORE(7)
    LP_UNIT_STORE(8) LP_UNIT_STORE(9) LP_UNIT_STORE(10) LP_UNIT_STORE(11)
}
#undef LP_UNIT_LOAD
#undef LP_TILE_LOAD
#undef LP_ROW_BROADCAST
#undef LP_ROW_PICK
#undef LP_UNIT_STORE

// Tiles per call for `mr` problems (at most `available` consecutive ones).
static inline long tile_width(long mr, long available) {
    long w = mr >= 5 ? 1 : mr >= 3 ? 2 : mr == 2 ? 3 : 4;
    return w < available ? w : available;
}

__attribute__((target("avx512f")))
static long tile_avx512(const float *panel, long kstride, long available, const int *klist, long kn,
                        const double *delta, long dstride, const long *cols, long mr, double *const *u,
                        long ustride) {
    long w = tile_width(mr, available);
#define LP_CASE(M, W)                                                                                         \
    if (mr == M && w == W) {                                                                                  \
        tile_avx512_block(panel, kstride, klist, kn, delta, dstride, cols, M, W, u, ustride);                        \
        return W;                                                                                             \
    }
    LP_CASE(12, 1) LP_CASE(11, 1) LP_CASE(10, 1) LP_CASE(9, 1) LP_CASE(8, 1) LP_CASE(7, 1)
    LP_CASE(6, 1) LP_CASE(5, 1) LP_CASE(4, 2) LP_CASE(4, 1)
    LP_CASE(3, 2) LP_CASE(3, 1)
    LP_CASE(2, 3) LP_CASE(2, 2) LP_CASE(2, 1)
    LP_CASE(1, 4) LP_CASE(1, 3) LP_CASE(1, 2) LP_CASE(1, 1)
#undef LP_CASE
    return 0;
}
#endif

// Updates `rows` problems over 1..available consecutive tiles (panel tiles kstride apart, a
// problem's decision values of consecutive tiles ustride apart); returns how many tiles it did.
typedef long (*tile_fn)(const float *, long, long, const int *, long, const double *, long, const long *, long,
                        double *const *, long);

// Whether `tile` (from `pick`) is the AVX-512 kernel, i.e. the level in use is 2.
static inline int is_avx512(tile_fn tile) {
#ifdef LP_X86
    return tile == tile_avx512;
#else
    (void)tile;
    return 0;
#endif
}

// Tiles per call of the kernel `tile` for `mr` problems with `available` tiles left.
static inline long width(tile_fn tile, long mr, long available) {
#ifdef LP_X86
    if (is_avx512(tile)) return tile_width(mr, available);
#endif
    (void)mr, (void)available;
    return 1;
}

static void pick(int level, margins_fn *m, tile_fn *t) {
    int usable = lp_svm_kernel_level();
    if (level < 0 || level > usable) level = usable;
    *m = margins_generic;
    *t = tile_generic;
#ifdef LP_X86
    if (level == 2) { *m = margins_avx512; *t = tile_avx512; }
    if (level == 1) { *m = margins_avx2; *t = tile_avx2; }
#endif
}

void lp_lockstep_margins(int level, const double *kb, long kbstride, long from, long to, const int *klist, long kn,
                         const double *delta, long dstride, long problems, double *m, long mstride) {
    margins_fn fn;
    tile_fn t;
    pick(level, &fn, &t);
    fn(kb, kbstride, from, to, klist, kn, delta, dstride, problems, m, mstride);
}

// The Gram lines of the next column chunk's panel, loaded into L2 a few per kernel call while the
// jobs run over this chunk (the panel copy then reads L2 instead of memory).
typedef struct {
    const float *gram;
    long stride;
    const int *rows;
    const int *positions;  // NULL: rows[0..count)
    long count;      // positions (rows) to load
    long from;       // first column
    long lines;      // cache lines per row
    long q, line;    // next row (index into positions) and line
    long perTile;    // lines per tile of kernel work
} ahead_plan;

static inline void ahead_step(ahead_plan *a, long budget) {
    while (budget-- > 0 && a->q < a->count) {
        long k = a->positions ? a->positions[a->q] : a->q;
        const char *row = (const char *)(a->gram + (long)a->rows[k] * a->stride + a->from);
        __builtin_prefetch(row + a->line * 64, 0, 2);
        if (++a->line == a->lines) {
            a->line = 0;
            a->q++;
        }
    }
}

// One job over the tiles [from, to) of the chunk that starts at tile `first`: each run of its
// tiles in calls of up to the kernel's width.
static void update_tiles(tile_fn tile, const float *panel, long kstride, long first, long from, long to,
                         const unsigned char *mask, const int *klist, long kn, const double *delta, long dstride,
                         const long *cols, long rowsCount, double *const *values, long ustride, ahead_plan *ahead) {
    long t = from;
    while (t < to) {
        if (!mask[first + t]) {
            t++;
            continue;
        }
        long end = t + 1;
        while (end < to && mask[first + end]) end++;
        while (t < end) {
            double *u[MAX_ROWS];
            for (long i = 0; i < rowsCount; i++) u[i] = values[i] + (first + t) * ustride;
            // The next call's decision values (a tile per problem is two lines, the problem's next
            // tile a whole tile stride away) start loading while this call computes.
            long next = t + width(tile, rowsCount, end - t);
            for (long n = next; n < next + 2 && n < end; n++)
                for (long i = 0; i < rowsCount; i++) {
                    const char *line = (const char *)(values[i] + (first + n) * ustride);
                    __builtin_prefetch(line);
                    __builtin_prefetch(line + 64);
                }
            long done = tile(panel + t * kstride * TILE, kstride * TILE, end - t, klist, kn, delta, dstride, cols,
                             rowsCount, u, ustride);
            ahead_step(ahead, done * ahead->perTile);
            t += done;
        }
    }
}

#ifdef LP_X86
// job_klist for a job whose columns are consecutive (≤ 16): one or two masked compares per position.
__attribute__((target("avx512f"))) static long job_klist_avx512(const double *delta, long dstride, long count,
                                                                long col, long rowsCount, int *klist) {
    long low = rowsCount < 8 ? rowsCount : 8;
    __mmask8 lanes = (__mmask8)((1u << low) - 1), high = (__mmask8)((1u << (rowsCount - low)) - 1);
    long kn = 0;
    for (long k = 0; k < count; k++) {
        const double *d = delta + k * dstride + col;
        __mmask8 any = _mm512_mask_cmp_pd_mask(lanes, _mm512_maskz_loadu_pd(lanes, d), _mm512_setzero_pd(),
                                               _CMP_NEQ_UQ);
        if (high)
            any |= _mm512_mask_cmp_pd_mask(high, _mm512_maskz_loadu_pd(high, d + 8), _mm512_setzero_pd(),
                                           _CMP_NEQ_UQ);
        if (any) klist[kn++] = (int)k;
    }
    return kn;
}
#endif

// Positions where some problem of the job made an update (the others leave u unchanged); `wide`:
// the level in use is 2 (AVX-512).
static long job_klist(int wide, const double *delta, long dstride, long count, const long *cols, long rowsCount,
                      int *klist) {
#ifdef LP_X86
    int consecutive = rowsCount > 0 && rowsCount <= 16;
    for (long i = 1; i < rowsCount; i++) consecutive &= cols[i] == cols[0] + i;
    if (wide && consecutive) return job_klist_avx512(delta, dstride, count, cols[0], rowsCount, klist);
#endif
    (void)wide;
    long kn = 0;
    for (long k = 0; k < count; k++) {
        const double *d = delta + k * dstride;
        int any = 0;
        for (long i = 0; i < rowsCount; i++) any |= d[cols[i]] != 0;
        if (any) klist[kn++] = (int)k;
    }
    return kn;
}

void lp_lockstep_update(int level, const float *gram, long stride, long columns, long tileFrom, long tileTo,
                        const int *rows, long count, const double *delta, long dstride, long jobs,
                        const long *jobCols, const long *jobRows, double *const *jobValues, long ustride,
                        const unsigned char *const *jobTiles, long chunkTiles, float *panel, int *klists,
                        const int *nextRows, long nextCount) {
    margins_fn m;
    tile_fn tile;
    pick(level, &m, &tile);
    long tiles = (columns + TILE - 1) / TILE;
    if (tileTo > tiles) tileTo = tiles;
    // One position more than the block per panel tile: the tiles of a row, written one after
    // another, then fall in different L1 sets (count·64 bytes apart they would share one).
    long kstride = count + 1;
    long *kn = (long *)__builtin_alloca(sizeof(long) * (jobs > 0 ? jobs : 1));
    // The positions some job updates: only their rows go into the panel.
    int *needed = (int *)__builtin_alloca(sizeof(int) * (count > 0 ? count : 1));
    unsigned char *flag = (unsigned char *)__builtin_alloca(count > 0 ? count : 1);
    memset(flag, 0, count > 0 ? count : 1);
    for (long j = 0; j < jobs; j++) {
        kn[j] = job_klist(is_avx512(tile), delta, dstride, count, jobCols + j * MAX_ROWS, jobRows[j],
                          klists + j * count);
        for (long q = 0; q < kn[j]; q++) flag[klists[j * count + q]] = 1;
    }
    long neededCount = 0;
    for (long k = 0; k < count; k++)
        if (flag[k]) needed[neededCount++] = (int)k;
    long working = 0;
    for (long j = 0; j < jobs; j++) working += kn[j] > 0;
    for (long first = tileFrom; first < tileTo; first += chunkTiles) {
        long chunk = tileTo - first < chunkTiles ? tileTo - first : chunkTiles;
        lp_lockstep_panel(gram, stride, columns, rows, needed, neededCount, first, chunk, kstride, panel);
        // The next chunk's lines, spread over this chunk's kernel calls.
        // After the last chunk, the first of the next block (all its rows).
        long next = first + chunk;
        int last = next >= tileTo;
        if (last) next = tileFrom;
        long nextChunk = tileTo - next < chunkTiles ? tileTo - next : chunkTiles;
        long valid = columns - next * TILE < nextChunk * TILE ? columns - next * TILE : nextChunk * TILE;
        ahead_plan ahead = {gram, stride, last ? nextRows : rows, last ? NULL : needed,
                            last ? nextCount : neededCount, next * TILE, (valid * 4 + 63) / 64, 0, 0, 0};
        if (working > 0) ahead.perTile = (ahead.count * ahead.lines + working * chunk - 1) / (working * chunk);
        for (long j = 0; j < jobs; j++) {
            if (kn[j] == 0) continue;
            update_tiles(tile, panel, kstride, first, 0, chunk, jobTiles[j], klists + j * count, kn[j], delta,
                         dstride, jobCols + j * MAX_ROWS, jobRows[j], jobValues + j * MAX_ROWS, ustride, &ahead);
        }
    }
}

// MARK: - Barrier (the threads of one lockstep meet twice per block)

void lp_barrier_init(lp_barrier *b, long count) {
    b->count = count;
    b->arrived = 0;
    b->generation = 0;
}

void lp_barrier_wait(lp_barrier *b) {
    long generation = __atomic_load_n(&b->generation, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&b->arrived, 1, __ATOMIC_ACQ_REL) == b->count) {
        __atomic_store_n(&b->arrived, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&b->generation, generation + 1, __ATOMIC_RELEASE);
        return;
    }
    long spins = 0;
    while (__atomic_load_n(&b->generation, __ATOMIC_ACQUIRE) == generation) {
        // Spin briefly (the other thread is usually microseconds away), then yield the core.
        if (++spins > 20000) sched_yield();
#ifdef LP_X86
        else _mm_pause();
#endif
    }
}

// MARK: - Memory for the lockstep state and the Gram matrix

void *lp_huge_alloc(unsigned long bytes) {
#if defined(__linux__)
    if (bytes >= (2ul << 20)) {
        void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return NULL;
        (void)madvise(p, bytes, MADV_HUGEPAGE);  // a hint: without it the memory is still usable
        return p;
    }
#endif
    return calloc(1, bytes > 0 ? bytes : 1);
}

void lp_huge_free(void *p, unsigned long bytes) {
    if (p == NULL) return;
#if defined(__linux__)
    if (bytes >= (2ul << 20)) {
        munmap(p, bytes);
        return;
    }
#endif
    free(p);
}
