import Dispatch
import Foundation
import LinprobeBLAS
import LinprobeCore

/// Runs a vision transformer over image batches and writes every requested tap, in pool-op map
/// order (repeats allowed), from one forward pass that stops after the deepest block any tap
/// reads. Each tap normalises the block outputs it reads with the final LayerNorm, as VISSL's
/// `get_intermediate_features` does; nothing but the running activations is kept.
///
/// Threads: with `batch` parallelism (default) each worker runs whole images with a
/// single-threaded BLAS; with `blas` one worker drives a `threads`-way BLAS. Workspaces are
/// allocated once. Not reentrant: call `forward` from one thread at a time.
public final class ViTExtractor: TrunkExtractor, @unchecked Sendable {
    /// What output `k` takes from one block.
    struct Emission {
        let output: Int
        /// Offset of this block's part inside one token's (or the vector's) feature.
        let slot: Int
        let tap: ViTTap
    }

    public let network: ViTNetwork
    public let outputs: [FeatureOutput]
    public let inputHeight: Int
    public let inputWidth: Int
    public let threads: Int
    public let parallelism: TrunkParallelism
    public let microBatch: Int
    let geometry: ViTSpec.Geometry
    /// `tokens × D`: class row (if any) then the patch rows, interpolated when needed.
    let positions: FloatBuffer
    /// Per block: the outputs that read it.
    let emissions: [[Emission]]
    /// Blocks run (1 + the deepest block read).
    let depth: Int
    /// Per output: how many blocks it concatenates.
    let blockCounts: [Int]
    private let workspaces: [ViTWorkspace]
    private let runner: TrunkBatchRunner

    init(
        network: ViTNetwork, outputs: [FeatureOutput], inputHeight: Int, inputWidth: Int, options: TrunkRunOptions,
        microBatch: Int = 8
    ) throws {
        let spec = network.spec
        self.network = network
        self.outputs = outputs
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        threads = options.threads
        parallelism = options.parallelism
        geometry = try spec.geometry(inputHeight: inputHeight, inputWidth: inputWidth)
        var emissions = [[Emission]](repeating: [], count: spec.numLayers)
        var counts: [Int] = []
        for (k, out) in outputs.enumerated() {
            let (tap, blocks) = try spec.resolve(out.tap)
            let shape = try spec.tapShape(out.tap, inputHeight: inputHeight, inputWidth: inputWidth)
            guard out.op == .identity, out.shapeCHW == shape.chw else {
                throw LinprobeError.config("tap \(out.tap): only Identity applies to vision_transformer taps")
            }
            for (slot, j) in blocks.enumerated() { emissions[j].append(Emission(output: k, slot: slot, tap: tap)) }
            counts.append(blocks.count)
        }
        self.emissions = emissions
        blockCounts = counts
        depth = (emissions.lastIndex { !$0.isEmpty } ?? -1) + 1
        positions = FloatBuffer(network.positions(for: geometry))
        let workers = options.workers
        let perImage = ViTWorkspace.floatsPerImage(spec: spec, tokens: geometry.tokens)
        let limit = (512 << 20) / 4
        self.microBatch = max(1, min(microBatch, limit / max(1, perImage)))
        if let excess = MemoryBudget.excess([
            perImage * self.microBatch + geometry.tokens * geometry.tokens, 4, workers,
        ]) {
            throw LinprobeError.config(
                "input size \(inputHeight)×\(inputWidth): the transformer's workspace memory \(excess); use smaller images or fewer threads"
            )
        }
        let mb = self.microBatch, tokens = geometry.tokens
        workspaces = (0..<workers).map { _ in ViTWorkspace(spec: spec, tokens: tokens, microBatch: mb) }
        runner = TrunkBatchRunner(options: options, microBatch: self.microBatch)
    }

    public var outputDimensions: [Int] { outputs.map(\.dimension) }

    public var provenance: JSONValue {
        [
            "threads": .int(Int64(threads)), "parallelism": .string(parallelism.rawValue),
            "micro_batch": .int(Int64(microBatch)),
            "layout": "tokens x features, float32; attention as per-head sgemm (QK^T, softmax, AV)",
            "position_embedding": geometry.interpolationScale.map { .string("bicubic x\($0)") } ?? "as stored",
            "blas": .string(BLAS.config), "blas_core": .string(BLAS.coreName),
        ]
    }

    public func forward(input: UnsafePointer<Float>, count: Int, destinations: [UnsafeMutablePointer<Float>]) throws {
        let imageSize = 3 * inputHeight * inputWidth
        try runner.run(count: count, destinations: destinations.count, outputs: outputs.count) { worker, first, n in
            self.forwardMicroBatch(
                self.workspaces[worker], input: input + first * imageSize, n: n, first: first,
                destinations: destinations)
        }
    }
}
