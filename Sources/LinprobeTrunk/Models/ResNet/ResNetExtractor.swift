import Dispatch
import Foundation
import LinprobeBLAS
import LinprobeCore

/// Runs the trunk over image batches and returns, for every entry of the pool-op map, the
/// pooled tap flattened in NCHW order — all taps from one forward pass that stops at the
/// deepest tap requested.
///
/// Threads: with `.batch` parallelism each of `threads` workers runs whole images through the
/// network with a single-threaded BLAS; with `.blas` one worker drives a `threads`-way BLAS.
/// With `tuneParallelism` (and for a trunk built with `.auto`, the algorithm of each 3×3
/// stride-1 shape) `ConvTuner` measures once per machine and network shape set and caches the
/// choice. Each worker owns a workspace allocated once, so the hot path allocates nothing.
///
/// Not reentrant: call `forward` from one thread at a time.
public final class ResNetExtractor: TrunkExtractor, @unchecked Sendable {
    public typealias Parallelism = TrunkParallelism

    public struct Options: Sendable, Equatable {
        /// Worker threads (BLAS threads with `.blas`). Default: all cores.
        public var threads: Int
        public var parallelism: Parallelism
        /// Measure whether batch split or BLAS threading is faster (`parallelism` is the fallback).
        public var tuneParallelism: Bool
        /// Images per worker per pass through the network (bounds the workspace; lowered
        /// automatically so that one worker's workspace stays within `workspaceLimitBytes`).
        public var microBatch: Int
        /// Upper bound of one worker's workspace (large inputs get smaller micro-batches).
        public var workspaceLimitBytes: Int
        /// Target GEMM rows per chunk (im2col is built and the epilogue applied per chunk).
        public var chunkRows: Int

        public init(
            threads: Int = ProcessInfo.processInfo.activeProcessorCount, parallelism: Parallelism = .batch,
            microBatch: Int = 8, chunkRows: Int = 512, workspaceLimitBytes: Int = 512 << 20,
            tuneParallelism: Bool = false
        ) {
            self.threads = max(1, threads)
            self.parallelism = parallelism
            self.tuneParallelism = tuneParallelism
            self.microBatch = max(1, microBatch)
            self.chunkRows = max(16, chunkRows)
            self.workspaceLimitBytes = workspaceLimitBytes
        }
    }

    public let trunk: ResNetTrunk
    /// One per map entry (or one `flatten` for an empty map), in map order.
    public let outputs: [FeatureOutput]
    /// The ResNet tap of each output.
    private let taps: [Tap]
    public let inputHeight: Int
    public let inputWidth: Int
    public let options: Options
    /// The deepest tap computed.
    public let deepestTap: Tap

    /// Images per worker per pass, after the workspace limit.
    public let microBatch: Int
    /// The parallelism in use (`options.parallelism`, or the measured one).
    public let parallelism: Parallelism
    /// How the parallelism and the per-shape algorithms were chosen.
    let tuning: ConvTuning

    private let shapes: [Tap: [Int]]
    private let workspaces: [Workspace]
    private let workers: Int
    /// `forward` uses the workspaces; concurrent calls are serialised.
    private let lock = NSLock()

    /// An extractor for the outputs of a pool-op map.
    public convenience init(
        trunk: ResNetTrunk, map: PoolOpsMap, inputHeight: Int, inputWidth: Int, options: Options = Options()
    ) throws {
        let outputs = try map.outputs(spec: trunk.spec, inputHeight: inputHeight, inputWidth: inputWidth)
        try self.init(
            trunk: trunk, outputs: outputs, inputHeight: inputHeight, inputWidth: inputWidth, options: options)
    }

    /// An extractor for outputs computed by `PoolOpsMap.outputs(architecture:…)`.
    public convenience init(
        trunk: ResNetTrunk, outputs: [FeatureOutput], inputHeight: Int, inputWidth: Int, options: Options = Options()
    ) throws {
        try self.init(
            trunk: trunk, outputs: outputs, inputHeight: inputHeight, inputWidth: inputWidth, options: options,
            tuning: nil)
    }

