import CLinprobeTrunkKernels
import Dispatch
import Foundation
import LinprobeBLAS
import LinprobeCore

/// How a convolution runs. `auto` keeps every algorithm a layer can run and lets a short
/// measurement (`ConvTuner`) pick per layer shape; the others force one everywhere it applies.
/// 1×1 and strided convolutions have one algorithm only (direct GEMM, strided gather + GEMM,
/// im2col + GEMM) and run it whatever the setting.
public enum ConvAlgorithm: String, Sendable, CaseIterable, Codable {
    case auto
    /// Winograd F(2×2, 3×3) for the 3×3 stride-1 convolutions.
    case winograd
    /// Winograd F(4×4, 3×3) for the 3×3 stride-1 convolutions: 2.25 products per output and
    /// channel pair instead of F(2×2, 3×3)'s 4, over 36 smaller GEMMs and wider transforms.
    case winograd4
    /// im2col + GEMM everywhere.
    case im2col
}

/// A convolution's shape at one input size: what its speed depends on besides the batch.
struct ConvShapeKey: Hashable, Codable, Comparable, Sendable, CustomStringConvertible {
    var cin: Int, cout: Int, kernel: Int, stride: Int, pad: Int, groups: Int, height: Int, width: Int

    init(cin: Int, cout: Int, kernel: Int, stride: Int, pad: Int, groups: Int, height: Int, width: Int) {
        (self.cin, self.cout, self.kernel, self.stride, self.pad, self.groups) = (
            cin, cout, kernel, stride, pad, groups
        )
        (self.height, self.width) = (height, width)
    }

    init(_ layer: ConvLayer, height: Int, width: Int) {
        self.init(
            cin: layer.cin, cout: layer.cout, kernel: layer.kernel, stride: layer.stride, pad: layer.pad,
            groups: layer.groups, height: height, width: width)
    }

    private var tuple: [Int] { [cin, cout, kernel, stride, pad, groups, height, width] }
    static func < (a: ConvShapeKey, b: ConvShapeKey) -> Bool { a.tuple.lexicographicallyPrecedes(b.tuple) }

    var description: String {
        "\(kernel)x\(kernel)/\(stride) \(cin)->\(cout)\(groups > 1 ? " g\(groups)" : "") @\(height)x\(width)"
    }
}

/// Which algorithm each layer shape runs, for layers that hold weights for several. Shapes it does
/// not list run the static default (Winograd where the layer has it).
final class ConvPlan: @unchecked Sendable {
    let choices: [ConvShapeKey: ConvAlgorithm]

    init(choices: [ConvShapeKey: ConvAlgorithm]) { self.choices = choices }

    static let staticDefault = ConvPlan(choices: [:])

    func algorithm(for layer: ConvLayer, inH: Int, inW: Int) -> ConvAlgorithm {
        choices[ConvShapeKey(layer, height: inH, width: inW)] ?? .winograd
    }

    /// The algorithm `layer` runs at this input size under this plan, before `resolved`: the
    /// plan's choice if the layer can run it, else its first algorithm.
    func planned(for layer: ConvLayer, inH: Int, inW: Int) -> ConvAlgorithm {
        let choice = algorithm(for: layer, inH: inH, inW: inW)
        return layer.algorithms.contains(choice) ? choice : layer.algorithms.first ?? .im2col
    }

    /// Builds, in each layer of `sites`, the weights this plan runs there (`ConvLayer.prepare`).
    func prepare(_ sites: [ConvSite]) {
        for site in sites { site.layer.prepare(planned(for: site.layer, inH: site.height, inW: site.width)) }
    }

    /// Builds, in each layer of `sites`, the weights this plan runs there and frees the others
    /// (an `auto` ResNet-50 would otherwise hold two or three weight sets of each 3×3 layer). A
    /// layer that runs at several shapes with different algorithms keeps what it holds. Layer by
    /// layer, so that at most one layer holds an extra set at a time.
    func keepOnlyPlanned(_ sites: [ConvSite]) {
        var used: [ObjectIdentifier: (layer: ConvLayer, algorithms: Set<ConvAlgorithm>)] = [:]
        var order: [ObjectIdentifier] = []
        for site in sites {
            let id = ObjectIdentifier(site.layer)
            if used[id] == nil { order.append(id) }
            used[id, default: (site.layer, [])].algorithms.insert(
                planned(for: site.layer, inH: site.height, inW: site.width))
        }
        for id in order {
            guard let entry = used[id] else { continue }
            if entry.algorithms.count == 1, let only = entry.algorithms.first {
                entry.layer.keepOnly(only)
            } else {
                for algorithm in entry.algorithms { entry.layer.prepare(algorithm) }
            }
        }
    }
}

/// One convolution of a network at its input size (a family lists every one it runs).
struct ConvSite {
    let layer: ConvLayer
    let height: Int
    let width: Int
}

/// The outcome of tuning for one extractor: the parallelism and the per-shape algorithms.
struct ConvTuning: Sendable {
    enum Source: String, Sendable {
        /// Nothing to choose (forced settings, or no layer with two algorithms and one thread).
        case forced
        /// Tuning switched off (`LINPROBE_TRUNK_TUNING=0`): the static defaults.
        case staticDefault = "static"
        case cache
        case measured
    }

