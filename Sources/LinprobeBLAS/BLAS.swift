internal import CLinprobeBLAS

/// Thin, checked access to OpenBLAS. Row-major only; shapes and buffer sizes are checked in
/// Swift before the call (OpenBLAS itself returns nothing and would read out of bounds).
public enum BLAS {
    public enum Transpose: Sendable { case none, transpose }

    /// C ← alpha · op(A) · op(B) + beta · C, all row-major.
    ///
    /// `op(A)` is M×K and `op(B)` is K×N; `lda`, `ldb`, `ldc` are the row strides of the stored
    /// matrices (defaults: tightly packed).
    public static func sgemm(
        _ transA: Transpose = .none, _ transB: Transpose = .none,
        m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int? = nil,
        b: UnsafePointer<Float>, ldb: Int? = nil,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil
    ) {
        let lda = lda ?? (transA == .none ? k : m)
        let ldb = ldb ?? (transB == .none ? n : k)
        let ldc = ldc ?? n
        precondition(m >= 0 && n >= 0 && k >= 0, "negative GEMM dimension")
        precondition(lda >= max(1, transA == .none ? k : m), "lda too small")
        precondition(ldb >= max(1, transB == .none ? n : k), "ldb too small")
        precondition(ldc >= max(1, n), "ldc too small")
        if m == 0 || n == 0 { return }
        cblas_sgemm(
            CblasRowMajor,
            transA == .none ? CblasNoTrans : CblasTrans,
            transB == .none ? CblasNoTrans : CblasTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Checked `sgemm` over buffers: verifies each buffer holds the matrix it is said to hold.
    public static func sgemm(
        _ transA: Transpose = .none, _ transB: Transpose = .none,
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafeBufferPointer<Float>, b: UnsafeBufferPointer<Float>,
        beta: Float = 0, c: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(a.count >= m * k, "A holds \(a.count) values, needs \(m * k)")
        precondition(b.count >= k * n, "B holds \(b.count) values, needs \(k * n)")
        precondition(c.count >= m * n, "C holds \(c.count) values, needs \(m * n)")
        guard m > 0, n > 0 else { return }
        if k == 0 {
            for i in 0..<(m * n) { c[i] = beta == 0 ? 0 : beta * c[i] }
            return
        }
        // m, n, k > 0 and the counts checked above: no buffer is empty.
        guard let pa = a.baseAddress, let pb = b.baseAddress, let pc = c.baseAddress else { return }
        sgemm(transA, transB, m: m, n: n, k: k, alpha: alpha, a: pa, b: pb, beta: beta, c: pc)
    }

    /// y ← alpha · op(A) · x + beta · y, row-major A of M×N.
    public static func sgemv(
        _ trans: Transpose = .none, m: Int, n: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int? = nil, x: UnsafePointer<Float>, beta: Float = 0,
        y: UnsafeMutablePointer<Float>
    ) {
        let lda = lda ?? n
        precondition(lda >= max(1, n), "lda too small")
        if m == 0 || n == 0 { return }
        cblas_sgemv(
            CblasRowMajor, trans == .none ? CblasNoTrans : CblasTrans, Int32(m), Int32(n), alpha, a,
            Int32(lda), x, 1, beta, y, 1)
    }

    /// Dot product of two float vectors.
    public static func sdot(_ n: Int, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) -> Float {
        n == 0 ? 0 : cblas_sdot(Int32(n), x, 1, y, 1)
    }

    /// y ← alpha · x + y.
    public static func saxpy(_ n: Int, alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        if n > 0 { cblas_saxpy(Int32(n), alpha, x, 1, y, 1) }
    }

    /// Number of threads OpenBLAS uses for one call.
    public static var threads: Int {
        Int(openblas_get_num_threads())
    }

    /// Sets the number of threads OpenBLAS uses inside one call. Linprobe chooses one level of
    /// parallelism per stage: either BLAS threads with a serial caller, or 1 here with the
    /// caller's own threads.
    public static func setThreads(_ n: Int) {
        openblas_set_num_threads(Int32(max(1, n)))
    }

    /// OpenBLAS build configuration, e.g. `OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ... Haswell MAX_THREADS=64`.
    public static var config: String {
        guard let p = openblas_get_config() else { return "unknown" }
        return String(cString: p)
    }

    /// The CPU kernel family OpenBLAS selected (fixed at load time by `OPENBLAS_CORETYPE`).
    public static var coreName: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }
}
