import Dispatch
import Foundation
import LinprobeBLAS
import LinprobeCore

/// Runs a SimCLRv2 ResNet over image batches and writes its one output (the global average of
/// the last stage) for every entry of the map. NHWC activations, im2col + sgemm convolutions,
/// the selective-kernel mixing per image; the batch is split across workers (`batch`) or one
/// worker drives a multi-threaded BLAS (`blas`). Workspaces are allocated once. Not reentrant.
public final class ResNetSKExtractor: TrunkExtractor, @unchecked Sendable {
    public let network: ResNetSKNetwork
    public let outputs: [FeatureOutput]
    public let inputHeight: Int
    public let inputWidth: Int
    public let threads: Int
    public let parallelism: TrunkParallelism
    public let microBatch: Int
    private let workspaces: [ResNetSKWorkspace]
    private let runner: TrunkBatchRunner
    /// The measured (or forced) parallelism; the convolutions are im2col + GEMM only.
    let tuning: ConvTuning

    init(
        network: ResNetSKNetwork, outputs: [FeatureOutput], inputHeight: Int, inputWidth: Int,
        options: TrunkRunOptions, microBatch: Int = 8
    ) throws {
        for out in outputs {
            _ = try network.spec.tapShape(out.tap, inputHeight: inputHeight, inputWidth: inputWidth)
        }
        self.network = network
        self.outputs = outputs
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        threads = options.threads
        let plan = ResNetSKWorkspace.Plan(network: network, height: inputHeight, width: inputWidth)
        let limit = (512 << 20) / 4 - plan.fixedFloats
        self.microBatch = max(1, min(microBatch, limit / max(1, plan.floatsPerImage)))
        tuning = ConvTuner.resolve(
            sites: network.convSites(height: inputHeight, width: inputWidth), options: options,
            microBatch: self.microBatch, chunkRows: ResNetSKWorkspace.chunkRows)
        parallelism = tuning.parallelism
        let resolved = options.with(parallelism: parallelism)
        let workers = resolved.workers
        if let excess = MemoryBudget.excess([plan.floatsPerImage * self.microBatch + plan.fixedFloats, 4, workers]) {
            throw LinprobeError.config(
                "input size \(inputHeight)×\(inputWidth): the ResNet-SK workspace memory \(excess); use smaller images or fewer threads"
            )
        }
        let mb = self.microBatch
        workspaces = (0..<workers).map { _ in ResNetSKWorkspace(plan: plan, microBatch: mb) }
        runner = TrunkBatchRunner(options: resolved, microBatch: self.microBatch)
    }

    public var outputDimensions: [Int] { outputs.map(\.dimension) }