    let parallelism: TrunkParallelism
    let plan: ConvPlan
    let source: Source
    /// Seconds spent measuring (0 unless `measured`).
    let seconds: Double

    /// For the extract provenance: how the choice was made, and the algorithm of every shape
    /// that had a choice.
    var provenance: JSONValue {
        var layers: [String: JSONValue] = [:]
        for (key, algorithm) in plan.choices { layers[key.description] = .string(algorithm.rawValue) }
        return [
            "source": .string(source.rawValue), "parallelism": .string(parallelism.rawValue),
            "layers": .object(layers), "seconds": .double(seconds),
        ]
    }
}

/// Chooses, per network shape set and machine, between batch-split and BLAS threading and, per
/// layer shape, between the algorithms its layers hold — by timing each candidate on the real
/// layer shape with the real micro-batch (min of a few repeats) — and caches the decision in the
/// user's cache folder (`TrunkTuningCache`). The features never depend on the choice beyond float
/// rounding: every algorithm computes the same convolution (the fidelity tests run each).
enum ConvTuner {
    /// `LINPROBE_TRUNK_TUNING=0` (or `off`, `false`): no measurement; `auto` means the static
    /// defaults (Winograd where it applies, batch split). For CI runs whose timing must not vary.
    static var tuningEnabled: Bool {
        let value = ProcessInfo.processInfo.environment["LINPROBE_TRUNK_TUNING"]?.lowercased() ?? ""
        return !["0", "off", "false", "no"].contains(value)
    }

    /// The tuning for `sites` (every convolution the extractor runs, repeats included).
    static func resolve(
        sites: [ConvSite], options: TrunkRunOptions, microBatch: Int, chunkRows: Int,
        cache: TrunkTuningCache? = TrunkTuningCache.user(), enabled: Bool = tuningEnabled
    ) -> ConvTuning {
        let shapes = distinctShapes(sites)
        let choosable = shapes.filter { $0.site.layer.algorithms.count > 1 }
        let parallelisms: [TrunkParallelism] =
            options.tuneParallelism && options.threads > 1 ? [.batch, .blas] : [options.parallelism]
        guard !choosable.isEmpty || parallelisms.count > 1 else {
            return ConvTuning(parallelism: options.parallelism, plan: .staticDefault, source: .forced, seconds: 0)
        }
        guard enabled else {
            return ConvTuning(
                parallelism: options.parallelism, plan: .staticDefault, source: .staticDefault, seconds: 0)
        }
        let key = TrunkTuningKey(
            machine: .current(threads: options.threads),
            network: networkDigest(shapes, parallelisms: parallelisms, microBatch: microBatch, chunkRows: chunkRows))
        if let entry = cache?.entry(for: key) {
            return ConvTuning(
                parallelism: entry.parallelism, plan: ConvPlan(choices: entry.choices), source: .cache, seconds: 0)
        }
        let start = DispatchTime.now().uptimeNanoseconds
        let measured = measure(
            shapes: shapes, threads: options.threads, parallelisms: parallelisms, microBatch: microBatch,
            chunkRows: chunkRows)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        cache?.store(
            TrunkTuningEntry(
                key: key, parallelism: measured.parallelism,
                layers: measured.layers.map {
                    TrunkTuningLayer(
                        shape: $0.key, algorithm: $0.algorithm, choosable: $0.choosable, timings: $0.timings)
                },
                measuredSeconds: seconds))
        return ConvTuning(
            parallelism: measured.parallelism, plan: ConvPlan(choices: measured.choices), source: .measured,
            seconds: seconds)
    }

    /// Distinct shapes in first-seen order, each with how often it runs per image.
    static func distinctShapes(_ sites: [ConvSite]) -> [(key: ConvShapeKey, site: ConvSite, count: Int)] {
        var order: [ConvShapeKey] = []
        var found: [ConvShapeKey: (site: ConvSite, count: Int)] = [:]
        for site in sites {
            let key = ConvShapeKey(site.layer, height: site.height, width: site.width)
            if let f = found[key] {
                found[key] = (f.site, f.count + 1)
            } else {
                found[key] = (site, 1)
                order.append(key)
            }
        }
        return order.compactMap { key in found[key].map { (key, $0.site, $0.count) } }
    }

    /// What the cache entry is for: the shape set (with repeats and the algorithms each holds),
    /// the micro-batch, the chunking and the parallelisms considered.
    static func networkDigest(
        _ shapes: [(key: ConvShapeKey, site: ConvSite, count: Int)], parallelisms: [TrunkParallelism],
        microBatch: Int, chunkRows: Int
    ) -> String {
        let text = shapes.sorted { $0.key < $1.key }.map { shape in
            "\(shape.key) x\(shape.count) [\(shape.site.layer.algorithms.map(\.rawValue).joined(separator: ","))]"
        }.joined(separator: "; ")
        let all = "\(text) | micro-batch \(microBatch) | chunk \(chunkRows) | \(parallelisms.map(\.rawValue))"
        return Fingerprint.sha256(Data(all.utf8))
    }
}
