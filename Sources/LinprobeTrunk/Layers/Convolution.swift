import Foundation
import LinprobeBLAS
import LinprobeCore

/// A convolution with its BatchNorm folded in (weights scaled per output channel, the BN shift
/// as a bias), laid out for NHWC GEMMs: for group g, a K×(Cout/G) row-major matrix with
/// K ordered (ky, kx, ci) — the order of an NHWC im2col row.
final class ConvLayer: @unchecked Sendable {
    let cin: Int, cout: Int, kernel: Int, stride: Int, pad: Int, groups: Int
    /// im2col/GEMM weights (nil when the layer runs only as Winograd).
    private(set) var gemmWeights: FloatBuffer?
    /// Winograd F(2×2, 3×3) weights U = G·g·Gᵀ: 16 matrices of Cin×Cout (nil: not held).
    private(set) var winograd: FloatBuffer?
    /// Winograd F(4×4, 3×3) weights: 36 matrices of Cin×Cout (nil: not held).
    private(set) var winograd4: FloatBuffer?
    /// The GEMM weights (only called when they exist: `Convolution.forward` checks).
    var weights: FloatBuffer { gemmWeights ?? FloatBuffer(count: 1) }
    let bias: FloatBuffer

    /// Input channels per group.
    var cinPerGroup: Int { cin / groups }
    /// Output channels per group.
    var coutPerGroup: Int { cout / groups }
    /// GEMM depth per group.
    var kPerGroup: Int { kernel * kernel * cinPerGroup }
    /// True when the input rows are the GEMM's A matrix as they are (1×1, stride 1, no padding).
    var isPointwise: Bool { kernel == 1 && stride == 1 && pad == 0 }

    func outputSize(_ n: Int) -> Int { (n + 2 * pad - kernel) / stride + 1 }

    /// Whether a convolution can run as Winograd F(2×2, 3×3): 3×3, stride 1, padding 1, no groups.
    static func winogradEligible(kernel: Int, stride: Int, pad: Int, groups: Int, cin: Int, cout: Int) -> Bool {
        kernel == 3 && stride == 1 && pad == 1 && groups == 1 && cin % 4 == 0 && cout % 4 == 0
    }

    /// The algorithms this layer can run (Winograd only when eligible and asked for), in the order
    /// of preference when a plan names none of them. An `auto` layer builds its F(4×4, 3×3)
    /// weights only when `prepare` asks for them (tuning, or a plan that runs them).
    private(set) var algorithms: [ConvAlgorithm] = []

    /// The Winograd weights of `tile`, if built.
    func winogradWeights(_ tile: WinogradTile) -> FloatBuffer? { tile == .f2 ? winograd : winograd4 }

    /// Whether the weights of `algorithm` are built.
    func holds(_ algorithm: ConvAlgorithm) -> Bool {
        switch algorithm {
        case .winograd: winograd != nil
        case .winograd4: winograd4 != nil
        case .im2col: gemmWeights != nil
        case .auto: false
        }
    }

    /// `requested` when the layer holds its weights, else the first algorithm it holds.
    func resolved(_ requested: ConvAlgorithm) -> ConvAlgorithm {
        holds(requested) ? requested : algorithms.first(where: holds) ?? .im2col
    }

    /// Builds the weights of `algorithm` if the layer can run it and does not hold them yet
    /// (F(4×4, 3×3) from the GEMM weights, in double until the final rounding). Not thread-safe:
    /// for the tuner and extractors, before any forward pass uses the layer.
    func prepare(_ algorithm: ConvAlgorithm) {
        guard algorithm == .winograd4, winograd4 == nil, algorithms.contains(.winograd4), let g = gemmWeights
        else { return }
        let folded = (0..<g.count).map { Double(g.pointer[$0]) }
        winograd4 = Winograd.transformWeights(.f4, folded, cin: cin, cout: cout)
    }