    /// `tuning`: a fixed choice instead of `ConvTuner`'s (tests).
    init(
        trunk: ResNetTrunk, outputs: [FeatureOutput], inputHeight: Int, inputWidth: Int, options: Options,
        tuning fixed: ConvTuning?
    ) throws {
        self.trunk = trunk
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        self.options = options
        guard inputHeight > 0, inputWidth > 0 else {
            throw LinprobeError.config("input size \(inputHeight)×\(inputWidth) is not a valid image size")
        }
        if let excess = MemoryBudget.excess([3, inputHeight, inputWidth, 4]) {
            throw LinprobeError.config(
                "input size \(inputHeight)×\(inputWidth) (from the transforms): one image tensor \(excess)")
        }
        let taps = try outputs.map { out in
            guard let tap = Tap(rawValue: out.tap) else {
                throw LinprobeError(.unsupported, "the \(trunk.spec) trunk has no tap \(out.tap)")
            }
            return tap
        }
        self.outputs = outputs
        self.taps = taps
        self.deepestTap = taps.max() ?? .flatten
        guard let shapes = trunk.spec.tapShapes(inputHeight: inputHeight, inputWidth: inputWidth) else {
            throw LinprobeError.config(
                "input size \(inputHeight)×\(inputWidth) is too small for the \(trunk.spec) trunk")
        }
        self.shapes = shapes
        let single = try WorkspacePlan(
            trunk: trunk, height: inputHeight, width: inputWidth, deepest: deepestTap,
            taps: taps, outputs: outputs, shapes: shapes, options: options, microBatch: 1)
        let room = options.workspaceLimitBytes - single.fixedBytes
        microBatch = max(1, min(options.microBatch, room / max(1, single.perImageBytes)))
        let sites = Self.convSites(trunk: trunk, height: inputHeight, width: inputWidth, deepest: deepestTap)
        tuning =
            fixed
            ?? ConvTuner.resolve(
                sites: sites,
                options: TrunkRunOptions(
                    threads: options.threads, parallelism: options.parallelism, algorithm: trunk.algorithm,
                    tuneParallelism: options.tuneParallelism),
                microBatch: microBatch, chunkRows: options.chunkRows)
        // The trunk's layers build the weights this extractor's plan runs and keep only those (a
        // later extractor on the same trunk chooses among them; none may be built while another
        // of the same trunk is running). Fixed plans (tests) keep the rest.
        if fixed == nil { tuning.plan.keepOnlyPlanned(sites) } else { tuning.plan.prepare(sites) }
        parallelism = tuning.parallelism
        workers = parallelism == .batch ? options.threads : 1
        let plan = try WorkspacePlan(
            trunk: trunk, height: inputHeight, width: inputWidth, deepest: deepestTap,
            taps: taps, outputs: outputs, shapes: shapes, options: options, microBatch: microBatch)
        if let excess = MemoryBudget.excess([plan.floats, 4, workers]) {
            throw LinprobeError.config(
                "input size \(inputHeight)×\(inputWidth) with \(workers) worker thread\(workers == 1 ? "" : "s"): "
                    + "the trunk's workspace memory \(excess); use smaller images or fewer threads")
        }
        workspaces = (0..<workers).map { _ in Workspace(plan: plan) }
    }

    /// Bytes held by the workspaces (all workers).
    public var workspaceBytes: Int { workspaces.reduce(0) { $0 + $1.bytes } }

    /// Settings recorded in provenance.
    public var provenance: JSONValue {
        [
            "threads": .int(Int64(options.threads)),
            "parallelism": .string(parallelism.rawValue),
            "micro_batch": .int(Int64(microBatch)),
            "layout": "NHWC, BatchNorm folded into convolutions",
            "convolution": .string(
                [
                    .winograd: "Winograd F(2x2,3x3) for 3x3 stride-1 convolutions, im2col + sgemm for the rest",
                    .winograd4: "Winograd F(4x4,3x3) for 3x3 stride-1 convolutions, im2col + sgemm for the rest",
                    .im2col: "im2col + sgemm",
                    .auto:
                        "per 3x3 stride-1 shape, Winograd F(2x2,3x3), Winograd F(4x4,3x3) or im2col + sgemm (see tuning); im2col + sgemm for the rest",
                ][trunk.algorithm] ?? trunk.algorithm.rawValue),
            "algorithm": .string(trunk.algorithm.rawValue),
            "tuning": tuning.provenance,
            "blas": .string(BLAS.config),
            "blas_core": .string(BLAS.coreName),
        ]
    }

