// Kernels of the lockstep Gram solver (see include/svm_kernels.h, "Lockstep").
//
// Every update of a decision value is fma(δ_k, K[r_k][c], u) for the block positions k in order,
// whatever the level: the variants agree bit for bit, and a zero δ leaves u unchanged (u is never
// −0), so running over positions where a problem made no update changes nothing.
#include "svm_kernels.h"

#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#define LP_X86 1
#include <immintrin.h>
#endif

enum { TILE = LP_LOCKSTEP_TILE, MAX_ROWS = LP_LOCKSTEP_MAX_JOB };

void lp_lockstep_panel(const float *gram, long stride, long columns, const int *rows, long count, long firstTile,
                       long tiles, long kstride, double *panel) {
    for (long t = 0; t < tiles; t++) {
        long from = (firstTile + t) * TILE;
        long valid = columns - from < TILE ? columns - from : TILE;
        double *out = panel + t * kstride * TILE;
        for (long k = 0; k < count; k++) {
            const float *src = gram + (long)rows[k] * stride + from;
            double *dst = out + k * TILE;
            long c = 0;
            for (; c < valid; c++) dst[c] = (double)src[c];
            for (; c < TILE; c++) dst[c] = 0;
        }
    }
}

// MARK: - Margins: out[j] += Σ_k delta[k·dstride + j]·row[rows[k]], k < count, in order of k

static void margins_generic(const float *row, const int *rows, long count, const double *delta, long dstride,
                            long problems, double *out) {
    for (long k = 0; k < count; k++) {
        double x = (double)row[rows[k]];
        const double *d = delta + k * dstride;
        for (long j = 0; j < problems; j++) out[j] = fma(d[j], x, out[j]);
    }
}

#ifdef LP_X86
__attribute__((target("avx2,fma")))
static void margins_avx2(const float *row, const int *rows, long count, const double *delta, long dstride,
                         long problems, double *out) {
    long j = 0;
    for (; j + 16 <= problems; j += 16) {
        __m256d a0 = _mm256_loadu_pd(out + j), a1 = _mm256_loadu_pd(out + j + 4);
        __m256d a2 = _mm256_loadu_pd(out + j + 8), a3 = _mm256_loadu_pd(out + j + 12);
        for (long k = 0; k < count; k++) {
            __m256d x = _mm256_set1_pd((double)row[rows[k]]);
            const double *d = delta + k * dstride + j;
            a0 = _mm256_fmadd_pd(_mm256_loadu_pd(d), x, a0);
            a1 = _mm256_fmadd_pd(_mm256_loadu_pd(d + 4), x, a1);
            a2 = _mm256_fmadd_pd(_mm256_loadu_pd(d + 8), x, a2);
            a3 = _mm256_fmadd_pd(_mm256_loadu_pd(d + 12), x, a3);
        }
        _mm256_storeu_pd(out + j, a0);
        _mm256_storeu_pd(out + j + 4, a1);
        _mm256_storeu_pd(out + j + 8, a2);
        _mm256_storeu_pd(out + j + 12, a3);
    }
    if (j < problems) margins_generic(row, rows, count, delta + j, dstride, problems - j, out + j);
}

__attribute__((target("avx512f")))
static void margins_avx512(const float *row, const int *rows, long count, const double *delta, long dstride,
                           long problems, double *out) {
    long j = 0;
    for (; j + 32 <= problems; j += 32) {
        __m512d a0 = _mm512_loadu_pd(out + j), a1 = _mm512_loadu_pd(out + j + 8);
        __m512d a2 = _mm512_loadu_pd(out + j + 16), a3 = _mm512_loadu_pd(out + j + 24);
        for (long k = 0; k < count; k++) {
            __m512d x = _mm512_set1_pd((double)row[rows[k]]);
            const double *d = delta + k * dstride + j;
            a0 = _mm512_fmadd_pd(_mm512_loadu_pd(d), x, a0);
            a1 = _mm512_fmadd_pd(_mm512_loadu_pd(d + 8), x, a1);
            a2 = _mm512_fmadd_pd(_mm512_loadu_pd(d + 16), x, a2);
            a3 = _mm512_fmadd_pd(_mm512_loadu_pd(d + 24), x, a3);
        }
        _mm512_storeu_pd(out + j, a0);
        _mm512_storeu_pd(out + j + 8, a1);
        _mm512_storeu_pd(out + j + 16, a2);
        _mm512_storeu_pd(out + j + 24, a3);
    }
    for (; j + 8 <= problems; j += 8) {
        __m512d a = _mm512_loadu_pd(out + j);
        for (long k = 0; k < count; k++) {
            __m512d x = _mm512_set1_pd((double)row[rows[k]]);
            a = _mm512_fmadd_pd(_mm512_loadu_pd(delta + k * dstride + j), x, a);
        }
        _mm512_storeu_pd(out + j, a);
    }
    if (j < problems) margins_generic(row, rows, count, delta + j, dstride, problems - j, out + j);
}
#endif