    /// Floats of the weights `algorithm` reads, built or not.
    func weightFloats(_ algorithm: ConvAlgorithm) -> Int {
        switch algorithm {
        case .winograd: 16 * cin * cout
        case .winograd4: 36 * cin * cout
        case .im2col: kPerGroup * cout
        case .auto: 0
        }
    }

    /// Frees the weights of every algorithm but `algorithm` and leaves it the only one (after
    /// tuning chose it for every shape this layer runs at); a layer that cannot run it keeps all.
    func keepOnly(_ algorithm: ConvAlgorithm) {
        guard algorithms.contains(algorithm) else { return }
        prepare(algorithm)
        guard holds(algorithm) else { return }
        if algorithm != .im2col { gemmWeights = nil }
        if algorithm != .winograd { winograd = nil }
        if algorithm != .winograd4 { winograd4 = nil }
        algorithms = [algorithm]
    }

    /// Scratch floats one chunk of this layer needs, whichever of its algorithms runs: `extra`
    /// floats per row for a strided downsample fused into the epilogue, `chunkRows` rows (at
    /// least 64 when a row alone is large, within `budget` floats otherwise).
    func chunkScratchFloats(chunkRows: Int, budget: Int, extra: Int = 0) -> Int {
        var perRows: [Int] = []
        if algorithms.contains(.winograd) {
            perRows.append(Winograd.scratchFloats(.f2, cin: cin, cout: cout, tiles: 1))
        }
        if algorithms.contains(.winograd4) {
            perRows.append(Winograd.scratchFloats(.f4, cin: cin, cout: cout, tiles: 1))
        }
        if algorithms.contains(.im2col) { perRows.append((isPointwise ? 0 : kPerGroup * groups) + extra) }
        return perRows.map { perRow in
            perRow > 0 ? perRow * min(chunkRows, max(64, budget / perRow)) : 0
        }.max() ?? 0
    }

    /// Folds `bn` into `weight` (PyTorch layout [Cout, Cin/G, k, k]) in double precision.
    /// `swapInputRB` reverses the input channels (VISSL's `bgr` input: the trunk sees x[:, [2, 1, 0]]).
    /// `algorithm`: `.im2col` keeps GEMM weights only; `.winograd` / `.winograd4` that Winograd's
    /// weights only when the layer is eligible; `.auto` can run all three on an eligible layer
    /// (GEMM and F(2×2) weights built now, F(4×4) by `prepare`; the extractor's `ConvPlan`
    /// picks, and `keepOnly` frees the others once it has).
    convenience init(
        weight: [Float], shape: [Int], stride: Int, pad: Int, groups: Int,
        bn: (gamma: [Float], beta: [Float], mean: [Float], variance: [Float]), eps: Double = 1e-5,
        swapInputRB: Bool = false, useWinograd: Bool = false, name: String
    ) throws {
        try self.init(
            weight: weight, shape: shape, stride: stride, pad: pad, groups: groups, bn: bn, eps: eps,
            swapInputRB: swapInputRB, algorithm: useWinograd ? .winograd : .im2col, name: name)
    }

