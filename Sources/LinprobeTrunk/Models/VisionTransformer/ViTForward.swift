import Foundation
import LinprobeCore

/// One worker's buffers for a micro-batch (token-major, `n · tokens` rows).
final class ViTWorkspace: @unchecked Sendable {
    let x: FloatBuffer
    let xn: FloatBuffer
    let qkv: FloatBuffer
    let attention: FloatBuffer
    let hidden: FloatBuffer
    let logits: FloatBuffer
    let patches: FloatBuffer

    static func floatsPerImage(spec: ViTSpec, tokens: Int) -> Int {
        let d = spec.hiddenDim
        return tokens * (d * 6 + spec.mlpHidden) + tokens * 3 * spec.patchSize * spec.patchSize
    }

    init(spec: ViTSpec, tokens: Int, microBatch n: Int) {
        let d = spec.hiddenDim, rows = n * tokens
        x = FloatBuffer(count: rows * d)
        xn = FloatBuffer(count: rows * d)
        qkv = FloatBuffer(count: rows * 3 * d)
        attention = FloatBuffer(count: rows * d)
        hidden = FloatBuffer(count: rows * spec.mlpHidden)
        logits = FloatBuffer(count: tokens * tokens)
        patches = FloatBuffer(count: tokens * 3 * spec.patchSize * spec.patchSize)
    }
}

extension ViTExtractor {
    /// The network on `n` images (NCHW) written to the destinations from image `first` on.
    func forwardMicroBatch(
        _ ws: ViTWorkspace, input: UnsafePointer<Float>, n: Int, first: Int, destinations: [UnsafeMutablePointer<Float>]
    ) {
        let spec = network.spec
        let t = geometry.tokens, d = spec.hiddenDim, rows = n * t
        embed(ws, input: input, n: n)
        for j in 0..<depth {
            let block = network.blocks[j]
            block.norm1.forward(ws.x.pointer, rows: rows, ws.xn.pointer)
            block.qkv.forward(ws.xn.pointer, rows: rows, ws.qkv.pointer)
            let bias = block.relativeBias.map { table in
                { (h: Int, logits: UnsafeMutablePointer<Float>) in
                    TransformerKernels.addRowVector(logits, rows: 1, dim: t * t, table.pointer + h * t * t)
                }
            }
            for i in 0..<n {
                TransformerKernels.attention(
                    qkv: ws.qkv.pointer + i * t * 3 * d, tokens: t, dim: d, heads: spec.numHeads, scale: spec.scale,
                    logits: ws.logits.pointer, out: ws.attention.pointer + i * t * d, bias: bias)
            }
            block.proj.accumulate(ws.attention.pointer, rows: rows, into: ws.x.pointer)
            block.norm2.forward(ws.x.pointer, rows: rows, ws.xn.pointer)
            block.fc1.forward(ws.xn.pointer, rows: rows, ws.hidden.pointer)
            TransformerKernels.gelu(ws.hidden.pointer, count: rows * spec.mlpHidden)
            block.fc2.accumulate(ws.hidden.pointer, rows: rows, into: ws.x.pointer)
            if !emissions[j].isEmpty { emit(block: j, ws, n: n, first: first, destinations: destinations) }
        }
    }

    /// Patch embedding, class token and position embedding into `ws.x`.
    private func embed(_ ws: ViTWorkspace, input: UnsafePointer<Float>, n: Int) {
        let spec = network.spec
        let p = spec.patchSize, d = spec.hiddenDim, t = geometry.tokens
        let gh = geometry.gridH, gw = geometry.gridW
        let h = inputHeight, w = inputWidth, k = 3 * p * p
        let cls = spec.useClassToken ? 1 : 0
        for i in 0..<n {
            let image = input + i * 3 * h * w
            for gy in 0..<gh {
                for gx in 0..<gw {
                    var dst = ws.patches.pointer + (gy * gw + gx) * k
                    for c in 0..<3 {
                        for ky in 0..<p {
                            let src = image + (c * h + gy * p + ky) * w + gx * p
                            dst.update(from: src, count: p)
                            dst += p
                        }
                    }
                }
            }
            let x = ws.x.pointer + i * t * d
            network.patchEmbed.forward(ws.patches.pointer, rows: gh * gw, x + cls * d)
            if let token = network.classToken { x.update(from: token.pointer, count: d) }
            for r in 0..<(t * d) { x[r] += positions.pointer[r] }
        }
    }

    /// Writes what block `j`'s outputs need: class rows, token means or all tokens, each
    /// normalised by the final LayerNorm.
    private func emit(block j: Int, _ ws: ViTWorkspace, n: Int, first: Int, destinations: [UnsafeMutablePointer<Float>])
    {
        let spec = network.spec
        let t = geometry.tokens, d = spec.hiddenDim
        let needsAll = emissions[j].contains { $0.tap.allTokens || $0.tap.pooled }
        if needsAll { normalize(ws.x.pointer, rows: n * t, ws.xn.pointer) }
        for e in emissions[j] {
            let dim = outputs[e.output].dimension
            for i in 0..<n {
                let dst = destinations[e.output] + (first + i) * dim
                let x = ws.x.pointer + i * t * d
                let xn = ws.xn.pointer + i * t * d
                switch e.tap {
                case .lastMAP:
                    (dst).update(from: xn + d, count: (t - 1) * d)
                case .lastBLK, .concatBLK:
                    let width = blockCounts[e.output] * d
                    for r in 0..<t { (dst + r * width + e.slot * d).update(from: xn + r * d, count: d) }
                case .lastPOOL, .concatPOOL, .stridePOOL:
                    Self.tokenMean(xn, tokens: t, dim: d, into: dst + e.slot * d)
                case .lastCLS, .concatCLS, .blockCLS:
                    if needsAll {
                        (dst + e.slot * d).update(from: xn, count: d)
                    } else {
                        normalize(x, rows: 1, dst + e.slot * d)
                    }
                }
            }
        }
    }

    /// The final LayerNorm (a copy when the model has none: BEiT with mean pooling).
    private func normalize(_ src: UnsafePointer<Float>, rows: Int, _ dst: UnsafeMutablePointer<Float>) {
        if let norm = network.norm {
            norm.forward(src, rows: rows, dst)
        } else {
            dst.update(from: src, count: rows * network.spec.hiddenDim)
        }
    }

    /// Mean over `tokens` rows (PyTorch's AdaptiveAvgPool1d(1) over the sequence).
    static func tokenMean(_ x: UnsafePointer<Float>, tokens: Int, dim: Int, into dst: UnsafeMutablePointer<Float>) {
        dst.update(repeating: 0, count: dim)
        for r in 0..<tokens { TransformerKernels.addRowVector(dst, rows: 1, dim: dim, x + r * dim) }
        let inv = 1 / Float(tokens)
        for c in 0..<dim { dst[c] *= inv }
    }
}
