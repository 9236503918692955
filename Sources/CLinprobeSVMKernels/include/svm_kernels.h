#ifndef LINPROBE_SVM_KERNELS_H
#define LINPROBE_SVM_KERNELS_H

/// Mixed-precision vector kernels for the SVM solver: float32 data, float64 accumulators.
///
/// Each kernel picks an AVX-512, AVX2+FMA or portable implementation once, at first use, from
/// the CPU it runs on (the package itself is compiled for baseline x86-64). The dot and sum-of-squares
/// variants sum in different orders, so they agree to rounding, not bit for bit, across CPUs; the
/// axpy and lazy-update variants round once per element and update (fused multiply-add) and agree
/// bit for bit.

#ifdef __cplusplus
extern "C" {
#endif

/// Σ x[i]·w[i] over n elements, accumulated in float64.
double lp_dot_f32_f64(const float *x, const double *w, long n);

/// y[i] += a·x[i] over n elements (float32 x, float64 y).
void lp_axpy_f32_f64(double a, const float *x, double *y, long n);

/// Lazy updates of the Gram solver's decision values. A problem's pending updates are k = 0..count-1
/// (in the order they were made): Gram row cols[k] with coefficient deltas[k]. Both functions
/// apply them as fused multiply-adds in that order, exactly as `lp_axpy_f32_f64` would one update
/// after another, so a lazy solver's iterates equal the eager one's bit for bit.

/// u + Σ_k deltas[k]·row[cols[k]] (row = the visited Gram row; the matrix is symmetric).
double lp_gram_lazy_margin(double u, const float *row, const int *cols, const double *deltas, long count);

/// For every problem p < problems with counts[p] > 0: values[p·columns + j] for j < columns
/// receives its pending updates cols/deltas[p·stride + k], k < counts[p]. gram holds rows of
/// `columns` float32 entries.
void lp_gram_flush(const float *gram, long columns, double *values, long problems, const long *counts,
                   const int *cols, const double *deltas, long stride);

/// Σ x[i]² over n elements, accumulated in float64.
double lp_sumsq_f32(const float *x, long n);

/// The implementation in use: 2 AVX-512, 1 AVX2+FMA, 0 portable.
int lp_svm_kernel_level(void);

/// The axpy and lazy-update kernels of a given level (at most `lp_svm_kernel_level()`; a higher one
/// runs the level in use), for tests that compare the variants.
void lp_axpy_f32_f64_at(int level, double a, const float *x, double *y, long n);
double lp_gram_lazy_margin_at(int level, double u, const float *row, const int *cols, const double *deltas,
                              long count);
void lp_gram_flush_at(int level, const float *gram, long columns, double *values, long problems, const long *counts,
                      const int *cols, const double *deltas, long stride);

/// Lockstep Gram solver (many problems visiting the rows of one Gram matrix in one shared order).
/// Columns are updated in tiles of LP_LOCKSTEP_TILE; a job is at most LP_LOCKSTEP_MAX_JOB problems
/// of one group (same training rows). `level` picks the variant (-1: the one in use; a level above
/// the CPU's runs the one in use). Every variant applies u = fma(δ, K, u) per position in block
/// order, so all levels agree bit for bit with each other and with `lp_axpy_f32_f64` per update.
#define LP_LOCKSTEP_TILE 16
#define LP_LOCKSTEP_MAX_JOB 12
/// panel[t·kstride·TILE + k·TILE + c] = gram[rows[k]·stride + (firstTile + t)·TILE + c]
/// (0 at columns ≥ `columns`), for t < tiles and k in positions[0..count): the block's rows packed
/// tile by tile (the update kernels widen each element to float64 as they load it).
void lp_lockstep_panel(const float *gram, long stride, long columns, const int *rows, const int *positions, long count,
                       long firstTile, long tiles, long kstride, float *panel);
/// Entries of the block's Gram submatrix: kb[k·kbstride + p] = gram[rows[k]·stride + rows[p]] as
/// float64, for k in [from, to) and p in positions[0..count).
void lp_lockstep_block_gram(const float *gram, long stride, const int *rows, long from, long to, const int *positions,
                            long count, double *kb, long kbstride);
/// m[(k − from)·mstride + j] = fma(delta[klist[q]·dstride + j], kb[k·kbstride + klist[q]], ·) for
/// q = 0..kn−1 in order, for each position k in [from, to) and j < problems (register-blocked over
/// positions and problems; each chain in klist order at every level).
void lp_lockstep_margins(int level, const double *kb, long kbstride, long from, long to, const int *klist, long kn,
                         const double *delta, long dstride, long problems, double *m, long mstride);
/// The block update of every job: for job j, its jobRows[j] problems (delta columns
/// jobCols[j·MAX_JOB + i], decision values jobValues[j·MAX_JOB + i], the 16 of tile t at
/// jobValues[…] + t·ustride) receive fma(delta[k·dstride + col], gram[rows[k]·stride + c], ·) for
/// k < count in order, over the tiles t in [tileFrom, tileTo) with jobTiles[j][t] != 0.
/// panel: (count + 1)·chunkTiles·TILE floats; klists: jobs·count ints. While the jobs run over a
/// column chunk, the Gram lines of the next chunk's panel are prefetched; after the last chunk,
/// those of the first chunk for the next block's rows nextRows[0..nextCount) (a hint only).
void lp_lockstep_update(int level, const float *gram, long stride, long columns, long tileFrom, long tileTo,
                        const int *rows, long count, const double *delta, long dstride, long jobs,
                        const long *jobCols, const long *jobRows, double *const *jobValues, long ustride,
                        const unsigned char *const *jobTiles, long chunkTiles, float *panel, int *klists,
                        const int *nextRows, long nextCount);
/// Lockstep visits: the solver state of every problem, problem-major within each row. Bitsets hold
/// problem p of a row at byte p/8, bit p%8 (`maskBytes` bytes per row).
typedef struct {
    long problems;
    long maskBytes;
    /// α: [row·problems + p].
    double *alpha;
    /// Bitsets per row: variable not shrunk (and a training row of p's group); label +1.
    unsigned char *active;
    const unsigned char *positive;
    /// This sweep's running problems (one bitset).
    const unsigned char *running;
    /// Per problem, label −1 at [p] and +1 at [problems + p]: 1/(2C) (D_ii) and the upper bound.
    const double *diagonal;
    const double *upper;
    /// liblinear's shrinking bounds per problem (`ShrinkingRule`), and its count of active rows.
    const double *maxOld;
    const double *minOld;
    double *maxNew;
    double *minNew;
    long *activeCount;
} lp_lockstep_state;
/// Each running problem p in bytes [byteFrom, byteTo) of the bitsets visits `row` (Gram diagonal
/// `norm`): liblinear's step and shrinking rule with decision value margins[j], where j counts the
/// running problems of those bytes in order; coefficients[j] receives the update's coefficient
/// (α_new − α)·y, or 0 without one. Returns whether there was one. All levels agree bit for bit.
long lp_lockstep_visit(int level, const lp_lockstep_state *s, long row, double norm, long byteFrom, long byteTo,
                       const double *margins, double *coefficients);
/// Starts loading what a visit of `column` by the problems which[0..count) (running problems of
/// bytes [byteFrom, byteTo)) reads: their decision values (tile-major, `s->problems` problems), the
/// row's α of those bytes' problems and its bitset bytes.
void lp_lockstep_prefetch(const lp_lockstep_state *s, const double *values, long column, const long *which,
                          long count, long byteFrom, long byteTo);
/// Prefetches gram[row·stride + columns[i]] for i < count (a later visit's block submatrix entries).
void lp_lockstep_prefetch_gram(const float *gram, long stride, long row, const long *columns, long count);
/// out[j] = the decision value of problem which[j] at `column` (tile-major layout of `problems`).
void lp_lockstep_gather(const double *values, long problems, long column, const long *which, long count,
                        double *out);
/// A spinning barrier for `count` threads (each waits until all have arrived; reusable).
typedef struct {
    long count;
    long arrived;
    long generation;
} lp_barrier;
void lp_barrier_init(lp_barrier *b, long count);
void lp_barrier_wait(lp_barrier *b);
/// Zeroed memory for a large array read at scattered places: from 2 MiB up, on Linux, an anonymous
/// mapping marked for transparent huge pages (its 2 MiB-aligned stretches can get them: fewer TLB
/// misses), otherwise calloc; NULL when out of memory. Free with `lp_huge_free(p, bytes)`.
void *lp_huge_alloc(unsigned long bytes);
void lp_huge_free(void *p, unsigned long bytes);
/// Name of the implementation in use: "avx512", "avx2" or "generic".
const char *lp_svm_kernel_name(void);

#ifdef __cplusplus
}
#endif
#endif