    init(
        weight: [Float], shape: [Int], stride: Int, pad: Int, groups: Int,
        bn: (gamma: [Float], beta: [Float], mean: [Float], variance: [Float]), eps: Double = 1e-5,
        swapInputRB: Bool = false, algorithm: ConvAlgorithm, name: String
    ) throws {
        let (cout, cinPerGroup, kh, kw) = (shape[0], shape[1], shape[2], shape[3])
        precondition(kh == kw && cout % groups == 0, "conv \(name): unexpected shape \(shape)")
        self.cin = cinPerGroup * groups
        self.cout = cout
        self.kernel = kh
        self.stride = stride
        self.pad = pad
        self.groups = groups
        let og = cout / groups
        let k = kh * kw * cinPerGroup
        var scales = [Double](repeating: 0, count: cout)
        let b = FloatBuffer(count: cout)
        for o in 0..<cout {
            let variance = Double(bn.variance[o])
            guard variance + eps > 0, variance.isFinite else {
                throw LinprobeError(
                    .numerical,
                    "\(name): BatchNorm running_var[\(o)] = \(variance) is not a variance; the checkpoint is corrupt")
            }
            scales[o] = Double(bn.gamma[o]) / (variance + eps).squareRoot()
            b.pointer[o] = Float(Double(bn.beta[o]) - Double(bn.mean[o]) * scales[o])
        }
        bias = b
        // Folded weights in our layout [g][(ky, kx, ci)][co]: in double for the Winograd transform,
        // else straight to float32 (no double copy: SEER's largest layer alone is 663 M weights).
        func fold(_ store: (Int, Double) -> Void) {
            for o in 0..<cout {
                let g = o / og, oo = o % og
                let base = g * k * og
                for ci in 0..<cinPerGroup {
                    let source = swapInputRB ? cinPerGroup - 1 - ci : ci
                    for ky in 0..<kh {
                        for kx in 0..<kw {
                            store(
                                base + ((ky * kw + kx) * cinPerGroup + ci) * og + oo,
                                Double(weight[((o * cinPerGroup + source) * kh + ky) * kw + kx]) * scales[o])
                        }
                    }
                }
            }
        }
        let eligible = ConvLayer.winogradEligible(
            kernel: kh, stride: stride, pad: pad, groups: groups, cin: cinPerGroup, cout: cout)
        if algorithm != .im2col && eligible {
            var folded = [Double](repeating: 0, count: cout * k)
            fold { folded[$0] = $1 }
            let f2 = algorithm == .auto || algorithm == .winograd
            winograd = f2 ? Winograd.transformWeights(.f2, folded, cin: cinPerGroup, cout: cout) : nil
            winograd4 =
                algorithm == .winograd4 ? Winograd.transformWeights(.f4, folded, cin: cinPerGroup, cout: cout) : nil
            algorithms = algorithm == .auto ? [.winograd, .winograd4, .im2col] : [algorithm]
            if algorithm == .auto {
                let w = FloatBuffer(count: cout * k)
                for i in 0..<(cout * k) { w.pointer[i] = Float(folded[i]) }
                gemmWeights = w
            } else {
                gemmWeights = nil
            }
        } else {
            winograd = nil
            winograd4 = nil
            algorithms = [.im2col]
            let w = FloatBuffer(count: cout * k)
            fold { w.pointer[$0] = Float($1) }
            gemmWeights = w
        }
    }
}

/// How a convolution's output is finished, chunk by chunk while it is still in cache.
enum Epilogue {
    /// bias, then ReLU if requested.
    case bias(relu: Bool)
    /// bias + residual (same shape as the output), then ReLU.
    case residual(UnsafePointer<Float>)
    /// A second GEMM (the 1×1 downsample of the block input) accumulated into the output,
    /// then `combinedBias` (both biases) and ReLU.
    case downsample(ConvLayer, input: UnsafePointer<Float>, inH: Int, inW: Int, combinedBias: UnsafePointer<Float>)
}

/// Per-worker scratch space for im2col, strided gathers and Winograd transforms.
struct ConvScratch {
    let buffer: UnsafeMutablePointer<Float>
    let capacity: Int
    /// Target rows per chunk (bounded by `capacity / K`).
    let chunkRows: Int
    /// Zeros, at least as many as the widest layer's input channels (padding for Winograd tiles).
    let zeros: UnsafePointer<Float>
    /// 16 pointer slots (a Winograd tile's input pixels).
    let pointers: UnsafeMutablePointer<UnsafePointer<Float>>
    /// Which algorithm each layer shape runs when the layer holds weights for several.
    let plan: ConvPlan

