import Foundation
import LinprobeBLAS
import LinprobeCore

/// BatchNorm over `channels` channels of `spatial` positions each (BatchNorm2d for an
/// `eval_mlp` input map, BatchNorm1d with `spatial` = 1 inside an `mlp`), affine, tracking
/// running statistics with PyTorch's update rule.
final class BatchNormLayer {
    let channels: Int
    let spatial: Int
    var dim: Int { channels * spatial }
    let eps: Float
    let momentum: Float

    let gamma: FloatBuffer, beta: FloatBuffer
    let runningMean: FloatBuffer, runningVar: FloatBuffer
    var batchesTracked: Int64 = 0
    let gammaMomentum: FloatBuffer, betaMomentum: FloatBuffer
    let dGamma: FloatBuffer, dBeta: FloatBuffer

    // Per-column workspaces (the channel's value repeated over its spatial positions).
    private let colA: FloatBuffer, colB: FloatBuffer
    let shiftCol: FloatBuffer, scaleCol: FloatBuffer, gammaCol: FloatBuffer, betaCol: FloatBuffer
    let invstd: FloatBuffer

    init(channels: Int, spatial: Int, eps: Double, momentum: Double) {
        self.channels = channels
        self.spatial = spatial
        self.eps = Float(eps)
        self.momentum = Float(momentum)
        gamma = FloatBuffer(channels, value: 1)
        beta = FloatBuffer(channels)
        runningMean = FloatBuffer(channels)
        runningVar = FloatBuffer(channels, value: 1)
        gammaMomentum = FloatBuffer(channels)
        betaMomentum = FloatBuffer(channels)
        dGamma = FloatBuffer(channels)
        dBeta = FloatBuffer(channels)
        let d = channels * spatial
        colA = FloatBuffer(d)
        colB = FloatBuffer(d)
        shiftCol = FloatBuffer(d)
        scaleCol = FloatBuffer(d)
        gammaCol = FloatBuffer(d)
        betaCol = FloatBuffer(d)
        invstd = FloatBuffer(channels)
    }

    /// Sums the per-column values of a channel.
    private func channelSum(_ col: FloatBuffer, _ c: Int) -> Double {
        var s = 0.0
        for p in 0..<spatial { s += Double(col.pointer[c * spatial + p]) }
        return s
    }

    private func expand(_ perChannel: (Int) -> Float, into col: FloatBuffer) {
        for c in 0..<channels {
            let v = perChannel(c)
            for p in 0..<spatial { col.pointer[c * spatial + p] = v }
        }
    }

    /// Training mode: batch statistics over `n` rows, running statistics updated.
    /// Writes `x̂` (when asked) and `y = γ·x̂ + β`.
    func trainForward(
        _ x: UnsafePointer<Float>, n: Int, xhat: UnsafeMutablePointer<Float>?, y: UnsafeMutablePointer<Float>,
        threads: Int
    ) {
        let d = dim
        let count = Double(n * spatial)
        parallelRanges(d, threads: threads, minimumPerThread: 256) { _, cols in
            Kernels.columnSums(x, n: n, d: d, cols: cols, into: colA.pointer)
        }
        var mean = [Double](repeating: 0, count: channels)
        for c in 0..<channels { mean[c] = channelSum(colA, c) / count }
        expand({ Float(mean[$0]) }, into: shiftCol)
        parallelRanges(d, threads: threads, minimumPerThread: 256) { _, cols in
            Kernels.columnSquaredDeviations(x, n: n, d: d, mean: shiftCol.pointer, cols: cols, into: colB.pointer)
        }
        for c in 0..<channels {
            let variance = channelSum(colB, c) / count
            invstd.pointer[c] = Float(1 / (variance + Double(eps)).squareRoot())
            let unbiased = count > 1 ? variance * count / (count - 1) : variance
            runningMean.pointer[c] = (1 - momentum) * runningMean.pointer[c] + momentum * Float(mean[c])
            runningVar.pointer[c] = (1 - momentum) * runningVar.pointer[c] + momentum * Float(unbiased)
        }
        batchesTracked += 1
        expand({ self.invstd.pointer[$0] }, into: scaleCol)
        expand({ self.gamma.pointer[$0] }, into: gammaCol)
        expand({ self.beta.pointer[$0] }, into: betaCol)
        parallelRanges(n, threads: threads, minimumPerThread: 8) { _, rows in
            Kernels.normalize(
                x, d: d, rows: rows, shift: shiftCol.pointer, scale: scaleCol.pointer, gamma: gammaCol.pointer,
                beta: betaCol.pointer, xhat: xhat, y: y)
        }
    }

