import Dispatch
import Foundation
import LinprobeBLAS
import LinprobeCore

/// Runs a RegNet over image batches and writes every requested tap (pool-op map order, repeats
/// allowed) from one forward pass that stops after the deepest tap. NHWC activations with the
/// batch folded into the GEMM rows; grouped 3×3 convolutions as im2col + one GEMM per group.
///
/// Threads: with `batch` parallelism (default) each worker runs whole images with a
/// single-threaded BLAS; with `blas` one worker drives a `threads`-way BLAS; `ConvTuner` chooses
/// when the options ask it to (and the algorithm of ungrouped 3×3 stride-1 shapes of an `auto`
/// network). Workspaces are allocated once. Not reentrant: call `forward` from one thread at a time.
public final class RegNetExtractor: TrunkExtractor, @unchecked Sendable {
    public let network: RegNetNetwork
    public let outputs: [FeatureOutput]
    public let inputHeight: Int
    public let inputWidth: Int
    public let threads: Int
    public let parallelism: TrunkParallelism
    public let microBatch: Int
    /// Depth of each output's tap: 0 = conv1, s + 1 = stage s, stages + 1 = avgpool / flatten.
    let levels: [Int]
    let deepest: Int
    let chunkRows = 512
    private let workspaces: [RegNetWorkspace]
    private let runner: TrunkBatchRunner
    let tuning: ConvTuning

    init(
        network: RegNetNetwork, outputs: [FeatureOutput], inputHeight: Int, inputWidth: Int, options: TrunkRunOptions,
        microBatch: Int = 8
    ) throws {
        let spec = network.spec
        self.network = network
        self.outputs = outputs
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        threads = options.threads
        guard let shapes = spec.tapShapes(inputHeight: inputHeight, inputWidth: inputWidth) else {
            throw LinprobeError.config("input size \(inputHeight)×\(inputWidth) is too small for the \(spec) trunk")
        }
        levels = try outputs.map { out in
            guard shapes[out.tap] != nil else {
                throw LinprobeError(.unsupported, "the \(spec) trunk has no tap \(out.tap)")
            }
            if out.tap == "conv1" { return 0 }
            if let s = spec.stageTaps.firstIndex(of: out.tap) { return s + 1 }
            return spec.stages.count + 1
        }
        deepest = levels.max() ?? spec.stages.count + 1
        let one = RegNetWorkspace.Plan(
            network: network, height: inputHeight, width: inputWidth, outputs: outputs,
            shapes: shapes, microBatch: 1, chunkRows: chunkRows)
        let room = (512 << 20) / 4 - one.fixedFloats
        self.microBatch = max(1, min(microBatch, room / max(1, one.perImageFloats)))
        let plan = RegNetWorkspace.Plan(
            network: network, height: inputHeight, width: inputWidth, outputs: outputs,
            shapes: shapes, microBatch: self.microBatch, chunkRows: chunkRows)
        var tuneOptions = options
        tuneOptions.algorithm = network.algorithm
        let sites = network.convSites(height: inputHeight, width: inputWidth, deepest: deepest)
        tuning = ConvTuner.resolve(
            sites: sites, options: tuneOptions, microBatch: self.microBatch, chunkRows: chunkRows)
        // Build the weights the plan runs (F(4×4) on demand) and free the others, as ResNet does.
        tuning.plan.keepOnlyPlanned(sites)
        parallelism = tuning.parallelism
        let resolved = options.with(parallelism: parallelism)
        let workers = resolved.workers
        if let excess = MemoryBudget.excess([plan.floats, 4, workers]) {
            throw LinprobeError.config(
                "input size \(inputHeight)×\(inputWidth) with \(workers) worker thread(s): the trunk's workspace memory \(excess); use smaller images or fewer threads"
            )
        }
        workspaces = (0..<workers).map { _ in RegNetWorkspace(plan: plan) }
        runner = TrunkBatchRunner(options: resolved, microBatch: self.microBatch)
    }

