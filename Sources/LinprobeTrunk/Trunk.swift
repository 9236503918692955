import Foundation
import LinprobeBLAS
import LinprobeCheckpoint
import LinprobeCore

/// What the `extract` stage needs from a network: fixed input size, one flattened output per
/// stored layer, and a batched forward pass writing into caller buffers.
///
/// Each trunk family's extractor (`ResNetExtractor`, …) conforms; tests use cheap models to
/// exercise ordering, resumption and failure paths.
public protocol FeatureModel: AnyObject {
    /// Input tensor height and width (3 channels, NCHW).
    var inputHeight: Int { get }
    var inputWidth: Int { get }
    /// Flattened length of each output, in store layer order.
    var outputDimensions: [Int] { get }
    /// Runs `count` images (`count × 3 × H × W` floats, already normalised) and writes output k of
    /// image i to `destinations[k] + i · outputDimensions[k]`.
    func forward(input: UnsafePointer<Float>, count: Int, destinations: [UnsafeMutablePointer<Float>]) throws
}

/// The shape of one tap for a given input size.
public struct TapShape: Sendable, Hashable {
    /// `[C, H, W]` (a vector tap is `[D, 1, 1]`).
    public let chw: [Int]
    /// Whether pool ops other than `Identity` apply (false for vector taps such as ResNet's
    /// `flatten` or a transformer's `lastCLS`).
    public let poolable: Bool

    public init(chw: [Int], poolable: Bool = true) {
        self.chw = chw
        self.poolable = poolable
    }
}

/// One tensor a trunk needs from a checkpoint, by the name the family uses after VISSL's prefix
/// handling (`WeightsInit`), with what its random initialisation is.
public struct TrunkParameter: Sendable, Hashable {
    public enum Initialisation: Sendable, Hashable {
        /// U(−1/√fan_in, 1/√fan_in): PyTorch's default bound for convolution and linear weights.
        case uniform(fanIn: Int)
        case zeros
        case ones
        /// N(0, std²)-like small values for embeddings (class token, position embedding).
        case embedding(std: Double)
    }

    public let name: String
    public let shape: [Int]
    public let initialisation: Initialisation

    public init(name: String, shape: [Int], initialisation: Initialisation) {
        self.name = name
        self.shape = shape
        self.initialisation = initialisation
    }

    public var count: Int { shape.reduce(1, *) }
}

/// How a family's extractor uses its threads.
public enum TrunkParallelism: String, Sendable, CaseIterable, Hashable {
    /// Split the batch across worker threads; BLAS single-threaded inside each.
    case batch
    /// One worker; OpenBLAS uses all threads inside each GEMM.
    case blas
}

/// Options every family's network takes when it is built and run.
///
/// The programmatic defaults are the static ones (Winograd where it applies, batch split); the
/// pipeline passes `LINPROBE.TRUNK.ALGORITHM` / `LINPROBE.TRUNK.PARALLELISM`, whose default
/// `auto` lets the convolution families measure (`ConvTuner`, cached per machine).
public struct TrunkRunOptions: Sendable, Equatable {
    /// Worker threads (BLAS threads with `.blas`). Default: all cores.
    public var threads: Int
    /// The parallelism to use; with `tuneParallelism`, the fallback when nothing is measured.
    public var parallelism: TrunkParallelism
    /// Let a convolution family choose between batch split and BLAS threading by measurement.
    public var tuneParallelism: Bool
    /// How convolutions run (`auto`: per layer shape, by measurement).
    public var algorithm: ConvAlgorithm

    public init(
        threads: Int = ProcessInfo.processInfo.activeProcessorCount, parallelism: TrunkParallelism = .batch,
        algorithm: ConvAlgorithm = .winograd, tuneParallelism: Bool = false
    ) {
        self.threads = max(1, threads)
        self.parallelism = parallelism
        self.algorithm = algorithm
        self.tuneParallelism = tuneParallelism
    }

    /// Options from the settings' spelling: `auto` (measure) or a forced value for each.
    public init(threads: Int, parallelism: String, algorithm: String) throws {
        guard let a = ConvAlgorithm(rawValue: algorithm) else {
            throw LinprobeError.config(
                "LINPROBE.TRUNK.ALGORITHM: \(algorithm) is not one of \(ConvAlgorithm.allCases.map(\.rawValue))")
        }
        let forced = TrunkParallelism(rawValue: parallelism)
        guard forced != nil || parallelism == "auto" else {
            throw LinprobeError.config(
                "LINPROBE.TRUNK.PARALLELISM: \(parallelism) is not one of auto, batch, blas")
        }
        self.init(threads: threads, parallelism: forced ?? .batch, algorithm: a, tuneParallelism: forced == nil)
    }

    /// These options with the parallelism a tuning chose.
    func with(parallelism: TrunkParallelism) -> TrunkRunOptions {
        var copy = self
        copy.parallelism = parallelism
        copy.tuneParallelism = false
        return copy
    }

    /// Workers, each with its own workspace: every thread with `.batch`, one with `.blas`.
    public var workers: Int { parallelism == .batch ? threads : 1 }
}

