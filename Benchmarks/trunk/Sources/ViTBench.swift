import Foundation
import LinprobeBLAS
import LinprobeCheckpoint
import LinprobeCore
import LinprobeTrunk

/// `--vit s16|b16`: Linprobe's vision transformer on VISSL's dino_vit taps (concatCLS4, lastCLS),
/// seeded random weights, 224×224, one JSON line like the ResNet run.
func benchViT(_ args: Arguments) throws {
    let dims: [String: (d: Int, heads: Int)] = ["s16": (384, 6), "b16": (768, 12)]
    guard let shape = dims[args.vit] else { usage("--vit: s16 or b16\n") }
    let spec = try ViTSpec(
        imageSize: 224, patchSize: 16, hiddenDim: shape.d, numLayers: 12, numHeads: shape.heads,
        mlpDim: 4 * shape.d, qkvBias: true)
    let t0 = now()
    let options = TrunkRunOptions(threads: args.threads, parallelism: args.parallelism ?? .batch)
    let network = try spec.build(weights: TrunkWeights.random(architecture: spec, seed: 0), options: options)
    let loadSeconds = now() - t0
    let map = PoolOpsMap(entries: ["concatCLS4", "lastCLS"].map { PoolOpsMap.Entry(tap: $0, op: .identity) })
    let outputs = try map.outputs(architecture: spec, inputHeight: 224, inputWidth: 224)
    let extractor = try network.extractor(outputs: outputs, inputHeight: 224, inputWidth: 224, options: options)
    let n = args.batch
    var rng = UInt64(0x1234_5678)
    let input = (0..<(n * 3 * 224 * 224)).map { _ -> Float in
        rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Float(rng >> 40) * 0x1p-24 * 4 - 2
    }
    let buffers = outputs.map { UnsafeMutablePointer<Float>.allocate(capacity: n * $0.dimension) }
    var times: [Double] = []
    var cpu = 0.0
    try input.withUnsafeBufferPointer { p in
        guard let base = p.baseAddress else { throw LinprobeError(.usage, "--batch must be positive") }
        for i in 0..<(args.iterations + args.warmup) {
            let t = now(), c = cpuSeconds()
            try extractor.forward(input: base, count: n, destinations: buffers)
            times.append(now() - t)
            if i >= args.warmup { cpu += cpuSeconds() - c }
        }
    }
    let measured = Array(times.dropFirst(args.warmup))
    let imagesPerSecond = Double(n) / median(measured)
    let macs = spec.multiplyAccumulates(inputHeight: 224, inputWidth: 224, taps: ["lastCLS"]) ?? 0
    print(
        """
        {"engine": "linprobe", "model": "\(args.vit)", "batch": \(n), "threads": \(args.threads), \
        "parallelism": "\(args.parallelism?.rawValue ?? "auto")", "blas_core": "\(BLAS.coreName)", \
        "images_per_second": \(imagesPerSecond), "seconds_per_batch_all": [\(measured.map { String($0) }.joined(separator: ", "))], \
        "cpu_seconds_per_image": \(cpu / Double(n * args.iterations)), "macs_per_image": \(macs), \
        "peak_rss_mb": \(peakRSSMegabytes()), "weights_seconds": \(loadSeconds)}
        """)
}
