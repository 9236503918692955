#ifndef LINPROBE_SVM_KERNELS_H
#define LINPROBE_SVM_KERNELS_H

/// Mixed-precision vector kernels for the SVM solver: float32 data, float64 accumulators.
///
/// Each kernel picks an AVX-512, AVX2+FMA or portable implementation once, at first use, from
/// the CPU it runs on (the package itself is compiled for baseline x86-64). The variants sum in
/// different orders, so results agree to rounding, not bit for bit, across CPUs.

#ifdef __cplusplus
extern "C" {
#endif

/// Σ x[i]·w[i] over n elements, accumulated in float64.
double lp_dot_f32_f64(const float *x, const double *w, long n);

/// y[i] += a·x[i] over n elements (float32 x, float64 y).
void lp_axpy_f32_f64(double a, const float *x, double *y, long n);

/// Σ x[i]² over n elements, accumulated in float64.
double lp_sumsq_f32(const float *x, long n);

/// Name of the implementation in use: "avx512", "avx2" or "generic".
const char *lp_svm_kernel_name(void);

#ifdef __cplusplus
}
#endif
#endif