    /// Evaluation mode: running statistics (PyTorch: `alpha = γ/√(var+eps)`, `y = x·alpha + β − mean·alpha`).
    func evalForward(_ x: UnsafePointer<Float>, n: Int, y: UnsafeMutablePointer<Float>, threads: Int) {
        for c in 0..<channels {
            let alpha = gamma.pointer[c] / (runningVar.pointer[c] + eps).squareRoot()
            let offset = beta.pointer[c] - runningMean.pointer[c] * alpha
            for p in 0..<spatial {
                colA.pointer[c * spatial + p] = alpha
                colB.pointer[c * spatial + p] = offset
            }
        }
        let d = dim
        parallelRanges(n, threads: threads, minimumPerThread: 8) { _, rows in
            Kernels.affine(x, d: d, rows: rows, alpha: colA.pointer, offset: colB.pointer, y: y)
        }
    }

    /// Full backward of a training-mode BN (hidden layers): `dy` (n × dim) is replaced by `dx`;
    /// `dGamma`, `dBeta` are set.
    func backward(dy: UnsafeMutablePointer<Float>, xhat: UnsafePointer<Float>, n: Int) {
        let d = dim
        let m = Float(n * spatial)
        var sumDy = [Double](repeating: 0, count: channels)
        var sumDyXhat = [Double](repeating: 0, count: channels)
        for i in 0..<n {
            for j in 0..<d {
                let c = j / spatial
                sumDy[c] += Double(dy[i * d + j])
                sumDyXhat[c] += Double(dy[i * d + j] * xhat[i * d + j])
            }
        }
        for c in 0..<channels {
            dBeta.pointer[c] = Float(sumDy[c])
            dGamma.pointer[c] = Float(sumDyXhat[c])
        }
        for i in 0..<n {
            for j in 0..<d {
                let c = j / spatial
                let k = gamma.pointer[c] * invstd.pointer[c] / m
                dy[i * d + j] = k * (m * dy[i * d + j] - Float(sumDy[c]) - xhat[i * d + j] * Float(sumDyXhat[c]))
            }
        }
    }
}

/// A Linear layer (`weight` is out × in, PyTorch layout) with its SGD momentum buffers.
final class LinearLayer {
    let inputs: Int
    let outputs: Int
    let hasBias: Bool
    let weight: FloatBuffer, bias: FloatBuffer
    let weightMomentum: FloatBuffer, biasMomentum: FloatBuffer
    let biasGrad: FloatBuffer
    /// Weight gradient (hidden layers), or `dZᵀ·x̂` for the first layer (fused update).
    let weightGrad: FloatBuffer

    init(inputs: Int, outputs: Int, hasBias: Bool) {
        self.inputs = inputs
        self.outputs = outputs
        self.hasBias = hasBias
        weight = FloatBuffer(outputs * inputs)
        bias = FloatBuffer(hasBias ? outputs : 0)
        weightMomentum = FloatBuffer(outputs * inputs)
        biasMomentum = FloatBuffer(hasBias ? outputs : 0)
        biasGrad = FloatBuffer(outputs)
        weightGrad = FloatBuffer(outputs * inputs)
    }
}

/// One `Linear → [BN] → [ReLU] → [Dropout]` block of an MLP.
struct MLPBlock {
    var linear: LinearLayer
    var bn: BatchNormLayer?
    var relu: Bool
    var dropout: Bool
    /// Index of the Linear inside VISSL's `nn.Sequential` (for checkpoint key names).
    var sequenceIndex: Int
    var bnSequenceIndex: Int?
}

/// Hyper-parameters one SGD step needs.
struct StepHyper {
    var lr: Float
    var momentum: Float
    var nesterov: Bool
    /// Weight decay per parameter kind.
    var wdWeight: Float
    var wdBias: Float
    var wdBNWeight: Float
    var wdBNBias: Float
}