    /// Runs `count` images (NCHW float32, `height`×`width`, 3 channels, already normalised)
    /// and writes output k's features for image i to `destinations[k] + i·outputs[k].dimension`.
    public func forward(
        input: UnsafePointer<Float>, count: Int, height: Int, width: Int,
        destinations: [UnsafeMutablePointer<Float>]
    ) throws {
        guard height == inputHeight, width == inputWidth else {
            throw LinprobeError(
                .incompatible,
                "image tensors are \(height)×\(width) but the extractor was configured for \(inputHeight)×\(inputWidth) (every image of a split must have the same size)"
            )
        }
        guard destinations.count == outputs.count else {
            throw LinprobeError(.usage, "forward needs \(outputs.count) destinations, got \(destinations.count)")
        }
        guard count > 0 else { return }
        lock.lock()
        defer { lock.unlock() }
        // OpenBLAS's thread count is process-wide: set ours for this call, restore the caller's after.
        let previousThreads = BLAS.threads
        BLAS.setThreads(parallelism == .blas ? options.threads : 1)
        defer { BLAS.setThreads(previousThreads) }
        let imageSize = 3 * height * width
        let used = min(workers, count)
        let job = Job(input: input, destinations: destinations)
        if used == 1 {
            run(worker: 0, range: 0..<count, job: job, imageSize: imageSize)
        } else {
            DispatchQueue.concurrentPerform(iterations: used) { w in
                let lo = count * w / used, hi = count * (w + 1) / used
                self.run(worker: w, range: lo..<hi, job: job, imageSize: imageSize)
            }
        }
    }

    public var outputDimensions: [Int] { outputs.map(\.dimension) }

    public func forward(input: UnsafePointer<Float>, count: Int, destinations: [UnsafeMutablePointer<Float>]) throws {
        try forward(input: input, count: count, height: inputHeight, width: inputWidth, destinations: destinations)
    }

    /// Convenience: `count` images in an array, features as one array per output.
    public func forward(_ input: [Float], count: Int) throws -> [[Float]] {
        precondition(
            input.count == count * 3 * inputHeight * inputWidth,
            "input holds \(input.count) values, not \(count) images")
        var results = outputs.map { [Float](repeating: 0, count: count * $0.dimension) }
        let buffers = results.indices.map { i in FloatBuffer(count: results[i].count) }
        try input.withUnsafeBufferPointer { p in
            guard let base = p.baseAddress else { return }  // no images
            try forward(
                input: base, count: count, height: inputHeight, width: inputWidth,
                destinations: buffers.map(\.pointer))
        }
        for i in results.indices {
            results[i] = Array(UnsafeBufferPointer(start: buffers[i].pointer, count: results[i].count))
        }
        return results
    }

    private struct Job: @unchecked Sendable {
        let input: UnsafePointer<Float>
        let destinations: [UnsafeMutablePointer<Float>]
    }

    private func run(worker: Int, range: Range<Int>, job: Job, imageSize: Int) {
        let ws = workspaces[worker]
        var start = range.lowerBound
        while start < range.upperBound {
            let nb = min(microBatch, range.upperBound - start)
            forwardMicroBatch(
                ws, input: job.input + start * imageSize, n: nb, firstImage: start, destinations: job.destinations)
            start += nb
        }
    }

    // MARK: - The network, on one micro-batch

