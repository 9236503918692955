import Dispatch
import Foundation
import LinprobeBLAS
import LinprobeCore

/// The timing half of `ConvTuner`: every distinct layer shape, every algorithm its layer holds,
/// under every parallelism considered, on the real micro-batch; the min of a few repeats.
extension ConvTuner {
    struct MeasuredLayer {
        let key: ConvShapeKey
        let algorithm: ConvAlgorithm
        /// Whether the layer holds more than one algorithm.
        let choosable: Bool
        /// Seconds per image of each candidate (`<parallelism>/<algorithm>`).
        let timings: [String: Double]
    }

    struct Measurement {
        let parallelism: TrunkParallelism
        let layers: [MeasuredLayer]
        /// Only the shapes that had a choice.
        var choices: [ConvShapeKey: ConvAlgorithm] {
            Dictionary(
                layers.filter(\.choosable).map { ($0.key, $0.algorithm) },
                uniquingKeysWith: { a, _ in a })
        }
    }

    /// Repeats of each candidate when a shape's candidates are within `closeRatio` of each other
    /// after one run each (the minimum is kept); a clear winner is not timed again.
    static let repeats = 5
    static let closeRatio = 0.8

    /// A parallelism other than the first candidate (the static default) must be this much
    /// faster in total to be chosen. The totals count convolutions only, and BLAS threading leaves
    /// the rest of the network (pools, adds, taps) on one thread, so its real total is higher than
    /// its sum: on a 2-core Zen 4, BLAS threading summed ≥ 5 % below batch split while the whole
    /// ResNet-50 ran 23 % slower with it (19.8 against 24.4 images/s), and one noisy run was enough
    /// to cache that choice. Timings on a shared machine are noisy as well.
    static let switchMargin = 0.8

    static func measure(
        shapes: [(key: ConvShapeKey, site: ConvSite, count: Int)], threads: Int, parallelisms: [TrunkParallelism],
        microBatch: Int, chunkRows: Int
    ) -> Measurement {
        let buffers = TuningBuffers(
            shapes: shapes.map(\.site), workers: threads, microBatch: microBatch, chunkRows: chunkRows)
        let previousThreads = BLAS.threads
        defer { BLAS.setThreads(previousThreads) }
        var totals = [Double](repeating: 0, count: parallelisms.count)
        var chosen = [[MeasuredLayer]](repeating: [], count: parallelisms.count)
        // Shape by shape, every parallelism in turn, so that a change of load on a shared machine
        // falls on all candidates alike.
        for (index, shape) in shapes.enumerated() {
            var timings: [String: Double] = [:]
            var fastest: [ConvAlgorithm] = []
            for (pi, parallelism) in parallelisms.enumerated() {
                BLAS.setThreads(parallelism == .blas ? threads : 1)
                let workers = parallelism == .batch ? threads : 1
                if index == 0 {
                    // Warm-up: BLAS threads, caches.
                    _ = buffers.time(
                        shape.site, algorithm: shape.site.layer.algorithms[0], workers: workers, repeats: 1)
                }
                let best = fastestAlgorithm(shape.site, buffers: buffers, workers: workers)
                for (algorithm, t) in best.seconds { timings["\(parallelism.rawValue)/\(algorithm.rawValue)"] = t }
                totals[pi] += best.minimum * Double(shape.count)
                fastest.append(best.algorithm)
            }
            for pi in parallelisms.indices {
                chosen[pi].append(
                    MeasuredLayer(
                        key: shape.key, algorithm: fastest[pi], choosable: shape.site.layer.algorithms.count > 1,
                        timings: timings))
            }
        }
        var pick = 0
        for pi in parallelisms.indices.dropFirst() where totals[pi] < switchMargin * totals[pick] { pick = pi }
        return Measurement(parallelism: parallelisms[pick], layers: chosen[pick])
    }

    /// An algorithm whose weights for the layer take more than half the last-level cache must be
    /// this much faster than each algorithm with smaller weights to be chosen over it: timing a
    /// layer alone does not see what large weights cost the rest of the network (they evict its
    /// data). Measured on a 2-core Zen 5 (32 MB L3), ResNet-50 at 7×7: F(4×4, 3×3) (38 MB of weights
    /// per layer) timed 6 % faster than F(2×2, 3×3) (17 MB) alone, yet the network ran no faster
    /// with it (−2.1 % and +0.4 % in two sets of interleaved runs), with 63 MB more weights.
    static let largeWeightsMargin = 0.9

    /// The best of two runs of each algorithm; more when they are close. Seconds per image.
    static func fastestAlgorithm(
        _ site: ConvSite, buffers: TuningBuffers, workers: Int
    ) -> (algorithm: ConvAlgorithm, minimum: Double, seconds: [(ConvAlgorithm, Double)]) {
        let algorithms = site.layer.algorithms
        var seconds = algorithms.map { buffers.time(site, algorithm: $0, workers: workers, repeats: 2) }
        if let lo = seconds.min(), let hi = seconds.max(), algorithms.count > 1, lo > closeRatio * hi {
            for (i, algorithm) in algorithms.enumerated() {
                seconds[i] = min(
                    seconds[i], buffers.time(site, algorithm: algorithm, workers: workers, repeats: repeats - 1))
            }
        }
        let best = choose(
            seconds: seconds, weightBytes: algorithms.map { 4 * site.layer.weightFloats($0) },
            cacheBytes: buffers.cacheBytes)
        return (algorithms[best], seconds[best], Array(zip(algorithms, seconds)))
    }

