import Dispatch
import Foundation
import LinprobeBLAS
import LinprobeCore

/// Runs an AlexNet over image batches and writes every requested tap (pool-op map order,
/// repeats allowed) from one forward pass that stops after the deepest tap. NHWC activations,
/// convolutions as im2col + sgemm; the batch is split across workers (`batch`) or one worker
/// drives a multi-threaded BLAS (`blas`). Workspaces are allocated once. Not reentrant.
public final class AlexNetExtractor: TrunkExtractor, @unchecked Sendable {
    public let network: AlexNetNetwork
    public let outputs: [FeatureOutput]
    public let inputHeight: Int
    public let inputWidth: Int
    public let threads: Int
    public let parallelism: TrunkParallelism
    public let microBatch: Int
    /// Index in `AlexNetSpec.tapNames` of the deepest tap computed.
    let deepest: Int
    let shapes: [String: [Int]]
    private let workspaces: [AlexNetWorkspace]
    private let runner: TrunkBatchRunner
    /// The measured (or forced) parallelism; the convolutions are im2col + GEMM only.
    let tuning: ConvTuning

    init(
        network: AlexNetNetwork, outputs: [FeatureOutput], inputHeight: Int, inputWidth: Int,
        options: TrunkRunOptions, microBatch: Int = 8
    ) throws {
        let spec = network.spec
        guard let shapes = spec.tapShapes(inputHeight: inputHeight, inputWidth: inputWidth) else {
            throw LinprobeError.config("input size \(inputHeight)×\(inputWidth) is too small for the \(spec) trunk")
        }
        var deepest = 0
        for out in outputs {
            guard let i = AlexNetSpec.tapNames.firstIndex(of: out.tap) else {
                throw LinprobeError(.unsupported, "the \(spec) trunk has no tap \(out.tap)")
            }
            deepest = max(deepest, i)
        }
        self.network = network
        self.outputs = outputs
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        self.shapes = shapes
        self.deepest = deepest
        threads = options.threads
        let plan = AlexNetWorkspace.Plan(network: network, height: inputHeight, width: inputWidth, outputs: outputs)
        let limit = (512 << 20) / 4 - plan.fixedFloats
        self.microBatch = max(1, min(microBatch, limit / max(1, plan.floatsPerImage)))
        tuning = ConvTuner.resolve(
            sites: network.convSites(height: inputHeight, width: inputWidth), options: options,
            microBatch: self.microBatch, chunkRows: AlexNetWorkspace.chunkRows)
        parallelism = tuning.parallelism
        let resolved = options.with(parallelism: parallelism)
        let workers = resolved.workers
        if let excess = MemoryBudget.excess([plan.floatsPerImage * self.microBatch + plan.fixedFloats, 4, workers]) {
            throw LinprobeError.config(
                "input size \(inputHeight)×\(inputWidth): the AlexNet workspace memory \(excess); use smaller images or fewer threads"
            )
        }
        let mb = self.microBatch
        workspaces = (0..<workers).map { _ in AlexNetWorkspace(plan: plan, microBatch: mb) }
        runner = TrunkBatchRunner(options: resolved, microBatch: self.microBatch)
    }

    public var outputDimensions: [Int] { outputs.map(\.dimension) }