    private func forwardMicroBatch(
        _ ws: Workspace, input: UnsafePointer<Float>, n: Int, firstImage: Int,
        destinations: [UnsafeMutablePointer<Float>]
    ) {
        let spec = trunk.spec
        let scratch = ConvScratch(
            buffer: ws.scratch.pointer, capacity: ws.scratch.count, chunkRows: options.chunkRows,
            zeros: ws.zeros.pointer, pointers: ws.pointers, plan: tuning.plan)
        var h = inputHeight, w = inputWidth

        func emit(_ tap: Tap, _ map: UnsafePointer<Float>, h: Int, w: Int, c: Int) {
            for (k, out) in outputs.enumerated() where taps[k] == tap {
                let dim = out.dimension
                for i in 0..<n {
                    let src = map + i * h * w * c
                    let dst = destinations[k] + (firstImage + i) * dim
                    if tap == .res5avg || tap == .flatten {
                        // The trunk's AdaptiveAvgPool2d(1); Identity (the only op allowed on flatten) keeps it.
                        Kernels.globalAverage(src, hw: h * w, c: c, dst: ws.poolScratch.pointer)
                        Kernels.pool(
                            out.op, ws.poolScratch.pointer, h: 1, w: 1, c: c, oh: out.shapeCHW[1], ow: out.shapeCHW[2],
                            dst: dst, scratch: ws.poolScratch.pointer + c)
                    } else {
                        Kernels.pool(
                            out.op, src, h: h, w: w, c: c, oh: out.shapeCHW[1], ow: out.shapeCHW[2],
                            dst: dst, scratch: ws.poolScratch.pointer)
                    }
                }
            }
        }

        // Stem.
        Kernels.nchwToNHWC(input, ws.input.pointer, n: n, c: 3, h: h, w: w)
        Convolution.forward(
            trunk.stem, input: ws.input.pointer, n: n, inH: h, inW: w, output: ws.s.pointer,
            epilogue: .bias(relu: true), scratch: scratch)
        h = trunk.stem.outputSize(h)
        w = trunk.stem.outputSize(w)
        let c1 = spec.stemChannels
        emit(.conv1, ws.s.pointer, h: h, w: w, c: c1)
        if deepestTap == .conv1 { return }
        let ph = ResNetSpec.outSize(h, kernel: 3, stride: 2, pad: 1),
            pw = ResNetSpec.outSize(w, kernel: 3, stride: 2, pad: 1)
        Kernels.maxPoolNHWC(
            ws.s.pointer, ws.a.pointer, n: n, h: h, w: w, c: c1, kernel: 3, stride: 2, pad: 1, oh: ph, ow: pw)
        h = ph
        w = pw
        emit(.res1, ws.a.pointer, h: h, w: w, c: c1)
        if deepestTap == .res1 { return }

        var current = ws.a.pointer, other = ws.s.pointer
        let stageTaps: [Tap] = [.res2, .res3, .res4, .res5]
        for (i, blocks) in trunk.stages.enumerated() {
            for block in blocks {
                let oh = block.conv2.outputSize(block.conv1.outputSize(h))
                let ow = block.conv2.outputSize(block.conv1.outputSize(w))
                let last = block.last
                let finish: Epilogue
                if let ds = block.downsample, let bias = block.combinedBias {
                    finish = .downsample(ds, input: current, inH: h, inW: w, combinedBias: bias.pointer)
                } else {
                    finish = .residual(current)
                }
                let h1 = block.conv1.outputSize(h), w1 = block.conv1.outputSize(w)
                Convolution.forward(
                    block.conv1, input: current, n: n, inH: h, inW: w, output: ws.t1.pointer,
                    epilogue: .bias(relu: true), scratch: scratch)
                if let conv3 = block.conv3 {
                    Convolution.forward(
                        block.conv2, input: ws.t1.pointer, n: n, inH: h1, inW: w1, output: ws.t2.pointer,
                        epilogue: .bias(relu: true), scratch: scratch)
                    Convolution.forward(
                        conv3, input: ws.t2.pointer, n: n, inH: oh, inW: ow, output: other,
                        epilogue: finish, scratch: scratch)
                } else {
                    Convolution.forward(
                        last, input: ws.t1.pointer, n: n, inH: h1, inW: w1, output: other,
                        epilogue: finish, scratch: scratch)
                }
                swap(&current, &other)
                h = oh
                w = ow
            }
            let c = spec.outputChannels(stage: i)
            emit(stageTaps[i], current, h: h, w: w, c: c)
            if deepestTap == stageTaps[i] { return }
        }
        emit(.res5avg, current, h: h, w: w, c: spec.featureChannels)
        emit(.flatten, current, h: h, w: w, c: spec.featureChannels)
    }
}

extension ResNetExtractor {
    /// Every convolution a forward pass up to `deepest` runs, at its input size (for `ConvTuner`).
    static func convSites(trunk: ResNetTrunk, height: Int, width: Int, deepest: Tap) -> [ConvSite] {
        var sites = [ConvSite(layer: trunk.stem, height: height, width: width)]
        guard deepest > .res1 else { return sites }
        var h = ResNetSpec.outSize(trunk.stem.outputSize(height), kernel: 3, stride: 2, pad: 1)
        var w = ResNetSpec.outSize(trunk.stem.outputSize(width), kernel: 3, stride: 2, pad: 1)
        let stageTaps: [Tap] = [.res2, .res3, .res4, .res5]
        for (i, blocks) in trunk.stages.enumerated() {
            for block in blocks {
                let h1 = block.conv1.outputSize(h), w1 = block.conv1.outputSize(w)
                sites.append(ConvSite(layer: block.conv1, height: h, width: w))
                sites.append(ConvSite(layer: block.conv2, height: h1, width: w1))
                let h2 = block.conv2.outputSize(h1), w2 = block.conv2.outputSize(w1)
                if let conv3 = block.conv3 { sites.append(ConvSite(layer: conv3, height: h2, width: w2)) }
                if let ds = block.downsample { sites.append(ConvSite(layer: ds, height: h, width: w)) }
                h = h2
                w = w2
            }
            if deepest == stageTaps[i] { break }
        }
        return sites
    }
}

/// Buffer sizes (in floats) for one worker, from a walk over the network up to the deepest tap.
struct WorkspacePlan {
    var input = 0, s = 0, a = 0, t1 = 0, t2 = 0, scratch = 0, poolScratch = 0, zeros = 0

