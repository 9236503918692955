#ifndef LINPROBE_TRUNK_KERNEL_MACROS_H
#define LINPROBE_TRUNK_KERNEL_MACROS_H

// The convolution epilogue shared by the Winograd output transforms and `lp_bias_activation_f32`:
// v = relu?((x + bias) + residual), stored at dst, where ReLU maps x < 0 to 0 and keeps −0 and NaN.
// T is the float type (a GCC/Clang vector type or float), IT the matching integer type, RELU one
// of the two below; res and dst point to a T (res may be NULL).

#define LP_VRELU(T, IT, v) ((T)((IT)(v) & ~(IT)((v) < 0)))
#define LP_SRELU(T, IT, v) ((v) < 0 ? 0 : (v))

#define LP_FINISH(T, IT, RELU, x, b, res, relu, dst)                                                \
    do {                                                                                            \
        T v_ = (x) + (b);                                                                           \
        if (res) v_ += *(res);                                                                      \
        if (relu) v_ = RELU(T, IT, v_);                                                             \
        *(dst) = v_;                                                                                \
    } while (0)

// The n outputs of one tile at channel ch: out[k] + b (+ res[k][ch]), ReLU, into y[k][ch]; outputs
// whose y[k] is NULL (past the image edge) are skipped.
#define LP_STORE_TILE(T, IT, RELU, n, out, b, y, res, ch, relu)                                     \
    for (int k_ = 0; k_ < (n); k_++) {                                                              \
        if (!(y)[k_]) continue;                                                                     \
        LP_FINISH(T, IT, RELU, (out)[k_], (b), (res)[k_] ? (const T *)((res)[k_] + (ch)) : 0, (relu),  \
                  (T *)((y)[k_] + (ch)));                                                           \
    }

#endif
