/* FP32 peak of this machine, measured: independent FMA chains on every requested core at
 * once (AVX-512 when built with -mavx512f, else AVX2+FMA). Prints the GFLOP/s of all cores
 * together, each core's rate taken over its own CPU time (so that other load on a shared
 * machine does not lower the figure). Built and run by Benchmarks/trunk/bench.sh. */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHAINS 12
#ifdef __AVX512F__
#define LANES 16
#else
#define LANES 8
#endif
static long iterations = 100000000;
static volatile float sink;
static double rates[64];

static void *run(void *arg) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
#ifdef __AVX512F__
    __m512 a[CHAINS], b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_ps((float)i);
    for (long n = 0; n < iterations; n++)
        for (int i = 0; i < CHAINS; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    float s = 0;
    for (int i = 0; i < CHAINS; i++) s += _mm512_reduce_add_ps(a[i]);
#else
    __m256 a[CHAINS], b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) a[i] = _mm256_set1_ps((float)i);
    for (long n = 0; n < iterations; n++)
        for (int i = 0; i < CHAINS; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
    float s = 0, t[8];
    for (int i = 0; i < CHAINS; i++) { _mm256_storeu_ps(t, a[i]); for (int j = 0; j < 8; j++) s += t[j]; }
#endif
    sink = s;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    double seconds = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    *(double *)arg = (double)iterations * CHAINS * LANES * 2 / seconds / 1e9;
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (argc > 2) iterations = atol(argv[2]);
    pthread_t tid[64];
    if (threads > 64) threads = 64;
    for (int i = 0; i < threads; i++) pthread_create(&tid[i], NULL, run, &rates[i]);
    double total = 0;
    for (int i = 0; i < threads; i++) { pthread_join(tid[i], NULL); total += rates[i]; }
    printf("%.1f\n", total);
    return 0;
}