    /// Bytes that grow with the micro-batch (activations), per image.
    var perImageBytes: Int { (input + s + a + t1 + t2) * 4 / max(1, microBatch) }
    /// Bytes that do not (GEMM scratch, pooling scratch).
    var fixedBytes: Int { (scratch + poolScratch + zeros) * 4 }
    /// Floats of one worker's workspace (what `Workspace` allocates).
    var floats: Int { input + s + a + t1 + t2 + scratch + poolScratch + zeros }
    /// Scratch for one chunk of any layer stays within this many floats (8 MB), but a chunk
    /// always gets at least 64 rows so that its GEMMs stay efficient.
    static let scratchBudget = 2 << 20
    let microBatch: Int

    init(
        trunk: ResNetTrunk, height: Int, width: Int, deepest: Tap, taps: [Tap], outputs: [FeatureOutput],
        shapes: [Tap: [Int]], options: ResNetExtractor.Options, microBatch nb: Int
    ) throws {
        self.microBatch = nb
        let spec = trunk.spec
        func chunkScratch(_ layer: ConvLayer, extra: Int = 0) -> Int {
            layer.chunkScratchFloats(chunkRows: options.chunkRows, budget: WorkspacePlan.scratchBudget, extra: extra)
        }
        input = nb * 3 * height * width
        var h = trunk.stem.outputSize(height), w = trunk.stem.outputSize(width)
        s = nb * h * w * spec.stemChannels
        scratch = chunkScratch(trunk.stem)
        h = ResNetSpec.outSize(h, kernel: 3, stride: 2, pad: 1)
        w = ResNetSpec.outSize(w, kernel: 3, stride: 2, pad: 1)
        a = nb * h * w * spec.stemChannels
        let stageTaps: [Tap] = [.res2, .res3, .res4, .res5]
        if deepest > .res1 {
            for (i, blocks) in trunk.stages.enumerated() {
                for block in blocks {
                    let h1 = block.conv1.outputSize(h), w1 = block.conv1.outputSize(w)
                    t1 = max(t1, nb * h1 * w1 * block.conv1.cout)
                    let h2 = block.conv2.outputSize(h1), w2 = block.conv2.outputSize(w1)
                    if block.conv3 != nil { t2 = max(t2, nb * h2 * w2 * block.conv2.cout) }
                    let outSize = nb * h2 * w2 * block.last.cout
                    s = max(s, outSize)
                    a = max(a, outSize)
                    scratch = max(scratch, chunkScratch(block.conv1), chunkScratch(block.conv2))
                    zeros = max(zeros, block.conv1.cin, block.conv2.cin)
                    let dsExtra = block.downsample.map { $0.isPointwise ? 0 : $0.cin } ?? 0
                    if let c3 = block.conv3 {
                        scratch = max(scratch, chunkScratch(c3, extra: dsExtra))
                    } else {
                        scratch = max(scratch, chunkScratch(block.conv2, extra: dsExtra))
                    }
                    h = h2
                    w = w2
                }
                if deepest == stageTaps[i] { break }
            }
        }
        for (out, tap) in zip(outputs, taps) {
            guard let tapShape = shapes[tap] else {
                throw LinprobeError(.unsupported, "feature extractor: the \(spec) trunk has no tap \(tap.rawValue)")
            }
            poolScratch = max(poolScratch, out.shapeCHW.reduce(1, *) + tapShape[0] * 2)
        }
    }
}

/// One worker's buffers.
final class Workspace: @unchecked Sendable {
    let input: FloatBuffer, s: FloatBuffer, a: FloatBuffer, t1: FloatBuffer, t2: FloatBuffer
    let scratch: FloatBuffer, poolScratch: FloatBuffer, zeros: FloatBuffer
    let pointers: UnsafeMutablePointer<UnsafePointer<Float>>

    init(plan: WorkspacePlan) {
        zeros = FloatBuffer(count: plan.zeros)
        pointers = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: 16)
        pointers.initialize(repeating: UnsafePointer(zeros.pointer), count: 16)
        input = FloatBuffer(count: plan.input)
        s = FloatBuffer(count: plan.s)
        a = FloatBuffer(count: plan.a)
        t1 = FloatBuffer(count: plan.t1)
        t2 = FloatBuffer(count: plan.t2)
        scratch = FloatBuffer(count: plan.scratch)
        poolScratch = FloatBuffer(count: plan.poolScratch)
    }

    deinit { pointers.deallocate() }

    var bytes: Int { [input, s, a, t1, t2, scratch, poolScratch, zeros].reduce(0) { $0 + $1.count * 4 } }
}