/// A trunk architecture read from VISSL's `MODEL` mapping: its taps, their shapes, the
/// parameters a checkpoint must hold, and how to build the network from them. One conforming
/// type per family (`Models/<Family>/`); `TrunkFamilies` maps `MODEL.TRUNK.NAME` to them.
public protocol TrunkArchitecture: Sendable, CustomStringConvertible {
    /// VISSL's `MODEL.TRUNK.NAME` of this architecture.
    var trunkName: String { get }
    /// What determines the features (VISSL key names), for provenance and fingerprints.
    var provenance: JSONValue { get }
    /// Every tap name the trunk offers, in depth order (error messages list them).
    var tapNames: [String] { get }
    /// Whether `name` is a tap (families with parametric taps, e.g. `concatCLS4`, override).
    func acceptsTap(_ name: String) -> Bool
    /// The tap an empty pool-op map stores (VISSL's trunk output).
    var defaultTap: String { get }
    /// The shape of each requested tap at this input size; a config error naming the tap when it
    /// cannot be computed (input too small, tap invalid for this model).
    func tapShape(_ tap: String, inputHeight: Int, inputWidth: Int) throws -> TapShape
    /// Every tensor the network needs, in the family's state-dict order.
    var parameters: [TrunkParameter] { get }
    /// Whether a checkpoint key (after prefix handling) looks like a parameter of this family
    /// (such keys that the architecture does not need are errors; others are ignored).
    func looksLikeTrunkParameter(_ name: String) -> Bool
    /// The config keys to check when a checkpoint does not fit.
    var checkpointHint: String { get }
    /// The parameter's name in VISSL's model (what `WEIGHTS_INIT.SKIP_LAYERS` substrings match).
    func visslModuleName(_ parameter: String) -> String
    /// Multiply-accumulates of one image up to the deepest of `taps` (benchmarks; nil if unknown).
    func multiplyAccumulates(inputHeight: Int, inputWidth: Int, taps: [String]) -> Int?
    /// Builds the network from checked weights.
    func build(weights: TrunkWeights, options: TrunkRunOptions) throws -> any TrunkNetwork
}

extension TrunkArchitecture {
    public func acceptsTap(_ name: String) -> Bool { tapNames.contains(name) }
    public func visslModuleName(_ parameter: String) -> String { "trunk." + parameter }
    public func multiplyAccumulates(inputHeight: Int, inputWidth: Int, taps: [String]) -> Int? { nil }
}

/// A built network (weights prepared for inference), shared by the splits of one extraction.
public protocol TrunkNetwork: AnyObject, Sendable {
    var architecture: any TrunkArchitecture { get }
    /// How the weights were obtained (file, SHA-256, notes; or the random seed).
    var weightsProvenance: JSONValue { get }
    var weightsSHA256: String? { get }
    /// Remarks for the user (keys ignored, random initialisation, …).
    var notes: [String] { get }
    /// An extractor producing `outputs` (pool-op map order) for images of this size.
    func extractor(
        outputs: [FeatureOutput], inputHeight: Int, inputWidth: Int, options: TrunkRunOptions
    ) throws
        -> any TrunkExtractor
}

/// A `FeatureModel` that also states how it computes, for the store's provenance.
public protocol TrunkExtractor: FeatureModel {
    var outputs: [FeatureOutput] { get }
    /// Settings recorded in provenance (threads, layout, algorithm, BLAS).
    var provenance: JSONValue { get }
}

/// How a family's extractor spreads one batch over its workers. With `.batch`, the images are cut
/// into one contiguous range per worker (BLAS single-threaded inside each); with `.blas`, one
/// worker runs them all and BLAS uses every thread. Each range runs in micro-batches on its
/// worker's workspace. One batch at a time: workspaces belong to workers.
public final class TrunkBatchRunner: @unchecked Sendable {
    public let threads: Int
    public let parallelism: TrunkParallelism
    /// Workers (and so workspaces): the threads with `.batch`, one with `.blas`.
    public let workers: Int
    public let microBatch: Int
    private let lock = NSLock()

    public init(options: TrunkRunOptions, microBatch: Int) {
        threads = options.threads
        parallelism = options.parallelism
        workers = options.workers
        self.microBatch = max(1, microBatch)
    }

    /// Runs images `0..<count`: `step(worker, first, n)` computes images `first..<first + n` on
    /// `worker`'s workspace. `destinations` and `outputs` are the counts the caller was given and
    /// needs (a mismatch is a usage error).
    public func run(
        count: Int, destinations: Int, outputs: Int, _ step: @escaping (_ worker: Int, _ first: Int, _ n: Int) -> Void
    ) throws {
        guard destinations == outputs else {
            throw LinprobeError(.usage, "forward needs \(outputs) destinations, got \(destinations)")
        }
        guard count > 0 else { return }
        lock.lock()
        defer { lock.unlock() }
        let previousThreads = BLAS.threads
        BLAS.setThreads(parallelism == .blas ? threads : 1)
        defer { BLAS.setThreads(previousThreads) }
        let used = min(workers, count)
        let range = { (w: Int) in (count * w / used)..<(count * (w + 1) / used) }
        let runRange = { (w: Int) in
            let r = range(w)
            var start = r.lowerBound
            while start < r.upperBound {
                let n = min(self.microBatch, r.upperBound - start)
                step(w, start, n)
                start += n
            }
        }
        if used == 1 {
            runRange(0)
        } else {
            // Each worker touches only its own workspace and its own rows of the destinations.
            let work = UncheckedWork(body: runRange)
            DispatchQueue.concurrentPerform(iterations: used) { work.body($0) }
        }
    }

    private struct UncheckedWork: @unchecked Sendable {
        let body: (Int) -> Void
    }
}
