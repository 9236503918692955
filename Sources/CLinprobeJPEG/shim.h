#ifndef CLINPROBE_JPEG_SHIM_H
#define CLINPROBE_JPEG_SHIM_H
// libjpeg-turbo's TurboJPEG v2 API (Debian 12 ships 2.1: tjDecompress2, tjGetErrorStr2).
#include <stdio.h>
#include <turbojpeg.h>
#if __has_include(<jconfig.h>)
#include <jconfig.h>
#endif
/// libjpeg-turbo's version as major*1000000 + minor*1000 + patch, or 0 when the headers do not say.
static inline int lp_jpeg_turbo_version(void) {
#ifdef LIBJPEG_TURBO_VERSION_NUMBER
    return LIBJPEG_TURBO_VERSION_NUMBER;
#else
    return 0;
#endif
}
#endif