// MARK: - Block update of one job (≤ MAX_ROWS problems of a group) over one tile of TILE columns
//
// u_i[c] = fma(delta[k·dstride + cols[i]], panel[k·TILE + c], u_i[c]) for k in klist, in order.

static void tile_generic(const double *panel, const int *klist, long kn, const double *delta, long dstride,
                         const long *cols, long rowsCount, double *const *u) {
    for (long i = 0; i < rowsCount; i++) {
        double acc[TILE];
        double *ui = u[i];
        for (long c = 0; c < TILE; c++) acc[c] = ui[c];
        for (long q = 0; q < kn; q++) {
            long k = klist[q];
            double d = delta[k * dstride + cols[i]];
            const double *x = panel + k * TILE;
            for (long c = 0; c < TILE; c++) acc[c] = fma(d, x[c], acc[c]);
        }
        for (long c = 0; c < TILE; c++) ui[c] = acc[c];
    }
}

#ifdef LP_X86
// AVX2: 16 columns are 4 registers; three problems at a time keep 12 accumulators + 4 loads in
// the 16 registers.
__attribute__((target("avx2,fma"))) static inline __attribute__((always_inline)) void
tile_avx2_rows(const double *panel, const int *klist, long kn, const double *delta, long dstride, const long *cols,
               long mr, double *const *u) {
    __m256d acc[3][4];
    for (long i = 0; i < mr; i++)
        for (long v = 0; v < 4; v++) acc[i][v] = _mm256_loadu_pd(u[i] + 4 * v);
    for (long q = 0; q < kn; q++) {
        long k = klist[q];
        const double *x = panel + k * TILE;
        __m256d x0 = _mm256_loadu_pd(x), x1 = _mm256_loadu_pd(x + 4);
        __m256d x2 = _mm256_loadu_pd(x + 8), x3 = _mm256_loadu_pd(x + 12);
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
static void tile_avx2(const double *panel, const int *klist, long kn, const double *delta, long dstride,
                      const long *cols, long rowsCount, double *const *u) {
    long i = 0;
    for (; i + 3 <= rowsCount; i += 3) tile_avx2_rows(panel, klist, kn, delta, dstride, cols + i, 3, u + i);
    if (rowsCount - i == 2) tile_avx2_rows(panel, klist, kn, delta, dstride, cols + i, 2, u + i);
    if (rowsCount - i == 1) tile_avx2_rows(panel, klist, kn, delta, dstride, cols + i, 1, u + i);
}

// AVX-512: 16 columns are 2 registers; up to six problems (12 accumulators) share each load of
// the panel.
__attribute__((target("avx512f"))) static inline __attribute__((always_inline)) void
tile_avx512_rows(const double *panel, const int *klist, long kn, const double *delta, long dstride,
                 const long *cols, long mr, double *const *u) {
    __m512d a[6][2];
    for (long i = 0; i < mr; i++) {
        a[i][0] = _mm512_loadu_pd(u[i]);
        a[i][1] = _mm512_loadu_pd(u[i] + 8);
    }
    for (long q = 0; q < kn; q++) {
        long k = klist[q];
        const double *x = panel + k * TILE;
        __m512d x0 = _mm512_loadu_pd(x), x1 = _mm512_loadu_pd(x + 8);
        const double *d = delta + k * dstride;
        for (long i = 0; i < mr; i++) {
            __m512d di = _mm512_set1_pd(d[cols[i]]);
            a[i][0] = _mm512_fmadd_pd(di, x0, a[i][0]);
            a[i][1] = _mm512_fmadd_pd(di, x1, a[i][1]);
        }
    }
    for (long i = 0; i < mr; i++) {
        _mm512_storeu_pd(u[i], a[i][0]);
        _mm512_storeu_pd(u[i] + 8, a[i][1]);
    }
}

__attribute__((target("avx512f")))
static void tile_avx512(const double *panel, const int *klist, long kn, const double *delta, long dstride,
                        const long *cols, long rowsCount, double *const *u) {
    switch (rowsCount) {
    case 6: tile_avx512_rows(panel, klist, kn, delta, dstride, cols, 6, u); return;
    case 5: tile_avx512_rows(panel, klist, kn, delta, dstride, cols, 5, u); return;
    case 4: tile_avx512_rows(panel, klist, kn, delta, dstride, cols, 4, u); return;
    case 3: tile_avx512_rows(panel, klist, kn, delta, dstride, cols, 3, u); return;
    case 2: tile_avx512_rows(panel, klist, kn, delta, dstride, cols, 2, u); return;
    default: tile_avx512_rows(panel, klist, kn, delta, dstride, cols, 1, u); return;
    }
}
#endif

typedef void (*margins_fn)(const float *, const int *, long, const double *, long, long, double *);
typedef void (*tile_fn)(const double *, const int *, long, const double *, long, const long *, long,
                        double *const *);

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

void lp_lockstep_margins(int level, const float *row, const int *rows, long count, const double *delta, long dstride,
                         long problems, double *out) {
    margins_fn m;
    tile_fn t;
    pick(level, &m, &t);
    m(row, rows, count, delta, dstride, problems, out);
}

// Positions where some problem of the job made an update (the others leave u unchanged).
static long job_klist(const double *delta, long dstride, long count, const long *cols, long rowsCount, int *klist) {
    long kn = 0;
    for (long k = 0; k < count; k++) {
        const double *d = delta + k * dstride;
        int any = 0;
        for (long i = 0; i < rowsCount; i++) any |= d[cols[i]] != 0;
        if (any) klist[kn++] = (int)k;
    }
    return kn;
}

void lp_lockstep_update(int level, const float *gram, long stride, long columns, const int *rows, long count,
                        const double *delta, long dstride, long jobs, const long *jobCols, const long *jobRows,
                        double *const *jobValues, const unsigned char *const *jobTiles, long chunkTiles,
                        double *panel, int *klists) {
    margins_fn m;
    tile_fn tile;
    pick(level, &m, &tile);
    long tiles = (columns + TILE - 1) / TILE;
    long *kn = (long *)__builtin_alloca(sizeof(long) * (jobs > 0 ? jobs : 1));
    for (long j = 0; j < jobs; j++)
        kn[j] = job_klist(delta, dstride, count, jobCols + j * MAX_ROWS, jobRows[j], klists + j * count);
    for (long first = 0; first < tiles; first += chunkTiles) {
        long chunk = tiles - first < chunkTiles ? tiles - first : chunkTiles;
        lp_lockstep_panel(gram, stride, columns, rows, count, first, chunk, count, panel);
        for (long j = 0; j < jobs; j++) {
            if (kn[j] == 0) continue;
            const unsigned char *mask = jobTiles[j];
            double *const *values = jobValues + j * MAX_ROWS;
            for (long t = 0; t < chunk; t++) {
                if (!mask[first + t]) continue;
                double *u[MAX_ROWS];
                long col = (first + t) * TILE;
                for (long i = 0; i < jobRows[j]; i++) u[i] = values[i] + col;
                tile(panel + t * count * TILE, klists + j * count, kn[j], delta, dstride, jobCols + j * MAX_ROWS,
                     jobRows[j], u);
            }
        }
    }
}