/// A VISSL head (`eval_mlp` or `mlp`) with its optimizer state and workspaces for batches of up to
/// `maxRows` rows.
final class Head {
    let spec: HeadSpec
    let name: String
    let inputDim: Int
    let inputBN: BatchNormLayer?
    private(set) var blocks: [MLPBlock]
    var dropoutRNG: Xoshiro256
    let maxRows: Int
    let outputs: Int

    // Workspaces.
    private let xhat: FloatBuffer?  // n × inputDim
    private let bnOut: FloatBuffer?  // n × inputDim
    private var z: [FloatBuffer] = []  // per block: n × out
    private var hiddenHat: [FloatBuffer?] = []
    private var hiddenY: [FloatBuffer?] = []
    private var act: [FloatBuffer?] = []  // after ReLU / dropout
    private var dropMask: [FloatBuffer?] = []
    private var grad: [FloatBuffer] = []  // per block: n × out (gradient wrt block output)
    /// Gradient of the loss wrt the logits (n × outputs), filled by the loss.
    let dLogits: FloatBuffer
    private let accG: [FloatBuffer], accW: [FloatBuffer]

    init(
        spec: HeadSpec, name: String, shapeCHW: [Int], eps: Double, momentum: Double, maxRows: Int, threads: Int,
        dropoutSeed: Int
    ) {
        self.spec = spec
        self.name = name
        inputDim = spec.dims[0]
        self.maxRows = maxRows
        outputs = spec.outputs
        if spec.kind == .evalMLP {
            let c = spec.inChannels ?? shapeCHW[0]
            inputBN = BatchNormLayer(channels: c, spatial: inputDim / c, eps: eps, momentum: momentum)
            xhat = FloatBuffer(maxRows * inputDim)
            bnOut = FloatBuffer(maxRows * inputDim)
        } else {
            inputBN = nil
            xhat = nil
            bnOut = nil
        }
        var blocks: [MLPBlock] = []
        var seq = 0
        for i in 1..<spec.dims.count {
            let last = i == spec.dims.count - 1
            let linear = LinearLayer(inputs: spec.dims[i - 1], outputs: spec.dims[i], hasBias: spec.useBias)
            let linearIndex = seq
            seq += 1
            let post = !(last && spec.skipLastLayerReLUBN)
            var bn: BatchNormLayer? = nil
            var bnIndex: Int? = nil
            if post && spec.useBN {
                bn = BatchNormLayer(channels: spec.dims[i], spatial: 1, eps: eps, momentum: momentum)
                bnIndex = seq
                seq += 1
            }
            let relu = post && spec.useReLU
            if relu { seq += 1 }
            let dropout = post && spec.useDropout
            if dropout { seq += 1 }
            blocks.append(
                MLPBlock(
                    linear: linear, bn: bn, relu: relu, dropout: dropout, sequenceIndex: linearIndex,
                    bnSequenceIndex: bnIndex))
        }
        self.blocks = blocks
        dropoutRNG = Xoshiro256(seed: dropoutSeed, stream: 0xD80, index: 0)
        for b in blocks {
            let n = maxRows * b.linear.outputs
            z.append(FloatBuffer(n))
            hiddenHat.append(b.bn != nil ? FloatBuffer(n) : nil)
            hiddenY.append(b.bn != nil ? FloatBuffer(n) : nil)
            act.append(b.relu || b.dropout ? FloatBuffer(n) : nil)
            dropMask.append(b.dropout ? FloatBuffer(n) : nil)
            grad.append(FloatBuffer(n))
        }
        dLogits = grad[grad.count - 1]
        let parts = max(1, threads)
        accG = (0..<parts).map { _ in FloatBuffer(spec.kind == .evalMLP ? spec.dims[0] : 0) }
        accW = (0..<parts).map { _ in FloatBuffer(spec.kind == .evalMLP ? spec.dims[0] : 0) }
    }

    // MARK: Initialisation

