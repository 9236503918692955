import Foundation
import LinprobeBLAS
import LinprobeCheckpoint
import LinprobeCore
import LinprobeTrunk

/// `--regnet NAME`: Linprobe's RegNet (ClassyVision's `regnet_y_*` widths, e.g. `regnet_y_8gf`) on
/// VISSL's ImageNet-1k overlay taps (res4 AdaptiveAvgPool2d [3, 3], res5 [6, 1], avgpool),
/// seeded random weights, 224×224, one JSON line like the ResNet run.
func benchRegNet(_ args: Arguments) throws {
    let model = ConfigNode(
        path: "MODEL", value: ["TRUNK": ["NAME": "regnet", "REGNET": ["name": .string(args.regnet)]]])
    let spec = try RegNetSpec(model: model, trunkName: "regnet")
    let t0 = now()
    let options = TrunkRunOptions(
        threads: args.threads, parallelism: args.parallelism ?? .batch, algorithm: args.algorithm,
        tuneParallelism: args.parallelism == nil)
    let network = try spec.build(weights: TrunkWeights.random(architecture: spec, seed: 0), options: options)
    let loadSeconds = now() - t0
    let map = PoolOpsMap(entries: [
        PoolOpsMap.Entry(tap: "res4", op: .adaptiveAvgPool(outH: 3, outW: 3)),
        PoolOpsMap.Entry(tap: "res5", op: .adaptiveAvgPool(outH: 6, outW: 1)),
        PoolOpsMap.Entry(tap: "avgpool", op: .identity),
    ])
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
    let macs = spec.multiplyAccumulates(inputHeight: 224, inputWidth: 224, taps: ["avgpool"]) ?? 0
    print(
        """
        {"engine": "linprobe", "model": "\(args.regnet)", "batch": \(n), "threads": \(args.threads), \
        "parallelism": "\(args.parallelism?.rawValue ?? "auto")", "blas_core": "\(BLAS.coreName)", \
        "images_per_second": \(Double(n) / median(measured)), \
        "seconds_per_batch_all": [\(measured.map { String($0) }.joined(separator: ", "))], \
        "cpu_seconds_per_image": \(cpu / Double(n * args.iterations)), "macs_per_image": \(macs), \
        "peak_rss_mb": \(peakRSSMegabytes()), "weights_seconds": \(loadSeconds)}
        """)
}