    public var provenance: JSONValue {
        [
            "threads": .int(Int64(threads)), "parallelism": .string(parallelism.rawValue),
            "micro_batch": .int(Int64(microBatch)),
            "layout": "NHWC, BatchNorm folded into convolutions, im2col + sgemm",
            "tuning": tuning.provenance,
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

    private func forwardMicroBatch(
        _ ws: ResNetSKWorkspace, input: UnsafePointer<Float>, n: Int, first: Int,
        destinations: [UnsafeMutablePointer<Float>]
    ) {
        let net = network
        let scratch = ConvScratch(
            buffer: ws.scratch.pointer, capacity: ws.scratch.count, chunkRows: ResNetSKWorkspace.chunkRows,
            zeros: ws.zeros.pointer, pointers: ws.pointers)
        var cur = ws.x.pointer, other = ws.y.pointer
        var h = inputHeight, w = inputWidth, c = 3
        Kernels.nchwToNHWC(input, cur, n: n, c: 3, h: h, w: w)
        for layer in net.stem {
            Convolution.forward(
                layer, input: cur, n: n, inH: h, inW: w, output: other, epilogue: .bias(relu: true), scratch: scratch)
            (h, w, c) = (layer.outputSize(h), layer.outputSize(w), layer.cout)
            swap(&cur, &other)
        }
        let ph = ResNetSKSpec.outSize(h, kernel: 3, stride: 2, pad: 1)
        let pw = ResNetSKSpec.outSize(w, kernel: 3, stride: 2, pad: 1)
        Kernels.maxPoolNHWC(cur, other, n: n, h: h, w: w, c: c, kernel: 3, stride: 2, pad: 1, oh: ph, ow: pw)
        (h, w) = (ph, pw)
        swap(&cur, &other)
        for block in net.blocks {
            let oh = block.spatial.outputSize(h), ow = block.spatial.outputSize(w)
            var shortcut = UnsafePointer(cur)
            if let projection = block.projection {
                var source = UnsafePointer(cur), sh = h, sw = w
                if net.spec.selectiveKernel {
                    // ZeroPad2d((0, 1, 0, 1)) then AvgPool2d(2, stride): the 1×1 conv sees the pooled map.
                    Self.averagePool2x2(cur, ws.pooled.pointer, n: n, h: h, w: w, c: c, stride: block.stride)
                    (source, sh, sw) = (UnsafePointer(ws.pooled.pointer), oh, ow)
                }
                Convolution.forward(
                    projection, input: source, n: n, inH: sh, inW: sw, output: ws.shortcut.pointer,
                    epilogue: .bias(relu: false), scratch: scratch)
                shortcut = UnsafePointer(ws.shortcut.pointer)
            }
            Convolution.forward(
                block.reduce, input: cur, n: n, inH: h, inW: w, output: ws.t1.pointer, epilogue: .bias(relu: true),
                scratch: scratch)
            Convolution.forward(
                block.spatial, input: ws.t1.pointer, n: n, inH: h, inW: w, output: ws.t2.pointer,
                epilogue: .bias(relu: true), scratch: scratch)
            var middle = UnsafePointer(ws.t2.pointer)
            if let mixing = block.mixing {
                Self.select(mixing, ws.t2.pointer, ws.t3.pointer, n: n, pixels: oh * ow, scratch: ws.mixScratch.pointer)
                middle = UnsafePointer(ws.t3.pointer)
            }
            Convolution.forward(
                block.expand, input: middle, n: n, inH: oh, inW: ow, output: other, epilogue: .residual(shortcut),
                scratch: scratch)
            (h, w, c) = (oh, ow, block.expand.cout)
            swap(&cur, &other)
        }
        for (k, out) in outputs.enumerated() {
            for i in 0..<n {
                Kernels.globalAverage(
                    cur + i * h * w * c, hw: h * w, c: c, dst: destinations[k] + (first + i) * out.dimension)
            }
        }
    }

    /// `AvgPool2d(2, stride)` after `ZeroPad2d((0, 1, 0, 1))`: each window sums its pixels inside
    /// the map (the padded row and column are zeros) and divides by 4.
    static func averagePool2x2(
        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, n: Int, h: Int, w: Int, c: Int, stride: Int
    ) {
        let oh = ResNetSKSpec.outSize(h + 1, kernel: 2, stride: stride, pad: 0)
        let ow = ResNetSKSpec.outSize(w + 1, kernel: 2, stride: stride, pad: 0)
        for i in 0..<n {
            let s = src + i * h * w * c, d = dst + i * oh * ow * c
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let out = d + (oy * ow + ox) * c
                    out.update(repeating: 0, count: c)
                    for y in (oy * stride)..<min(oy * stride + 2, h) {
                        for x in (ox * stride)..<min(ox * stride + 2, w) {
                            Kernels.addInto(out, s + (y * w + x) * c, c)
                        }
                    }
                    Kernels.divide(out, c, 4)
                }
            }
        }
    }

    /// The selective kernel's choice: from the 2C-channel map `src` (two halves x1, x2), per image
    /// `g = mean(x1 + x2)`, `m = W2·relu(W1·g + b1)`, `a = softmax over the halves of m`, and
    /// `dst = a1·x1 + a2·x2` (C channels). `scratch` holds 5C + mid floats (g, hidden, m, a).
    static func select(
        _ mix: ResNetSKNetwork.Mixing, _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, n: Int,
        pixels: Int, scratch: UnsafeMutablePointer<Float>
    ) {
        let c = mix.channels, mid = mix.mid
        let g = scratch, hidden = scratch + c, m = scratch + c + mid, a = scratch + 3 * c + mid
        for i in 0..<n {
            let x = src + i * pixels * 2 * c, y = dst + i * pixels * c
            g.update(repeating: 0, count: c)
            for p in 0..<pixels {
                let row = x + p * 2 * c
                for j in 0..<c { g[j] += row[j] + row[c + j] }
            }
            Kernels.divide(g, c, Float(pixels))
            for o in 0..<mid {
                var s = mix.b1[o]
                for j in 0..<c { s += mix.w1[o * c + j] * g[j] }
                hidden[o] = max(s, 0)
            }
            for o in 0..<(2 * c) {
                var s: Float = 0
                for j in 0..<mid { s += mix.w2[o * mid + j] * hidden[j] }
                m[o] = s
            }
            for j in 0..<c {
                a[j] = 1 / (1 + expf(m[c + j] - m[j]))
                a[c + j] = 1 / (1 + expf(m[j] - m[c + j]))
            }
            for p in 0..<pixels {
                let row = x + p * 2 * c, out = y + p * c
                for j in 0..<c { out[j] = row[j] * a[j] + row[c + j] * a[c + j] }
            }
        }
    }
}

