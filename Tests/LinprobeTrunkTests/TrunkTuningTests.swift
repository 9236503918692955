import Foundation
import LinprobeCore
import Testing

@testable import LinprobeTrunk

/// The tuning cache (round trip, corrupt and foreign files, unwritable folder), the tuner's
/// sources (measured, cache, static, forced) and the settings' spelling.
@Suite("Trunk tuning: cache and choices")
struct TrunkTuningTests {
    final class Warnings: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        func add(_ line: String) { lock.withLock { lines.append(line) } }
        var all: [String] { lock.withLock { lines } }
    }

    static func temporaryFolder() throws -> String {
        let path = NSTemporaryDirectory() + "linprobe-tuning-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A 3×3 stride-1 layer (both algorithms with `.auto`) and a 1×1 one, with seeded weights.
    static func layers(algorithm: ConvAlgorithm) throws -> [ConvSite] {
        func layer(_ cin: Int, _ cout: Int, _ k: Int, pad: Int) throws -> ConvLayer {
            var state: UInt32 = 7
            let weight = (0..<(cout * cin * k * k)).map { _ -> Float in
                state = state &* 1_664_525 &+ 1_013_904_223
                return Float(state >> 8) / Float(1 << 24) - 0.5
            }
            let ones = [Float](repeating: 1, count: cout), zeros = [Float](repeating: 0, count: cout)
            return try ConvLayer(
                weight: weight, shape: [cout, cin, k, k], stride: 1, pad: pad, groups: 1,
                bn: (ones, zeros, zeros, ones), algorithm: algorithm, name: "test")
        }
        return [
            ConvSite(layer: try layer(16, 16, 3, pad: 1), height: 12, width: 12),
            ConvSite(layer: try layer(16, 32, 1, pad: 0), height: 12, width: 12),
        ]
    }

    static func entry(network: String = "n") -> TrunkTuningEntry {
        let key = TrunkTuningKey(machine: .current(threads: 2), network: network)
        let shape = ConvShapeKey(cin: 64, cout: 64, kernel: 3, stride: 1, pad: 1, groups: 1, height: 56, width: 56)
        return TrunkTuningEntry(
            key: key, parallelism: .blas,
            layers: [
                TrunkTuningLayer(
                    shape: shape, algorithm: .im2col, choosable: true,
                    timings: ["blas/im2col": 0.001, "blas/winograd": 0.002])
            ], measuredSeconds: 0.5)
    }

    @Test("cache: an entry stored is read back; other keys miss")
    func roundTrip() throws {
        let folder = try Self.temporaryFolder()
        let warnings = Warnings()
        let cache = TrunkTuningCache(path: folder + "/linprobe/trunk-tuning.json", warn: warnings.add)
        let entry = Self.entry()
        cache.store(entry)
        cache.store(Self.entry(network: "other"))
        let back = try #require(cache.entry(for: entry.key))
        #expect(back.parallelism == .blas)
        #expect(back.choices == entry.choices)
        #expect(back.layers.first?.timings == entry.layers.first?.timings)
        #expect(cache.entry(for: TrunkTuningKey(machine: .current(threads: 3), network: "n")) == nil)
        #expect(cache.load().entries.count == 2)
        #expect(warnings.all.isEmpty)
    }

    @Test(
        "cache: a corrupt or foreign file is ignored with one warning, then replaced",
        arguments: [
            "{not json", #"{"format": "linprobe-trunk-tuning", "version": 99, "entries": []}"#,
            #"{"format": "something-else", "version": 1}"#,
            #"{"format": "linprobe-trunk-tuning", "version": 1, "entries": [{"key": 3}]}"#,
        ])
    func corrupt(content: String) throws {
        let folder = try Self.temporaryFolder()
        let path = folder + "/trunk-tuning.json"
        try content.write(toFile: path, atomically: true, encoding: .utf8)
        let warnings = Warnings()
        let cache = TrunkTuningCache(path: path, warn: warnings.add)
        #expect(cache.entry(for: Self.entry().key) == nil)
        #expect(warnings.all.count == 1)
        #expect(warnings.all.first?.contains(path) == true)
        #expect(warnings.all.first?.contains("\n") == false)
        cache.store(Self.entry())
        #expect(TrunkTuningCache(path: path, warn: warnings.add).entry(for: Self.entry().key) != nil)
    }

    @Test("cache: a folder that cannot be written warns and keeps going")
    func unwritable() throws {
        let folder = try Self.temporaryFolder()
        // A regular file where the cache folder should be: no user (root included) can create it.
        try "x".write(toFile: folder + "/blocked", atomically: true, encoding: .utf8)
        let warnings = Warnings()
        let cache = TrunkTuningCache(path: folder + "/blocked/linprobe/trunk-tuning.json", warn: warnings.add)
        cache.store(Self.entry())
        #expect(warnings.all.count == 1)
        #expect(cache.entry(for: Self.entry().key) == nil)
    }

    @Test("cache folder: XDG_CACHE_HOME, else ~/.cache")
    func folder() {
        #expect(
            TrunkTuningCache.user(environment: ["XDG_CACHE_HOME": "/x/c", "HOME": "/h"])?.path
                == "/x/c/linprobe/trunk-tuning.json")
        #expect(TrunkTuningCache.user(environment: ["HOME": "/h"])?.path == "/h/.cache/linprobe/trunk-tuning.json")
        #expect(TrunkTuningCache.user(environment: [:]) == nil)
    }

    @Test("tuner: measures once, then reads the cache; off means the static defaults")
    func tuner() throws {
        let folder = try Self.temporaryFolder()
        let warnings = Warnings()
        let cache = TrunkTuningCache(path: folder + "/trunk-tuning.json", warn: warnings.add)
        let sites = try Self.layers(algorithm: .auto)
        #expect(sites[0].layer.algorithms == [.winograd, .winograd4, .im2col])
        let options = TrunkRunOptions(threads: 2, parallelism: .batch, algorithm: .auto, tuneParallelism: true)
        let first = ConvTuner.resolve(sites: sites, options: options, microBatch: 2, chunkRows: 64, cache: cache)
        #expect(first.source == .measured)
        #expect(first.plan.choices.count == 1)
        let second = ConvTuner.resolve(sites: sites, options: options, microBatch: 2, chunkRows: 64, cache: cache)
        #expect(second.source == .cache)
        #expect(second.parallelism == first.parallelism)
        #expect(second.plan.choices == first.plan.choices)
        let other = ConvTuner.resolve(sites: sites, options: options, microBatch: 3, chunkRows: 64, cache: cache)
        #expect(other.source == .measured, "another micro-batch is another network shape set")
        let off = ConvTuner.resolve(
            sites: sites, options: options, microBatch: 2, chunkRows: 64, cache: cache, enabled: false)
        #expect(off.source == .staticDefault)
        #expect(off.parallelism == .batch)
        #expect(off.plan.choices.isEmpty)
        #expect(warnings.all.isEmpty)
    }

    @Test("choice: the fastest, unless its weights exceed half the cache and it beats smaller ones by under 10 %")
    func largeWeights() {
        let cache = 32 << 20
        // Small weights (at most 8 MB): plain minimum.
        #expect(
            ConvTuner.choose(seconds: [1.0, 0.95, 2.0], weightBytes: [4 << 20, 8 << 20, 2 << 20], cacheBytes: cache)
                == 1)
        // Large weights (over 8 MB), 5 % faster: the smaller one.
        #expect(
            ConvTuner.choose(seconds: [1.0, 0.95, 2.0], weightBytes: [17 << 20, 38 << 20, 9 << 20], cacheBytes: cache)
                == 0)
        // Large weights, 15 % faster than every smaller one: kept.
        #expect(
            ConvTuner.choose(seconds: [1.0, 0.85, 2.0], weightBytes: [4 << 20, 9 << 20, 2 << 20], cacheBytes: cache)
                == 1)
        // The runner-up is large too, and does not beat the smallest by 10 %: the smallest.
        #expect(
            ConvTuner.choose(seconds: [0.97, 0.9, 1.0], weightBytes: [17 << 20, 38 << 20, 9 << 20], cacheBytes: cache)
                == 2)
        #expect(ConvTuner.choose(seconds: [1.0], weightBytes: [38 << 20], cacheBytes: cache) == 0)
    }

    @Test("auto layers build F(4×4) weights on demand; an extractor that tuned keeps only what its plan runs")
    func keepOnlyPlanned() throws {
        let sites = try Self.layers(algorithm: .auto)
        let conv = sites[0].layer
        let key = ConvShapeKey(conv, height: 12, width: 12)
        #expect(conv.algorithms == [.winograd, .winograd4, .im2col])
        #expect(conv.holds(.winograd) && conv.holds(.im2col) && !conv.holds(.winograd4))
        // Not built: a plan naming F(4×4) runs the first held algorithm until `prepare`.
        #expect(conv.resolved(.winograd4) == .winograd)
        ConvPlan(choices: [key: .winograd4]).prepare(sites)
        #expect(conv.holds(.winograd4) && conv.holds(.winograd) && conv.holds(.im2col))
        #expect(conv.resolved(.winograd4) == .winograd4)
        ConvPlan(choices: [key: .winograd4]).keepOnlyPlanned(sites)
        #expect(conv.algorithms == [.winograd4])
        #expect(!conv.holds(.winograd) && !conv.holds(.im2col))
        #expect(conv.weightFloats(.winograd4) == 36 * 16 * 16)
        // A plan naming what the layer can no longer run runs what it holds, and frees nothing.
        #expect(conv.resolved(.im2col) == .winograd4)
        ConvPlan(choices: [key: .im2col]).keepOnlyPlanned(sites)
        #expect(conv.algorithms == [.winograd4] && conv.holds(.winograd4))
        // The 1×1 layer holds one algorithm either way.
        #expect(sites[1].layer.algorithms == [.im2col])
    }

    @Test("F(4×4) weights built on demand from the GEMM weights are as accurate as the forced layer's")
    func onDemandWeights() throws {
        let auto = try Self.layers(algorithm: .auto)[0]
        let forced = try Self.layers(algorithm: .winograd4)[0]
        auto.layer.prepare(.winograd4)
        let n = 2, h = auto.height, w = auto.width, c = auto.layer.cin
        let input = (0..<(n * h * w * c)).map { Float(($0 * 7919) % 97) / 97 - 0.5 }
        func run(_ site: ConvSite, _ algorithm: ConvAlgorithm) -> [Float] {
            var out = [Float](repeating: 0, count: n * h * w * site.layer.cout)
            let scratch = FloatBuffer(count: site.layer.chunkScratchFloats(chunkRows: 64, budget: 1 << 20))
            let zeros = FloatBuffer(count: c)
            let pointers = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: 16)
            defer { pointers.deallocate() }
            pointers.initialize(repeating: UnsafePointer(zeros.pointer), count: 16)
            let key = ConvShapeKey(site.layer, height: h, width: w)
            input.withUnsafeBufferPointer { x in
                out.withUnsafeMutableBufferPointer { o in
                    Convolution.forward(
                        site.layer, input: x.baseAddress!, n: n, inH: h, inW: w, output: o.baseAddress!,
                        epilogue: .bias(relu: false),
                        scratch: ConvScratch(
                            buffer: scratch.pointer, capacity: scratch.count, chunkRows: 64, zeros: zeros.pointer,
                            pointers: pointers, plan: ConvPlan(choices: [key: algorithm])))
                }
            }
            return out
        }
        // Against im2col + GEMM (float32 products, exact up to summation rounding).
        let reference = run(auto, .im2col)
        let scale = reference.map { abs($0) }.max() ?? 1
        func error(_ x: [Float]) -> Float { (zip(x, reference).map { abs($0 - $1) }.max() ?? 0) / scale }
        let onDemand = error(run(auto, .winograd4)), eager = error(run(forced, .winograd4))
        #expect(onDemand < 1e-5 && eager < 1e-5, "on demand \(onDemand), forced \(eager)")
        #expect(onDemand < 3 * eager, "on demand \(onDemand), forced \(eager)")
    }

    @Test("tuner: forced algorithm and parallelism measure nothing")
    func forced() throws {
        let folder = try Self.temporaryFolder()
        let cache = TrunkTuningCache(path: folder + "/trunk-tuning.json")
        for algorithm in [ConvAlgorithm.winograd, .winograd4, .im2col] {
            let sites = try Self.layers(algorithm: algorithm)
            #expect(sites[0].layer.algorithms == [algorithm])
            let options = TrunkRunOptions(threads: 2, parallelism: .blas, algorithm: algorithm)
            let tuning = ConvTuner.resolve(sites: sites, options: options, microBatch: 2, chunkRows: 64, cache: cache)
            #expect(tuning.source == .forced)
            #expect(tuning.parallelism == .blas)
        }
        #expect(!FileManager.default.fileExists(atPath: folder + "/trunk-tuning.json"))
    }

    @Test("settings: auto measures, a value forces, anything else is a config error naming the key")
    func settings() throws {
        let auto = try TrunkRunOptions(threads: 2, parallelism: "auto", algorithm: "auto")
        #expect(auto.tuneParallelism && auto.algorithm == .auto)
        let forced = try TrunkRunOptions(threads: 2, parallelism: "blas", algorithm: "im2col")
        #expect(!forced.tuneParallelism && forced.parallelism == .blas && forced.algorithm == .im2col)
        #expect(throws: LinprobeError.self) { try TrunkRunOptions(threads: 2, parallelism: "auto", algorithm: "fft") }
        do {
            _ = try TrunkRunOptions(threads: 2, parallelism: "gpu", algorithm: "auto")
            Issue.record("gpu accepted")
        } catch {
            #expect(oneLine(error).contains("LINPROBE.TRUNK.PARALLELISM"))
        }
    }
}
