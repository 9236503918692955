#ifndef CLINPROBE_HDF5_SHIM_H
#define CLINPROBE_HDF5_SHIM_H
// HDF5's "constants" are macros expanding to H5open() plus a runtime global, which Swift
// cannot import; these accessors wrap them. The error-stack helpers collect HDF5's own
// messages so the Swift wrapper can put them in a typed error.
#include <hdf5.h>
#include <string.h>
#include <stdio.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

static inline hid_t lp_H5T_NATIVE_FLOAT(void)  { return H5T_NATIVE_FLOAT; }
static inline hid_t lp_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t lp_H5T_NATIVE_INT8(void)   { return H5T_NATIVE_INT8; }
static inline hid_t lp_H5T_NATIVE_UINT8(void)  { return H5T_NATIVE_UINT8; }
static inline hid_t lp_H5T_NATIVE_INT16(void)  { return H5T_NATIVE_INT16; }
static inline hid_t lp_H5T_NATIVE_UINT16(void) { return H5T_NATIVE_UINT16; }
static inline hid_t lp_H5T_NATIVE_INT32(void)  { return H5T_NATIVE_INT32; }
static inline hid_t lp_H5T_NATIVE_INT64(void)  { return H5T_NATIVE_INT64; }
static inline hid_t lp_H5T_STD_I64LE(void)     { return H5T_STD_I64LE; }
static inline hid_t lp_H5T_IEEE_F32LE(void)    { return H5T_IEEE_F32LE; }
static inline hid_t lp_H5T_C_S1(void)          { return H5T_C_S1; }
static inline hid_t lp_H5P_DEFAULT(void)       { return H5P_DEFAULT; }
static inline hid_t lp_H5P_DATASET_CREATE(void){ return H5P_DATASET_CREATE; }
static inline hid_t lp_H5P_DATASET_ACCESS(void){ return H5P_DATASET_ACCESS; }
static inline hid_t lp_H5P_FILE_ACCESS(void)   { return H5P_FILE_ACCESS; }
static inline hid_t lp_H5P_LINK_CREATE(void)   { return H5P_LINK_CREATE; }
static inline hid_t lp_H5S_ALL(void)           { return H5S_ALL; }
static inline hid_t lp_H5E_DEFAULT(void)       { return H5E_DEFAULT; }
static inline unsigned lp_H5F_ACC_TRUNC(void)  { return H5F_ACC_TRUNC; }
static inline unsigned lp_H5F_ACC_EXCL(void)   { return H5F_ACC_EXCL; }
static inline unsigned lp_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned lp_H5F_ACC_RDWR(void)   { return H5F_ACC_RDWR; }
static inline hsize_t lp_H5S_UNLIMITED(void)   { return H5S_UNLIMITED; }
static inline unsigned lp_H5F_OBJ_ALL(void)    { return H5F_OBJ_ALL; }
static inline size_t lp_H5T_VARIABLE(void)     { return H5T_VARIABLE; }

/// Turns off HDF5's automatic printing of error stacks (we report them ourselves).
static inline void lp_h5_silence(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* glibc: blocks below `mmap_threshold` bytes come from the heap, and up to `trim_threshold` bytes of
   free heap are kept rather than returned (see HDF5Library.keepChunkBuffersOnTheHeap). */
static inline void lp_malloc_thresholds(int mmap_threshold, int trim_threshold) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, mmap_threshold);
    mallopt(M_TRIM_THRESHOLD, trim_threshold);
#endif
}

typedef struct { char *buf; size_t cap; size_t len; } lp_h5_errbuf;

static herr_t lp_h5_walk_cb(unsigned n, const H5E_error2_t *err, void *data) {
    lp_h5_errbuf *b = (lp_h5_errbuf *)data;
    if (b->len + 4 >= b->cap) return 0;
    const char *fn = err->func_name ? err->func_name : "?";
    const char *desc = err->desc ? err->desc : "";
    int w = snprintf(b->buf + b->len, b->cap - b->len, "%s%s(): %s", b->len ? "; " : "", fn, desc);
    if (w > 0) { b->len += (size_t)w; if (b->len >= b->cap) b->len = b->cap - 1; }
    (void)n;
    return 0;
}

/// Writes the current thread's HDF5 error stack (innermost first) into `buf` and clears it.
static inline size_t lp_h5_error_message(char *buf, size_t cap) {
    lp_h5_errbuf b = { buf, cap, 0 };
    if (cap) buf[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, lp_h5_walk_cb, &b);
    H5Eclear2(H5E_DEFAULT);
    return b.len;
}
#endif
