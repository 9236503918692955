import Foundation
import LinprobeCore

/// One worker's buffers for `RegNetExtractor`, sized by a walk over the network.
final class RegNetWorkspace: @unchecked Sendable {
    /// Buffer sizes in floats.
    struct Plan {
        var input = 0, x = 0, t1 = 0, t2 = 0, scratch = 0, poolScratch = 0, zeros = 0, se = 0
        let microBatch: Int
        /// Scratch for one chunk of any layer stays within this many floats (8 MB), but a chunk
        /// always gets at least 64 rows.
        static let scratchBudget = 2 << 20

        /// Floats that grow with the micro-batch, per image.
        var perImageFloats: Int { (input + 2 * x + t1 + t2 + se) / max(1, microBatch) }
        /// Floats that do not.
        var fixedFloats: Int { scratch + poolScratch + zeros }
        var floats: Int { input + 2 * x + t1 + t2 + se + scratch + poolScratch + zeros }

        init(
            network: RegNetNetwork, height: Int, width: Int, outputs: [FeatureOutput], shapes: [String: [Int]],
            microBatch nb: Int, chunkRows: Int
        ) {
            microBatch = nb
            func chunk(_ layer: ConvLayer, extra: Int = 0) -> Int {
                layer.chunkScratchFloats(chunkRows: chunkRows, budget: Plan.scratchBudget, extra: extra)
            }
            let spec = network.spec
            input = nb * 3 * height * width
            var h = network.stem.outputSize(height), w = network.stem.outputSize(width)
            t1 = nb * h * w * spec.stemWidth
            scratch = chunk(network.stem)
            zeros = 3
            h = spec.stemOutput(height)
            w = spec.stemOutput(width)
            x = nb * h * w * spec.stemWidth
            for blocks in network.stages {
                for block in blocks {
                    t1 = max(t1, nb * h * w * block.a.cout)
                    let oh = block.b.outputSize(h), ow = block.b.outputSize(w)
                    t2 = max(t2, nb * oh * ow * block.b.cout)
                    x = max(x, nb * oh * ow * block.c.cout)
                    let extra = block.projection.map { $0.isPointwise ? 0 : $0.cin } ?? 0
                    scratch = max(scratch, chunk(block.a), chunk(block.b), chunk(block.c, extra: extra))
                    zeros = max(zeros, block.a.cin, block.b.cin, block.c.cin)
                    if let s = block.se { se = max(se, nb * (2 * s.channels + s.squeeze)) }
                    h = oh
                    w = ow
                }
            }
            for out in outputs {
                let channels = shapes[out.tap]?.first ?? 0
                poolScratch = max(poolScratch, out.dimension + channels * 2)
            }
        }
    }

    let input: FloatBuffer, x: FloatBuffer, y: FloatBuffer, t1: FloatBuffer, t2: FloatBuffer
    let scratch: FloatBuffer, poolScratch: FloatBuffer, zeros: FloatBuffer, seScratch: FloatBuffer
    let pointers: UnsafeMutablePointer<UnsafePointer<Float>>

    init(plan: Plan) {
        zeros = FloatBuffer(count: plan.zeros)
        pointers = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: 16)
        pointers.initialize(repeating: UnsafePointer(zeros.pointer), count: 16)
        input = FloatBuffer(count: plan.input)
        x = FloatBuffer(count: plan.x)
        y = FloatBuffer(count: plan.x)
        t1 = FloatBuffer(count: plan.t1)
        t2 = FloatBuffer(count: plan.t2)
        scratch = FloatBuffer(count: plan.scratch)
        poolScratch = FloatBuffer(count: plan.poolScratch)
        seScratch = FloatBuffer(count: plan.se)
    }

    deinit { pointers.deallocate() }

    func convScratch(chunkRows: Int, plan: ConvPlan) -> ConvScratch {
        ConvScratch(
            buffer: scratch.pointer, capacity: scratch.count, chunkRows: chunkRows, zeros: zeros.pointer,
            pointers: pointers, plan: plan)
    }
}