/// One worker's buffers, each sized by a walk over the network.
final class ResNetSKWorkspace: @unchecked Sendable {
    static let chunkRows = 256

    struct Plan {
        /// Per image, in floats: the two running maps, the pooled projection input, the
        /// shortcut, and the block's three intermediate maps.
        var map = 0, pooled = 0, shortcut = 0, t1 = 0, t2 = 0, t3 = 0
        var rowK = 0, channels = 0
        /// The selective kernels' per-image scratch (5C + mid).
        var mixing = 0

        init(network: ResNetSKNetwork, height: Int, width: Int) {
            var h = height, w = width
            map = 3 * h * w
            channels = 3
            for layer in network.stem {
                h = layer.outputSize(h)
                w = layer.outputSize(w)
                map = max(map, h * w * layer.cout)
                rowK = max(rowK, layer.kPerGroup)
            }
            h = ResNetSKSpec.outSize(h, kernel: 3, stride: 2, pad: 1)
            w = ResNetSKSpec.outSize(w, kernel: 3, stride: 2, pad: 1)
            for b in network.blocks {
                let oh = b.spatial.outputSize(h), ow = b.spatial.outputSize(w)
                pooled = max(pooled, oh * ow * b.reduce.cin)
                shortcut = max(shortcut, oh * ow * b.expand.cout)
                t1 = max(t1, h * w * b.reduce.cout)
                t2 = max(t2, oh * ow * b.spatial.cout)
                t3 = max(t3, oh * ow * b.reduce.cout)
                map = max(map, oh * ow * b.expand.cout)
                rowK = max(rowK, b.spatial.kPerGroup, b.projection?.kPerGroup ?? 0)
                channels = max(channels, b.spatial.cout, b.expand.cout, b.reduce.cin)
                if let m = b.mixing { mixing = max(mixing, 5 * m.channels + m.mid) }
                (h, w) = (oh, ow)
            }
        }

        var floatsPerImage: Int { 2 * map + pooled + shortcut + t1 + t2 + t3 }
        var fixedFloats: Int { ResNetSKWorkspace.chunkRows * rowK + channels + mixing }
    }

    let x: FloatBuffer, y: FloatBuffer, pooled: FloatBuffer, shortcut: FloatBuffer
    let t1: FloatBuffer, t2: FloatBuffer, t3: FloatBuffer
    let scratch: FloatBuffer, mixScratch: FloatBuffer, zeros: FloatBuffer
    let pointers: UnsafeMutablePointer<UnsafePointer<Float>>

    init(plan: Plan, microBatch nb: Int) {
        x = FloatBuffer(count: plan.map * nb)
        y = FloatBuffer(count: plan.map * nb)
        pooled = FloatBuffer(count: max(1, plan.pooled * nb))
        shortcut = FloatBuffer(count: max(1, plan.shortcut * nb))
        t1 = FloatBuffer(count: plan.t1 * nb)
        t2 = FloatBuffer(count: plan.t2 * nb)
        t3 = FloatBuffer(count: max(1, plan.t3 * nb))
        scratch = FloatBuffer(count: ResNetSKWorkspace.chunkRows * plan.rowK)
        mixScratch = FloatBuffer(count: max(1, plan.mixing))
        zeros = FloatBuffer(count: plan.channels)
        pointers = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: 16)
        pointers.initialize(repeating: UnsafePointer(zeros.pointer), count: 16)
    }

    deinit { pointers.deallocate() }
}

extension ResNetSKNetwork {
    /// Every convolution of a forward pass, at its input size (for `ConvTuner`).
    func convSites(height: Int, width: Int) -> [ConvSite] {
        var sites: [ConvSite] = []
        var h = height, w = width
        for layer in stem {
            sites.append(ConvSite(layer: layer, height: h, width: w))
            (h, w) = (layer.outputSize(h), layer.outputSize(w))
        }
        (h, w) = (
            ResNetSKSpec.outSize(h, kernel: 3, stride: 2, pad: 1), ResNetSKSpec.outSize(w, kernel: 3, stride: 2, pad: 1)
        )
        for block in blocks {
            let oh = block.spatial.outputSize(h), ow = block.spatial.outputSize(w)
            if let projection = block.projection {
                let pooled = spec.selectiveKernel
                sites.append(ConvSite(layer: projection, height: pooled ? oh : h, width: pooled ? ow : w))
            }
            sites.append(ConvSite(layer: block.reduce, height: h, width: w))
            sites.append(ConvSite(layer: block.spatial, height: h, width: w))
            sites.append(ConvSite(layer: block.expand, height: oh, width: ow))
            (h, w) = (oh, ow)
        }
        return sites
    }
}
