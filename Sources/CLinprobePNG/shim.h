#ifndef CLINPROBE_PNG_SHIM_H
#define CLINPROBE_PNG_SHIM_H
// libpng's simplified `png_image` API only: it does its setjmp internally, so no longjmp
// ever crosses Swift frames. Function-like macros and the fixed char[64] message get
// accessors here.
#include <png.h>
#include <string.h>
static inline size_t lp_png_image_size(const png_image *img) { return PNG_IMAGE_SIZE(*img); }
static inline int lp_png_image_failed(const png_image *img) { return PNG_IMAGE_FAILED(*img); }
static inline int lp_png_image_warning(const png_image *img) { return (img->warning_or_error & PNG_IMAGE_WARNING) != 0; }
static inline void lp_png_image_message(const png_image *img, char *out, size_t cap) {
    if (!cap) return;
    strncpy(out, img->message, cap - 1);
    out[cap - 1] = 0;
}
static inline void lp_png_image_init(png_image *img) {
    memset(img, 0, sizeof(*img));
    img->version = PNG_IMAGE_VERSION;
}
#endif