    init(
        buffer: UnsafeMutablePointer<Float>, capacity: Int, chunkRows: Int, zeros: UnsafePointer<Float>,
        pointers: UnsafeMutablePointer<UnsafePointer<Float>>, plan: ConvPlan = .staticDefault
    ) {
        self.buffer = buffer
        self.capacity = capacity
        self.chunkRows = chunkRows
        self.zeros = zeros
        self.pointers = pointers
        self.plan = plan
    }
}

enum Convolution {
    /// Runs `layer` over `n` NHWC images of `inH`×`inW` into `output` (NHWC), chunked by output
    /// rows: build the chunk's GEMM input (im2col or strided gather, or the input itself for
    /// 1×1 convolutions), one `sgemm` per group, then the epilogue on the fresh chunk.
    static func forward(
        _ layer: ConvLayer, input: UnsafePointer<Float>, n: Int, inH: Int, inW: Int,
        output: UnsafeMutablePointer<Float>, epilogue: Epilogue, scratch: ConvScratch
    ) {
        if let tile = WinogradTile(layer.resolved(scratch.plan.algorithm(for: layer, inH: inH, inW: inW))),
            let weights = layer.winogradWeights(tile)
        {
            Winograd.forward(
                layer, tile: tile, weights: weights, input: input, n: n, h: inH, w: inW, output: output,
                epilogue: epilogue, scratch: scratch)
            return
        }
        let oh = layer.outputSize(inH), ow = layer.outputSize(inW)
        let m = n * oh * ow
        let kg = layer.kPerGroup, og = layer.coutPerGroup
        let rowK = layer.isPointwise ? layer.cin : kg * layer.groups
        // Rows per chunk: the target, bounded by the scratch the GEMM input needs.
        var downsampleK = 0
        if case .downsample(let ds, _, _, _, _) = epilogue, !ds.isPointwise { downsampleK = ds.cin }
        let scratchPerRow = (layer.isPointwise ? 0 : rowK) + downsampleK
        var chunk = scratch.chunkRows
        if scratchPerRow > 0 { chunk = min(chunk, scratch.capacity / scratchPerRow) }
        chunk = max(1, min(chunk, m))

        var r0 = 0
        while r0 < m {
            let rows = min(chunk, m - r0)
            let a: UnsafePointer<Float>
            if layer.isPointwise {
                a = input + r0 * layer.cin
            } else if layer.kernel == 1 && layer.pad == 0 {
                gatherStrided(
                    input, n: n, inH: inH, inW: inW, c: layer.cin, stride: layer.stride, oh: oh, ow: ow,
                    rowStart: r0, rows: rows, dst: scratch.buffer)
                a = UnsafePointer(scratch.buffer)
            } else {
                im2col(layer, input, inH: inH, inW: inW, oh: oh, ow: ow, rowStart: r0, rows: rows, dst: scratch.buffer)
                a = UnsafePointer(scratch.buffer)
            }
            let c = output + r0 * layer.cout
            for g in 0..<layer.groups {
                BLAS.sgemm(
                    m: rows, n: og, k: kg,
                    a: a + g * (layer.isPointwise ? layer.cinPerGroup : kg), lda: rowK,
                    b: layer.weights.pointer + g * kg * og, ldb: og,
                    beta: 0, c: c + g * og, ldc: layer.cout)
            }
            switch epilogue {
            case .bias(let relu):
                Kernels.biasActivation(
                    c, rows: rows, channels: layer.cout, bias: layer.bias.pointer, residual: nil, relu: relu)
            case .residual(let res):
                Kernels.biasActivation(
                    c, rows: rows, channels: layer.cout, bias: layer.bias.pointer,
                    residual: res + r0 * layer.cout, relu: true)
            case let .downsample(ds, dsInput, dsH, dsW, combinedBias):
                let a2: UnsafePointer<Float>
                if ds.isPointwise {
                    a2 = dsInput + r0 * ds.cin
                } else {
                    let dst = scratch.buffer + (layer.isPointwise ? 0 : rows * rowK)
                    gatherStrided(
                        dsInput, n: n, inH: dsH, inW: dsW, c: ds.cin, stride: ds.stride, oh: oh, ow: ow,
                        rowStart: r0, rows: rows, dst: dst)
                    a2 = UnsafePointer(dst)
                }
                BLAS.sgemm(
                    m: rows, n: ds.cout, k: ds.cin, a: a2, lda: ds.cin, b: ds.weights.pointer, ldb: ds.cout,
                    beta: 1, c: c, ldc: layer.cout)
                Kernels.biasActivation(
                    c, rows: rows, channels: layer.cout, bias: combinedBias, residual: nil, relu: true)
            }
            r0 += rows
        }
    }