    /// PyTorch's default `nn.Linear` initialisation (kaiming-uniform a = √5 → U(±1/√fan_in) for the
    /// weight, U(±1/√fan_in) for the bias), in PyTorch's draw order, from a generator seeded with
    /// the configured seed (each head starts from the same state, as VISSL), then × multiplier.
    func initialize(seed: Int, multiplier: Double) {
        var rng = Xoshiro256(seed: seed, stream: 0x1417, index: 0)
        for b in blocks {
            let bound = 1 / Float(b.linear.inputs).squareRoot()
            let mult = Float(multiplier)
            for i in 0..<b.linear.weight.count {
                b.linear.weight.pointer[i] = (rng.nextUnitFloat() * 2 - 1) * bound * mult
            }
            for i in 0..<b.linear.bias.count {
                b.linear.bias.pointer[i] = (rng.nextUnitFloat() * 2 - 1) * bound * mult
            }
        }
    }

    // MARK: Forward

    /// The block's output buffer (after its BN / ReLU / dropout).
    private func output(_ l: Int) -> FloatBuffer { act[l] ?? hiddenY[l] ?? z[l] }

    private func linearForward(_ b: MLPBlock, input: UnsafePointer<Float>, n: Int, out: UnsafeMutablePointer<Float>) {
        let lin = b.linear
        if lin.hasBias {
            for i in 0..<n { (out + i * lin.outputs).update(from: lin.bias.pointer, count: lin.outputs) }
        }
        BLAS.sgemm(
            .none, .transpose, m: n, n: lin.outputs, k: lin.inputs, a: input, b: lin.weight.pointer,
            beta: lin.hasBias ? 1 : 0, c: out)
    }

    /// Forward pass over `n` rows; returns the logits (n × outputs).
    @discardableResult
    func forward(_ x: UnsafePointer<Float>, n: Int, training: Bool, threads: Int) -> UnsafePointer<Float> {
        precondition(n <= maxRows)
        var input = x
        if let bn = inputBN, let xhat, let bnOut {  // the buffers exist exactly when the BN does
            if training {
                bn.trainForward(x, n: n, xhat: xhat.pointer, y: bnOut.pointer, threads: threads)
            } else {
                bn.evalForward(x, n: n, y: bnOut.pointer, threads: threads)
            }
            input = UnsafePointer(bnOut.pointer)
        }
        for (l, b) in blocks.enumerated() {
            let zl = z[l].pointer
            linearForward(b, input: input, n: n, out: zl)
            var cur = UnsafeMutablePointer(zl)
            let count = n * b.linear.outputs
            if let bn = b.bn, let hat = hiddenHat[l], let y = hiddenY[l] {
                if training {
                    bn.trainForward(zl, n: n, xhat: hat.pointer, y: y.pointer, threads: threads)
                } else {
                    bn.evalForward(zl, n: n, y: y.pointer, threads: threads)
                }
                cur = y.pointer
            }
            if let a = act[l] {
                for i in 0..<count {
                    var v = cur[i]
                    if b.relu { v = max(v, 0) }
                    a.pointer[i] = v
                }
                if b.dropout && training, let mask = dropMask[l]?.pointer {
                    for i in 0..<count {
                        // nn.Dropout(p = 0.5): keep with probability 0.5, scale kept values by 2.
                        mask[i] = dropoutRNG.nextUnitFloat() < 0.5 ? 0 : 2
                        a.pointer[i] *= mask[i]
                    }
                }
                cur = a.pointer
            }
            input = UnsafePointer(cur)
        }
        return input
    }

    // MARK: Backward and update

