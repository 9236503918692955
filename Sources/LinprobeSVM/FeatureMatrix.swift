import CLinprobeSVMKernels
import Foundation
import LinprobeBLAS
import LinprobeCore
import LinprobeStore

/// One layer's rows held in memory as float32 (as stored; never a float64 copy), with the
/// per-row scale of VISSL's normalisation x ← x / (‖x‖₂ + 1e-5) kept aside in float64.
final class FeatureMatrix: @unchecked Sendable {
    let count: Int
    let dim: Int
    private let storage: UnsafeMutableBufferPointer<Float>
    /// The start of `storage` (allocated with at least one element).
    private let base: UnsafeMutablePointer<Float>
    /// 1/(‖x‖ + 1e-5) with normalisation, 1 without.
    let scale: [Double]
    /// ‖scale·x‖².
    let scaledSquaredNorm: [Double]
    /// `scale` as a raw pointer for the solver's inner loop (lives as long as the matrix).
    let scalePointer: UnsafePointer<Double>

    /// Reads a layer of a store (all rows, or the listed rows in that order) and checks that
    /// every value is finite.
    init(reader: FeatureStoreReader, layer: String, rows: [Int]? = nil, normalize: Bool) throws {
        let info = try reader.layer(layer)
        let n = rows?.count ?? reader.count
        count = n
        dim = info.dim
        let (total, overflow) = n.multipliedReportingOverflow(by: info.dim)
        guard !overflow else {
            throw LinprobeError(.unsupported, "\(reader.path): layer \(layer) is too large to hold in memory")
        }
        base = UnsafeMutablePointer<Float>.allocate(capacity: max(total, 1))
        storage = UnsafeMutableBufferPointer(start: base, count: max(total, 1))
        do {
            if let rows, let first = rows.first, rows.last == first + rows.count - 1,
                zip(rows, rows.dropFirst()).allSatisfy({ $0 + 1 == $1 })
            {
                try reader.readFeatures(
                    layer: layer, rows: first..<(first + rows.count),
                    into: UnsafeMutableBufferPointer(rebasing: storage[0..<total]))
            } else if let rows {
                // Read in blocks so the index list handed to HDF5 stays moderate.
                var start = 0
                while start < rows.count {
                    let end = min(rows.count, start + 4096)
                    let slice = UnsafeMutableBufferPointer(rebasing: storage[(start * dim)..<(end * dim)])
                    try reader.readFeatures(layer: layer, rows: Array(rows[start..<end]), into: slice)
                    start = end
                }
            } else if n > 0 {
                try reader.readFeatures(
                    layer: layer, rows: 0..<n, into: UnsafeMutableBufferPointer(rebasing: storage[0..<total]))
            }
        } catch {
            storage.deallocate()
            throw error
        }
        var scale = [Double](repeating: 1, count: n)
        var squared = [Double](repeating: 0, count: n)
        let d = dim

        for r in 0..<n {
            let p = base + r * d
            let ss = lp_sumsq_f32(p, d)
            if !ss.isFinite {
                let bad = (0..<d).first { !p[$0].isFinite } ?? 0
                let sourceRow = rows?[r] ?? r
                storage.deallocate()
                throw LinprobeError(
                    .corruptInput,
                    "\(reader.path): layer \(layer) row \(sourceRow) column \(bad) holds \(p[bad]) (NaN or Inf features); re-extract the store or drop the layer"
                )
            }
            if normalize {
                let s = 1 / (ss.squareRoot() + 1e-5)
                scale[r] = s
                squared[r] = ss * s * s
            } else {
                squared[r] = ss
            }
        }
        self.scale = scale
        self.scaledSquaredNorm = squared
        let sp = UnsafeMutablePointer<Double>.allocate(capacity: max(n, 1))
        sp.initialize(from: scale, count: n)
        scalePointer = UnsafePointer(sp)
    }

    deinit {
        storage.deallocate()
        scalePointer.deallocate()
    }

    @inline(__always) func row(_ r: Int) -> UnsafePointer<Float> { UnsafePointer(base + r * dim) }

    var bytes: Int { count * dim * MemoryLayout<Float>.size }
}

/// The matrix K̃ of inner products of the normalised rows with the bias feature appended:
/// K̃_ij = s_i s_j x_iᵀx_j + bias², stored as float32 (the solver accumulates in float64).
///
/// A sub-matrix may keep only its first `columns` columns (the training rows of a CV fold, put
/// first): the solver then updates decision values of the training rows only, and the held-out
/// rows' values are computed once at the end from their (truncated) rows.
final class GramMatrix: @unchecked Sendable {
    let count: Int
    /// Entries per stored row (`count` unless truncated).
    let columns: Int
    private let storage: UnsafeMutableBufferPointer<Float>
    /// The start of `storage` (allocated with at least one element).
    private let base: UnsafeMutablePointer<Float>
    /// Exact (float64) diagonal: ‖x̃_i‖² + bias².
    let diagonal: [Double]

    static func bytes(count: Int) -> Int { count * count * MemoryLayout<Float>.size }

    /// Builds K̃ for all rows of `features` with blocked SGEMM over the lower triangle, mirrored.
    init(features: FeatureMatrix, bias: Double) {
        let n = features.count
        let d = features.dim
        count = n
        columns = n
        base = HugePages.allocate(Float.self, count: n * n)
        storage = UnsafeMutableBufferPointer(start: base, count: max(n * n, 1))
        let k = base
        let x = features.row(0)
        let block = 1024
        var bi = 0
        while bi < n {
            let ib = min(block, n - bi)
            var bj = 0
            while bj <= bi {
                let jb = min(block, n - bj)
                BLAS.sgemm(
                    .none, .transpose, m: ib, n: jb, k: d, a: x + bi * d, lda: d, b: x + bj * d, ldb: d,
                    c: k + bi * n + bj, ldc: n)
                bj += block
            }
            bi += block
        }
        let s = features.scale
        let b2 = bias * bias
        for i in 0..<n {
            let si = s[i]
            let rowI = k + i * n
            for j in 0...i {
                let v = Float(Double(rowI[j]) * si * s[j] + b2)
                rowI[j] = v
                k[j * n + i] = v
            }
        }
        diagonal = (0..<n).map { features.scaledSquaredNorm[$0] + b2 }
    }

    /// The sub-matrix of `parent` on `rows` (in that order), keeping the columns of the first
    /// `columns` of them (all by default).
    init(parent: GramMatrix, rows: [Int], columns: Int? = nil) {
        let n = rows.count
        let m = columns ?? n
        precondition(m <= n && parent.columns == parent.count, "sub-matrix of a truncated Gram matrix")
        count = n
        self.columns = m
        base = HugePages.allocate(Float.self, count: n * m)
        storage = UnsafeMutableBufferPointer(start: base, count: max(n * m, 1))
        for (a, r) in rows.enumerated() {
            let src = parent.row(r)
            let dst = base + a * m
            for b in 0..<m { dst[b] = src[rows[b]] }
        }
        diagonal = rows.map { parent.diagonal[$0] }
    }

    deinit { HugePages.free(base, count: storage.count) }

    @inline(__always) func row(_ r: Int) -> UnsafePointer<Float> { UnsafePointer(base + r * columns) }
}
