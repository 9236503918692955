#ifndef CLINPROBE_PNG_SHIM_H
#define CLINPROBE_PNG_SHIM_H
// libpng's simplified `png_image` API only: it does its setjmp internally, so no longjmp
// ever crosses Swift frames. Function-like macros and the fixed char[64] message get
// accessors here.
#include <png.h>
#include <string.h>
#include <zlib.h>
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
/// CRC-32 of a chunk's type and data (PNG's chunk checksum).
static inline unsigned long lp_png_chunk_crc(const unsigned char *typeAndData, size_t count) {
    return crc32(crc32(0L, Z_NULL, 0), typeAndData, (uInt)count);
}
/// Inflates a zlib stream only to measure it: the bytes it yields when at most `cap`, `cap + 1`
/// when more, -1 when the stream is broken (a truncated stream is not an error, as in Python's
/// `zlib.decompressobj().decompress`).
static inline long long lp_png_inflated_size(const unsigned char *data, size_t count, size_t cap) {
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit(&z) != Z_OK) return -1;
    unsigned char scratch[16384];
    size_t total = 0;
    long long result = 0;
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)count;
    for (;;) {
        z.next_out = scratch;
        z.avail_out = sizeof(scratch);
        int rc = inflate(&z, Z_NO_FLUSH);
        total += sizeof(scratch) - z.avail_out;
        if (total > cap) { result = (long long)cap + 1; break; }
        if (rc == Z_STREAM_END || (rc == Z_BUF_ERROR && z.avail_in == 0)) { result = (long long)total; break; }
        if (rc != Z_OK) { result = -1; break; }
    }
    inflateEnd(&z);
    return result;
}
#endif