    /// Backward from `dLogits` (filled by the loss) and one SGD step of every parameter.
    func backwardAndUpdate(_ x: UnsafePointer<Float>, n: Int, hyper h: StepHyper, threads: Int) {
        // Gradients of blocks L-1 … 1 (they use the weights before the update).
        var l = blocks.count - 1
        while l >= 0 {
            let b = blocks[l]
            let g = grad[l].pointer
            let out = b.linear.outputs
            let count = n * out
            if b.dropout, let mask = dropMask[l]?.pointer {
                for i in 0..<count { g[i] *= mask[i] }
            }
            if b.relu {
                let pre = (hiddenY[l] ?? z[l]).pointer
                for i in 0..<count where pre[i] <= 0 { g[i] = 0 }
            }
            if let bn = b.bn, let hat = hiddenHat[l] { bn.backward(dy: g, xhat: hat.pointer, n: n) }
            // Bias gradient: column sums of dZ.
            Kernels.columnSums(g, n: n, d: out, cols: 0..<out, into: b.linear.biasGrad.pointer)
            let input: UnsafePointer<Float>
            if l > 0 {
                input = UnsafePointer(output(l - 1).pointer)
            } else if inputBN != nil, let xhat {
                input = UnsafePointer(xhat.pointer)  // fused: G = dZᵀ·x̂
            } else {
                input = x
            }
            BLAS.sgemm(
                .transpose, .none, m: out, n: b.linear.inputs, k: n, a: g, b: input, c: b.linear.weightGrad.pointer)
            if l > 0 {
                // dA_{l-1} = dZ_l · W_l
                BLAS.sgemm(
                    .none, .none, m: n, n: b.linear.inputs, k: out, a: g, b: b.linear.weight.pointer,
                    c: grad[l - 1].pointer)
            }
            l -= 1
        }

        // First layer: fused gradient, BN-gradient accumulation and SGD update.
        let first = blocks[0].linear
        let d = first.inputs
        if let bn = inputBN {
            for p in accG.indices {
                accG[p].fill(0)
                accW[p].fill(0)
            }
            parallelRanges(first.outputs, threads: threads, minimumPerThread: 4) { part, rows in
                Kernels.firstLayerUpdate(
                    w: first.weight.pointer, gradient: first.weightGrad.pointer, m: first.weightMomentum.pointer, d: d,
                    rows: rows,
                    s: first.biasGrad.pointer, gammaCol: bn.gammaCol.pointer, betaCol: bn.betaCol.pointer,
                    accG: accG[part].pointer, accW: accW[part].pointer,
                    lr: h.lr, wd: h.wdWeight, mu: h.momentum, nesterov: h.nesterov)
            }
            for c in 0..<bn.channels {
                var sg = 0.0, sw = 0.0
                for p in accG.indices {
                    for s in 0..<bn.spatial {
                        sg += Double(accG[p].pointer[c * bn.spatial + s])
                        sw += Double(accW[p].pointer[c * bn.spatial + s])
                    }
                }
                bn.dGamma.pointer[c] = Float(sg)
                bn.dBeta.pointer[c] = Float(sw)
            }
        } else {
            parallelRanges(first.outputs, threads: threads, minimumPerThread: 4) { _, rows in
                Kernels.firstLayerUpdate(
                    w: first.weight.pointer, gradient: first.weightGrad.pointer, m: first.weightMomentum.pointer, d: d,
                    rows: rows,
                    s: first.biasGrad.pointer, gammaCol: nil, betaCol: nil, accG: nil, accW: nil,
                    lr: h.lr, wd: h.wdWeight, mu: h.momentum, nesterov: h.nesterov)
            }
        }
        // Every other parameter.
        for (i, b) in blocks.enumerated() {
            let lin = b.linear
            if i > 0 {
                Kernels.sgd(
                    w: lin.weight.pointer, g: lin.weightGrad.pointer, m: lin.weightMomentum.pointer,
                    count: lin.weight.count,
                    lr: h.lr, wd: h.wdWeight, mu: h.momentum, nesterov: h.nesterov)
            }
            if lin.hasBias {
                Kernels.sgd(
                    w: lin.bias.pointer, g: lin.biasGrad.pointer, m: lin.biasMomentum.pointer, count: lin.outputs,
                    lr: h.lr, wd: h.wdBias, mu: h.momentum, nesterov: h.nesterov)
            }
            if let bn = b.bn { updateBN(bn, h) }
        }
        if let bn = inputBN { updateBN(bn, h) }
    }

    private func updateBN(_ bn: BatchNormLayer, _ h: StepHyper) {
        Kernels.sgd(
            w: bn.gamma.pointer, g: bn.dGamma.pointer, m: bn.gammaMomentum.pointer, count: bn.channels,
            lr: h.lr, wd: h.wdBNWeight, mu: h.momentum, nesterov: h.nesterov)
        Kernels.sgd(
            w: bn.beta.pointer, g: bn.dBeta.pointer, m: bn.betaMomentum.pointer, count: bn.channels,
            lr: h.lr, wd: h.wdBNBias, mu: h.momentum, nesterov: h.nesterov)
    }