    /// The index of the fastest candidate, where one with large weights (over half of
    /// `cacheBytes`) must beat each candidate with smaller weights by `largeWeightsMargin`.
    static func choose(seconds: [Double], weightBytes: [Int], cacheBytes: Int) -> Int {
        var order = Array(seconds.indices).sorted { seconds[$0] < seconds[$1] }
        while order.count > 1 {
            let best = order[0]
            let smaller = order.dropFirst().filter { weightBytes[$0] < weightBytes[best] }
            let beaten = smaller.allSatisfy { seconds[best] <= largeWeightsMargin * seconds[$0] }
            if weightBytes[best] <= cacheBytes / 2 || beaten { return best }
            order.removeFirst()
        }
        return order.first ?? 0
    }
}

/// Buffers for timing layers: per worker an input, an output and a scratch as large as the
/// largest shape needs (inputs hold a fixed pattern; values do not matter for speed).
///
/// Each timed run starts as the layer runs inside the network: its weights cold (every other
/// layer's weights have passed through the caches since its previous micro-batch), its input warm
/// (the previous layer just wrote it).
final class TuningBuffers: @unchecked Sendable {
    let microBatch: Int, chunkRows: Int
    let inputs: [FloatBuffer], outputs: [FloatBuffer], scratches: [FloatBuffer], zeros: FloatBuffer
    let pointers: [UnsafeMutablePointer<UnsafePointer<Float>>]
    /// The last-level cache one core sees (`lastLevelCacheBytes`, read once).
    let cacheBytes: Int
    /// Read before each timed run to push the weights out of the caches: twice the last-level
    /// cache, at most 128 MB (tuning reads it a few hundred times; with a larger cache the weights
    /// of most layers stay cached in the network too).
    let evict: FloatBuffer

    init(shapes: [ConvSite], workers: Int, microBatch: Int, chunkRows: Int) {
        self.microBatch = microBatch
        self.chunkRows = chunkRows
        var input = 1, output = 1, scratch = 1, zero = 1
        for s in shapes {
            let l = s.layer
            input = max(input, microBatch * s.height * s.width * l.cin)
            output = max(output, microBatch * l.outputSize(s.height) * l.outputSize(s.width) * l.cout)
            scratch = max(scratch, l.chunkScratchFloats(chunkRows: chunkRows, budget: 2 << 20))
            zero = max(zero, l.cin)
        }
        inputs = (0..<workers).map { _ in
            let b = FloatBuffer(count: input)
            for i in 0..<input { b.pointer[i] = Float(i % 97) / 97 - 0.5 }
            return b
        }
        outputs = (0..<workers).map { _ in FloatBuffer(count: output) }
        scratches = (0..<workers).map { _ in FloatBuffer(count: scratch) }
        zeros = FloatBuffer(count: zero)
        pointers = (0..<workers).map { _ in
            let p = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: 16)
            return p
        }
        for p in pointers { p.initialize(repeating: UnsafePointer(zeros.pointer), count: 16) }
        cacheBytes = Self.lastLevelCacheBytes()
        evict = FloatBuffer(count: 2 * min(cacheBytes, 64 << 20) / MemoryLayout<Float>.size)
        for i in stride(from: 0, to: evict.count, by: 16) { evict.pointer[i] = 1 }
    }

    /// The last-level cache one core sees, from sysfs (`sysconf` reports a whole package's L3 in
    /// some virtual machines: 384 MB against 32 MB on the machine above); 32 MB when unknown.
    static func lastLevelCacheBytes() -> Int {
        var best = 0
        for index in 0..<8 {
            let path = "/sys/devices/system/cpu/cpu0/cache/index\(index)/size"
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
            let scale = t.hasSuffix("K") ? 1 << 10 : t.hasSuffix("M") ? 1 << 20 : 1
            if let v = Int(t.filter(\.isNumber)) { best = max(best, v * scale) }
        }
        return best > 0 ? min(best, 512 << 20) : 32 << 20
    }

    /// Reads the eviction buffer, then the `floats` of each worker's input the layer reads (cold
    /// weights, warm input).
    private func prepare(workers: Int, floats: Int) -> Float {
        var sink: Float = 0
        for i in stride(from: 0, to: evict.count, by: 16) { sink += evict.pointer[i] }
        for w in 0..<workers {
            for i in stride(from: 0, to: min(floats, inputs[w].count), by: 16) { sink += inputs[w].pointer[i] }
        }
        return sink
    }

    deinit { for p in pointers { p.deallocate() } }

    /// Seconds per image of `algorithm` on `site` with `workers` workers each running a micro-batch.
    func time(_ site: ConvSite, algorithm: ConvAlgorithm, workers: Int, repeats: Int) -> Double {
        site.layer.prepare(algorithm)
        let key = ConvShapeKey(site.layer, height: site.height, width: site.width)
        let plan = ConvPlan(choices: [key: algorithm])
        let run = { (w: Int) in
            let scratch = ConvScratch(
                buffer: self.scratches[w].pointer, capacity: self.scratches[w].count, chunkRows: self.chunkRows,
                zeros: self.zeros.pointer, pointers: self.pointers[w], plan: plan)
            Convolution.forward(
                site.layer, input: self.inputs[w].pointer, n: self.microBatch, inH: site.height, inW: site.width,
                output: self.outputs[w].pointer, epilogue: .bias(relu: true), scratch: scratch)
        }
        var best = Double.infinity
        for _ in 0..<repeats {
            sink += prepare(workers: workers, floats: microBatch * site.height * site.width * site.layer.cin)
            let start = DispatchTime.now().uptimeNanoseconds
            if workers == 1 {
                run(0)
            } else {
                let work = Work(body: run)
                DispatchQueue.concurrentPerform(iterations: workers) { work.body($0) }
            }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return best / Double(workers * microBatch)
    }

    /// Keeps `prepare`'s reads from being optimised away.
    private(set) var sink: Float = 0

    private struct Work: @unchecked Sendable {
        let body: (Int) -> Void
    }
}