    public var provenance: JSONValue {
        [
            "threads": .int(Int64(threads)), "parallelism": .string(parallelism.rawValue),
            "micro_batch": .int(Int64(microBatch)),
            "layout": "NHWC, BatchNorm folded into convolutions, im2col + sgemm",
            "input": .string(network.spec.input.rawValue), "tuning": tuning.provenance,
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

    /// A map of `n` NHWC images, as it moves through the network.
    private struct Map {
        var data: UnsafeMutablePointer<Float>
        var h: Int, w: Int, c: Int
    }

    private func forwardMicroBatch(
        _ ws: AlexNetWorkspace, input: UnsafePointer<Float>, n: Int, first: Int,
        destinations: [UnsafeMutablePointer<Float>]
    ) {
        let net = network
        let scratch = ConvScratch(
            buffer: ws.scratch.pointer, capacity: ws.scratch.count, chunkRows: AlexNetWorkspace.chunkRows,
            zeros: ws.zeros.pointer, pointers: ws.pointers)
        var spare = ws.b.pointer
        var x = Map(data: ws.a.pointer, h: inputHeight, w: inputWidth, c: 3)
        if net.spec.input == .labL {
            // torch.split(x, [1, 2], dim=1)[0]: the L plane of each image, already "NHWC" with C = 1.
            let plane = inputHeight * inputWidth
            for i in 0..<n { (x.data + i * plane).update(from: input + i * 3 * plane, count: plane) }
            x.c = 1
        } else {
            Kernels.nchwToNHWC(input, x.data, n: n, c: 3, h: inputHeight, w: inputWidth)
        }
        func convolve(_ layer: ConvLayer) {
            Convolution.forward(
                layer, input: x.data, n: n, inH: x.h, inW: x.w, output: spare,
                epilogue: .bias(relu: layer !== net.sobel),
                scratch: scratch)
            let out = Map(data: spare, h: layer.outputSize(x.h), w: layer.outputSize(x.w), c: layer.cout)
            spare = x.data
            x = out
        }
        func maxPool() {
            let oh = AlexNetSpec.outSize(x.h, kernel: 3, stride: 2, pad: 0)
            let ow = AlexNetSpec.outSize(x.w, kernel: 3, stride: 2, pad: 0)
            Kernels.maxPoolNHWC(
                x.data, spare, n: n, h: x.h, w: x.w, c: x.c, kernel: 3, stride: 2, pad: 0, oh: oh, ow: ow)
            let out = Map(data: spare, h: oh, w: ow, c: x.c)
            spare = x.data
            x = out
        }
        func localResponseNorm() {
            net.lrn.apply(x.data, spare, pixels: n * x.h * x.w, c: x.c, squares: ws.squares.pointer)
            swap(&x.data, &spare)
        }
        func poolBlock() {
            switch net.spec.poolBlock {
            case .maxPool: maxPool()
            case .lrnThenMaxPool: localResponseNorm(); maxPool()
            case .maxPoolThenLRN: maxPool(); localResponseNorm()
            }
        }
        if let sobel = net.sobel { convolve(sobel) }
        // Blocks in VISSL's order; stop after the deepest tap.
        let blocks: [(String, () -> Void)] = [
            ("conv1", { convolve(net.convs[0]) }), ("pool1", poolBlock), ("conv2", { convolve(net.convs[1]) }),
            ("pool2", poolBlock), ("conv3", { convolve(net.convs[2]) }), ("conv4", { convolve(net.convs[3]) }),
            ("conv5", { convolve(net.convs[4]) }), ("pool5", maxPool), ("flatten", {}),
        ]
        for (index, (name, step)) in blocks.enumerated() where index <= deepest {
            step()
            emit(name, x, ws: ws, n: n, first: first, destinations: destinations)
        }
    }

    /// Writes every output that reads `tap` from the map `x` (NCHW-flattened after its pool op;
    /// `flatten` is pool5 through `Identity`).
    private func emit(
        _ tap: String, _ x: Map, ws: AlexNetWorkspace, n: Int, first: Int, destinations: [UnsafeMutablePointer<Float>]
    ) {
        for (k, out) in outputs.enumerated() where out.tap == tap {
            let dim = out.dimension
            for i in 0..<n {
                let src = x.data + i * x.h * x.w * x.c
                Kernels.pool(
                    tap == "flatten" ? .identity : out.op, src, h: x.h, w: x.w, c: x.c, oh: out.shapeCHW[1],
                    ow: out.shapeCHW[2], dst: destinations[k] + (first + i) * dim, scratch: ws.poolScratch.pointer)
            }
        }
    }
}

/// One worker's buffers: two ping-pong activation maps, im2col scratch, pooling and LRN scratch.
final class AlexNetWorkspace: @unchecked Sendable {
    /// Target GEMM rows per im2col chunk.
    static let chunkRows = 256

    struct Plan {
        /// Largest activation (input included) of one image, in floats.
        var activation = 0
        /// Widest im2col row, widest channel count, largest pooled output.
        var rowK = 0, channels = 0, pooled = 0

        init(network: AlexNetNetwork, height: Int, width: Int, outputs: [FeatureOutput]) {
            var h = height, w = width
            activation = 3 * h * w
            channels = 3
            var layers = network.convs
            if let s = network.sobel { layers.insert(s, at: 0) }
            for layer in layers {
                h = layer.outputSize(h)
                w = layer.outputSize(w)
                activation = max(activation, h * w * layer.cout)
                rowK = max(rowK, layer.kPerGroup * layer.groups)
                channels = max(channels, layer.cin, layer.cout)
            }
            // Conv outputs are the largest maps: pools shrink and convs 2-5 keep the size.
            for out in outputs { pooled = max(pooled, out.shapeCHW.reduce(1, *)) }
        }

        var floatsPerImage: Int { 2 * activation }
        var fixedFloats: Int { AlexNetWorkspace.chunkRows * rowK + pooled + 2 * channels }
    }

    let a: FloatBuffer, b: FloatBuffer, scratch: FloatBuffer, poolScratch: FloatBuffer
    let squares: FloatBuffer, zeros: FloatBuffer
    let pointers: UnsafeMutablePointer<UnsafePointer<Float>>

    init(plan: Plan, microBatch: Int) {
        a = FloatBuffer(count: plan.activation * microBatch)
        b = FloatBuffer(count: plan.activation * microBatch)
        scratch = FloatBuffer(count: AlexNetWorkspace.chunkRows * plan.rowK)
        poolScratch = FloatBuffer(count: max(plan.pooled, 1))
        squares = FloatBuffer(count: plan.channels)
        zeros = FloatBuffer(count: plan.channels)
        pointers = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: 16)
        pointers.initialize(repeating: UnsafePointer(zeros.pointer), count: 16)
    }

    deinit { pointers.deallocate() }
}

extension AlexNetNetwork {
    /// Every convolution of a forward pass, at its input size (for `ConvTuner`): conv1 (and the
    /// Sobel filter) at the input, conv2 after pool1, conv3–5 after pool2 (pools: 3×3 stride 2).
    func convSites(height: Int, width: Int) -> [ConvSite] {
        var sites: [ConvSite] = []
        var h = height, w = width
        if let sobel { sites.append(ConvSite(layer: sobel, height: h, width: w)) }
        for (i, layer) in convs.enumerated() {
            sites.append(ConvSite(layer: layer, height: h, width: w))
            (h, w) = (layer.outputSize(h), layer.outputSize(w))
            if i < 2 {
                (h, w) = (
                    AlexNetSpec.outSize(h, kernel: 3, stride: 2, pad: 0),
                    AlexNetSpec.outSize(w, kernel: 3, stride: 2, pad: 0)
                )
            }
        }
        return sites
    }
}