    /// Rows of a 1×1 strided convolution: pixel (oy·s, ox·s) of each output position.
    static func gatherStrided(
        _ input: UnsafePointer<Float>, n: Int, inH: Int, inW: Int, c: Int, stride: Int,
        oh: Int, ow: Int, rowStart: Int, rows: Int, dst: UnsafeMutablePointer<Float>
    ) {
        var img = rowStart / (oh * ow)
        let rem = rowStart % (oh * ow)
        var oy = rem / ow, ox = rem % ow
        for r in 0..<rows {
            let src = input + ((img * inH + oy * stride) * inW + ox * stride) * c
            (dst + r * c).update(from: src, count: c)
            ox += 1
            if ox == ow { ox = 0; oy += 1; if oy == oh { oy = 0; img += 1 } }
        }
    }

    /// NHWC im2col for output rows [rowStart, rowStart+rows): each row holds, per group, the
    /// (ky, kx, ci) patch; zero where the patch covers padding.
    static func im2col(
        _ layer: ConvLayer, _ input: UnsafePointer<Float>, inH: Int, inW: Int, oh: Int, ow: Int,
        rowStart: Int, rows: Int, dst: UnsafeMutablePointer<Float>
    ) {
        let k = layer.kernel, s = layer.stride, p = layer.pad
        let cin = layer.cin, groups = layer.groups, cg = layer.cinPerGroup
        let kg = layer.kPerGroup
        let rowK = kg * groups
        var img = rowStart / (oh * ow)
        let rem = rowStart % (oh * ow)
        var oy = rem / ow, ox = rem % ow
        for r in 0..<rows {
            let row = dst + r * rowK
            let x0 = ox * s - p
            let imageBase = input + img * inH * inW * cin
            if groups == 1 {
                // One contiguous run of k·cin floats per kernel row when the patch is inside.
                for ky in 0..<k {
                    let iy = oy * s - p + ky
                    let d = row + ky * k * cin
                    if iy < 0 || iy >= inH {
                        d.update(repeating: 0, count: k * cin)
                        continue
                    }
                    let src = imageBase + iy * inW * cin
                    if x0 >= 0 && x0 + k <= inW {
                        d.update(from: src + x0 * cin, count: k * cin)
                    } else {
                        for kx in 0..<k {
                            let ix = x0 + kx
                            if ix < 0 || ix >= inW {
                                (d + kx * cin).update(repeating: 0, count: cin)
                            } else {
                                (d + kx * cin).update(from: src + ix * cin, count: cin)
                            }
                        }
                    }
                }
            } else {
                for g in 0..<groups {
                    let d0 = row + g * kg
                    for ky in 0..<k {
                        let iy = oy * s - p + ky
                        for kx in 0..<k {
                            let ix = x0 + kx
                            let d = d0 + (ky * k + kx) * cg
                            if iy < 0 || iy >= inH || ix < 0 || ix >= inW {
                                d.update(repeating: 0, count: cg)
                            } else {
                                d.update(from: imageBase + (iy * inW + ix) * cin + g * cg, count: cg)
                            }
                        }
                    }
                }
            }
            ox += 1
            if ox == ow { ox = 0; oy += 1; if oy == oh { oy = 0; img += 1 } }
        }
    }
}
