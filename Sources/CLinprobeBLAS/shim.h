#ifndef CLINPROBE_BLAS_SHIM_H
#define CLINPROBE_BLAS_SHIM_H
// OpenBLAS's CBLAS interface (Debian's openblas-pthread build; pkg-config "openblas").
#include <cblas.h>
#endif