    // MARK: State (VISSL's parameter names)

    private var prefix: String { spec.kind == .evalMLP ? "clf.clf." : "clf." }

    /// Every tensor of the head: parameters, BN buffers and (with `optimizer`) momentum buffers,
    /// keyed as in VISSL's state dict (`channel_bn.weight`, `clf.clf.0.weight`, ...).
    func tensors(optimizer: Bool) -> [(name: String, shape: [Int], buffer: FloatBuffer)] {
        var out: [(String, [Int], FloatBuffer)] = []
        func addBN(_ bn: BatchNormLayer, _ p: String) {
            out.append(("\(p).weight", [bn.channels], bn.gamma))
            out.append(("\(p).bias", [bn.channels], bn.beta))
            out.append(("\(p).running_mean", [bn.channels], bn.runningMean))
            out.append(("\(p).running_var", [bn.channels], bn.runningVar))
            if optimizer {
                out.append(("optimizer.\(p).weight", [bn.channels], bn.gammaMomentum))
                out.append(("optimizer.\(p).bias", [bn.channels], bn.betaMomentum))
            }
        }
        if let bn = inputBN { addBN(bn, "channel_bn") }
        for b in blocks {
            let p = "\(prefix)\(b.sequenceIndex)"
            out.append(("\(p).weight", [b.linear.outputs, b.linear.inputs], b.linear.weight))
            if b.linear.hasBias { out.append(("\(p).bias", [b.linear.outputs], b.linear.bias)) }
            if optimizer {
                out.append(("optimizer.\(p).weight", [b.linear.outputs, b.linear.inputs], b.linear.weightMomentum))
                if b.linear.hasBias { out.append(("optimizer.\(p).bias", [b.linear.outputs], b.linear.biasMomentum)) }
            }
            if let bn = b.bn, let i = b.bnSequenceIndex { addBN(bn, "\(prefix)\(i)") }
        }
        return out
    }

    /// BN batch counters (`num_batches_tracked`).
    var batchCounters: [String: Int64] {
        var out: [String: Int64] = [:]
        if let bn = inputBN { out["channel_bn.num_batches_tracked"] = bn.batchesTracked }
        for b in blocks {
            if let bn = b.bn, let i = b.bnSequenceIndex { out["\(prefix)\(i).num_batches_tracked"] = bn.batchesTracked }
        }
        return out
    }

    func setBatchCounters(_ counters: [String: Int64]) {
        if let bn = inputBN { bn.batchesTracked = counters["channel_bn.num_batches_tracked"] ?? 0 }
        for b in blocks {
            if let bn = b.bn, let i = b.bnSequenceIndex {
                bn.batchesTracked = counters["\(prefix)\(i).num_batches_tracked"] ?? 0
            }
        }
    }

    /// Loads tensors strictly: every expected key must be present with its shape, and no other
    /// key may be given. `optimizer` selects whether momentum buffers are expected.
    func load(_ given: [String: (shape: [Int], values: [Float])], optimizer: Bool, source: String) throws {
        let expected = tensors(optimizer: optimizer)
        let expectedNames = Set(expected.map(\.name))
        if let extra = given.keys.sorted().first(where: { !expectedNames.contains($0) }) {
            throw LinprobeError(
                .incompatible, "\(source): unexpected tensor '\(extra)' for head \(name) (\(spec.kind.rawValue))")
        }
        for t in expected {
            guard let g = given[t.name] else {
                throw LinprobeError(.incompatible, "\(source): tensor '\(t.name)' of head \(name) is missing")
            }
            guard g.shape == t.shape, g.values.count == t.buffer.count else {
                throw LinprobeError(
                    .shapeMismatch,
                    "\(source): tensor '\(t.name)' of head \(name) has shape \(g.shape), expected \(t.shape)")
            }
            t.buffer.copy(from: g.values)
        }
    }

    /// True when every parameter and buffer is finite.
    var isFinite: Bool { tensors(optimizer: true).allSatisfy { $0.buffer.allFinite } }
}