    public var outputDimensions: [Int] { outputs.map(\.dimension) }

    public var provenance: JSONValue {
        [
            "threads": .int(Int64(threads)), "parallelism": .string(parallelism.rawValue),
            "micro_batch": .int(Int64(microBatch)),
            "layout": "NHWC, BatchNorm folded into convolutions",
            "convolution": .string(
                "grouped 3x3 as im2col + sgemm per group; ungrouped 3x3 stride 1: "
                    + (network.algorithm == .auto ? "measured per shape (see tuning)" : network.algorithm.rawValue)),
            "algorithm": .string(network.algorithm.rawValue), "tuning": tuning.provenance,
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

    /// Pools and stores every output reading tap level `level` from an NHWC map.
    private func emit(
        level: Int, _ map: UnsafePointer<Float>, n: Int, h: Int, w: Int, c: Int, first: Int,
        destinations: [UnsafeMutablePointer<Float>], ws: RegNetWorkspace
    ) {
        for (k, out) in outputs.enumerated() where levels[k] == level {
            for i in 0..<n {
                let src = map + i * h * w * c
                let dst = destinations[k] + (first + i) * out.dimension
                if level == network.spec.stages.count + 1 {
                    // avgpool (AdaptiveAvgPool2d(1)) / flatten: the mean, then the op on 1×1.
                    Kernels.globalAverage(src, hw: h * w, c: c, dst: ws.poolScratch.pointer)
                    Kernels.pool(
                        out.op, ws.poolScratch.pointer, h: 1, w: 1, c: c, oh: out.shapeCHW[1], ow: out.shapeCHW[2],
                        dst: dst, scratch: ws.poolScratch.pointer + c)
                } else {
                    Kernels.pool(
                        out.op, src, h: h, w: w, c: c, oh: out.shapeCHW[1], ow: out.shapeCHW[2], dst: dst,
                        scratch: ws.poolScratch.pointer)
                }
            }
        }
    }

    private func forwardMicroBatch(
        _ ws: RegNetWorkspace, input: UnsafePointer<Float>, n: Int, first: Int,
        destinations: [UnsafeMutablePointer<Float>]
    ) {
        let net = network
        let scratch = ws.convScratch(chunkRows: chunkRows, plan: tuning.plan)
        var h = inputHeight, w = inputWidth
        Kernels.nchwToNHWC(input, ws.input.pointer, n: n, c: 3, h: h, w: w)
        let maxPool = net.spec.stemGeometry.maxPool
        Convolution.forward(
            net.stem, input: ws.input.pointer, n: n, inH: h, inW: w, output: maxPool ? ws.t1.pointer : ws.x.pointer,
            epilogue: .bias(relu: true), scratch: scratch)
        h = net.stem.outputSize(h)
        w = net.stem.outputSize(w)
        if maxPool {
            let ph = RegNetSpec.outSize(h, kernel: 3, stride: 2, pad: 1),
                pw = RegNetSpec.outSize(w, kernel: 3, stride: 2, pad: 1)
            Kernels.maxPoolNHWC(
                ws.t1.pointer, ws.x.pointer, n: n, h: h, w: w, c: net.spec.stemWidth, kernel: 3, stride: 2, pad: 1,
                oh: ph, ow: pw)
            h = ph
            w = pw
        }
        emit(
            level: 0, ws.x.pointer, n: n, h: h, w: w, c: net.spec.stemWidth, first: first, destinations: destinations,
            ws: ws)
        var current = ws.x.pointer, other = ws.y.pointer
        for (s, blocks) in net.stages.enumerated() where s < deepest {
            for block in blocks {
                (h, w) = runBlock(block, input: current, output: other, n: n, h: h, w: w, ws: ws, scratch: scratch)
                swap(&current, &other)
            }
            emit(
                level: s + 1, current, n: n, h: h, w: w, c: net.spec.stages[s].width, first: first,
                destinations: destinations, ws: ws)
        }
        if deepest == net.spec.stages.count + 1 {
            emit(
                level: deepest, current, n: n, h: h, w: w, c: net.spec.featureChannels, first: first,
                destinations: destinations, ws: ws)
        }
    }

    /// One `ResBottleneckBlock`; returns the output's spatial size.
    private func runBlock(
        _ block: RegNetNetwork.Block, input: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>, n: Int,
        h: Int, w: Int, ws: RegNetWorkspace, scratch: ConvScratch
    ) -> (Int, Int) {
        Convolution.forward(
            block.a, input: input, n: n, inH: h, inW: w, output: ws.t1.pointer, epilogue: .bias(relu: true),
            scratch: scratch)
        let oh = block.b.outputSize(h), ow = block.b.outputSize(w)
        Convolution.forward(
            block.b, input: ws.t1.pointer, n: n, inH: h, inW: w, output: ws.t2.pointer, epilogue: .bias(relu: true),
            scratch: scratch)
        if let se = block.se { RegNetExtractor.excite(se, ws.t2.pointer, n: n, hw: oh * ow, ws: ws) }
        let finish: Epilogue
        if let projection = block.projection, let bias = block.combinedBias {
            finish = .downsample(projection, input: input, inH: h, inW: w, combinedBias: bias.pointer)
        } else {
            finish = .residual(input)
        }
        Convolution.forward(
            block.c, input: ws.t2.pointer, n: n, inH: oh, inW: ow, output: output, epilogue: finish, scratch: scratch)
        return (oh, ow)
    }

    /// Squeeze-and-excitation on `n` NHWC maps in place: x · sigmoid(W2·relu(W1·mean(x) + b1) + b2).
    static func excite(
        _ se: RegNetNetwork.SqueezeExcitation, _ x: UnsafeMutablePointer<Float>, n: Int, hw: Int,
        ws: RegNetWorkspace
    ) {
        let c = se.channels, r = se.squeeze
        let mean = ws.seScratch.pointer, hidden = mean + n * c, gate = hidden + n * r
        for i in 0..<n { Kernels.globalAverage(x + i * hw * c, hw: hw, c: c, dst: mean + i * c) }
        for i in 0..<n { (hidden + i * r).update(from: se.b1.pointer, count: r) }
        BLAS.sgemm(m: n, n: r, k: c, a: mean, lda: c, b: se.w1.pointer, ldb: r, beta: 1, c: hidden, ldc: r)
        for j in 0..<(n * r) { hidden[j] = max(hidden[j], 0) }
        for i in 0..<n { (gate + i * c).update(from: se.b2.pointer, count: c) }
        BLAS.sgemm(m: n, n: c, k: r, a: hidden, lda: r, b: se.w2.pointer, ldb: c, beta: 1, c: gate, ldc: c)
        for j in 0..<(n * c) { gate[j] = 1 / (1 + Foundation.exp(-gate[j])) }
        for i in 0..<n {
            let g = gate + i * c
            for p in 0..<hw {
                let row = x + (i * hw + p) * c
                for j in 0..<c { row[j] *= g[j] }
            }
        }
    }
}

extension RegNetNetwork {
    /// Every convolution a forward pass through `deepest` runs, at its input size (for `ConvTuner`).
    func convSites(height: Int, width: Int, deepest: Int) -> [ConvSite] {
        var sites = [ConvSite(layer: stem, height: height, width: width)]
        var h = spec.stemOutput(height), w = spec.stemOutput(width)
        for (s, blocks) in stages.enumerated() where s < deepest {
            for block in blocks {
                let oh = block.b.outputSize(h), ow = block.b.outputSize(w)
                sites.append(ConvSite(layer: block.a, height: h, width: w))
                sites.append(ConvSite(layer: block.b, height: h, width: w))
                sites.append(ConvSite(layer: block.c, height: oh, width: ow))
                if let projection = block.projection { sites.append(ConvSite(layer: projection, height: h, width: w)) }
                (h, w) = (oh, ow)
            }
        }
        return sites
    }
}
