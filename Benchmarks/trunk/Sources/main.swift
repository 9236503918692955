// bench-trunk: throughput of Linprobe's ResNet trunk (all taps of a pool-op map, one pass),
// printed as one JSON line so Benchmarks/trunk/bench.sh can put it next to PyTorch and
// onnxruntime measured in the same run. Not a test: nothing here asserts a time.
import Foundation
import LinprobeBLAS
import LinprobeCheckpoint
import LinprobeCore
import LinprobeTrunk

#if canImport(Glibc)
    import Glibc
#endif

func usage(_ message: String) -> Never {
    FileHandle.standardError.write(Data(message.utf8))
    exit(64)
}

struct Arguments {
    var batch = 32, size = 224, depth = 50, width = 1, iterations = 5, warmup = 1
    var threads = ProcessInfo.processInfo.activeProcessorCount
    /// nil: `auto` (measured, as the pipeline's default).
    var parallelism: ResNetExtractor.Parallelism? = nil
    var microBatch = 8, chunkRows = 512
    var gemmProbe = false
    var algorithm = ResNetTrunk.Algorithm.auto
    /// A real weights file instead of the seeded random initialisation.
    var weights = ""
    var stateDictKey = "classy_state_dict"
    var dump = ""
    var canonicalTaps = true
    /// `s16` or `b16`: a ViT-S/16 or ViT-B/16 (VISSL's dino_vit overlays: concatCLS4 + lastCLS) instead.
    var vit = ""
    /// A ClassyVision RegNet name (`regnet_y_8gf`; VISSL's regnet8Gf overlay taps) instead.
    var regnet = ""

    init() {
        var it = CommandLine.arguments.dropFirst().makeIterator()
        while let a = it.next() {
            func value() -> String {
                guard let v = it.next() else { usage("missing value for \(a)\n") }
                return v
            }
            func int() -> Int {
                let v = value()
                guard let i = Int(v) else { usage("\(a): '\(v)' is not an integer\n") }
                return i
            }
            switch a {
            case "--batch": batch = int()
            case "--size": size = int()
            case "--depth": depth = int()
            case "--width": width = int()
            case "--iterations": iterations = int()
            case "--warmup": warmup = int()
            case "--threads": threads = int()
            case "--micro-batch": microBatch = int()
            case "--chunk-rows": chunkRows = int()
            case "--parallelism":
                let v = value()
                guard v == "auto" || ResNetExtractor.Parallelism(rawValue: v) != nil else {
                    usage("--parallelism: auto, batch or blas\n")
                }
                parallelism = ResNetExtractor.Parallelism(rawValue: v)
            case "--gemm-probe": gemmProbe = true
            case "--weights": weights = value()
            case "--state-dict-key": stateDictKey = value()
            case "--dump": dump = value()
            case "--algorithm":
                guard let a = ResNetTrunk.Algorithm(rawValue: value()) else {
                    usage("--algorithm: auto, winograd, winograd4 or im2col\n")
                }
                algorithm = a
            case "--trunk-only": canonicalTaps = false
            case "--vit": vit = value()
            case "--regnet": regnet = value()
            default:
                usage("unknown argument \(a)\n")
            }
        }
    }
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func peakRSSMegabytes() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// User + system CPU seconds of this process so far (on a busy machine, CPU time per image is a
/// steadier measure of the work done than wall time).
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) * 1e-6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) * 1e-6
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

let args = Arguments()

if args.gemmProbe {
    // GEMM-only time of ResNet-50's convolutions in the two candidate layouts, same BLAS, same
    // threads: NHWC with the batch folded into M (what Linprobe does) versus NCHW one image at a
    // time (C[Cout × HW] = W[Cout × K] · col[K × HW]).
    BLAS.setThreads(args.threads)
    struct Shape { let cout: Int, k: Int, hw: Int }
    var shapes: [Shape] = [Shape(cout: 64, k: 147, hw: 112 * 112)]
    let spec = try ResNetSpec(depth: 50)
    var hw = 56
    var inplanes = 64
    for i in 0..<4 {
        for b in 0..<spec.blockCounts[i] {
            let s = b == 0 ? spec.stride(stage: i) : 1
            let width = spec.bottleneckWidth(stage: i), out = spec.outputChannels(stage: i)
            let ohw = (hw - 1) / s + 1
            shapes.append(Shape(cout: width, k: inplanes, hw: hw * hw))
            shapes.append(Shape(cout: width, k: width * 9, hw: ohw * ohw))
            shapes.append(Shape(cout: out, k: width, hw: ohw * ohw))
            if b == 0 { shapes.append(Shape(cout: out, k: inplanes, hw: ohw * ohw)) }
            inplanes = out
            hw = ohw
        }
    }
    let n = args.batch
    let maxA = shapes.map { $0.k * $0.hw * n }.reduce(0, max), maxB = shapes.map { $0.k * $0.cout }.reduce(0, max)
    let maxC = shapes.map { $0.cout * $0.hw * n }.reduce(0, max)
    let a = UnsafeMutablePointer<Float>.allocate(capacity: maxA); a.initialize(repeating: 0.5, count: maxA)
    let b = UnsafeMutablePointer<Float>.allocate(capacity: maxB); b.initialize(repeating: 0.25, count: maxB)
    let c = UnsafeMutablePointer<Float>.allocate(capacity: maxC); c.initialize(repeating: 0, count: maxC)
    var results: [String: Double] = [:]
    for layout in ["nhwc_batched", "nchw_per_image"] {
        var times: [Double] = []
        for _ in 0..<(args.iterations + args.warmup) {
            let t0 = now()
            for s in shapes {
                if layout == "nhwc_batched" {
                    BLAS.sgemm(m: n * s.hw, n: s.cout, k: s.k, a: a, b: b, c: c)
                } else {
                    for _ in 0..<n { BLAS.sgemm(m: s.cout, n: s.hw, k: s.k, a: b, b: a, c: c) }
                }
            }
            times.append(now() - t0)
        }
        results[layout] = Double(n) / median(Array(times.dropFirst(args.warmup)))
    }
    let macs = shapes.reduce(0) { $0 + $1.cout * $1.k * $1.hw }
    print(
        "{\"gemm_probe\": true, \"batch\": \(n), \"threads\": \(args.threads), \"blas_core\": \"\(BLAS.coreName)\", \"macs_per_image\": \(macs), \"nhwc_batched_img_s\": \(results["nhwc_batched", default: .nan]), \"nchw_per_image_img_s\": \(results["nchw_per_image", default: .nan])}"
    )
    exit(0)
}

if !args.regnet.isEmpty {
    do {
        try benchRegNet(args)
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("bench-trunk: \(oneLine(error))\n".utf8))
        exit(1)
    }
}

if !args.vit.isEmpty {
    do {
        try benchViT(args)
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("bench-trunk: \(oneLine(error))\n".utf8))
        exit(1)
    }
}

do {
    let spec = try ResNetSpec(depth: args.depth, widthMultiplier: args.width)
    let map: PoolOpsMap = args.canonicalTaps ? .visslResNet50 : PoolOpsMap(entries: [])
    let t0 = now()
    let settings = WeightsInit(
        paramsFile: args.weights, stateDictKeyName: args.stateDictKey.isEmpty ? [] : [args.stateDictKey])
    let trunk = try ResNetTrunk(
        weights: TrunkWeights.load(settings, architecture: spec, randomSeed: 0), algorithm: args.algorithm)
    let loadSeconds = now() - t0
    let options = ResNetExtractor.Options(
        threads: args.threads, parallelism: args.parallelism ?? .batch,
        microBatch: args.microBatch, chunkRows: args.chunkRows, tuneParallelism: args.parallelism == nil)
    let t1 = now()
    let extractor = try ResNetExtractor(
        trunk: trunk, map: map, inputHeight: args.size, inputWidth: args.size, options: options)
    let setupSeconds = now() - t1
    let n = args.batch
    // Deterministic pseudo-random input (SplitMix64; content does not change the work done).
    var state: UInt64 = 0x1234_5678
    let input = (0..<(n * 3 * args.size * args.size)).map { _ -> Float in
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Float(z >> 40) * 0x1p-24 * 4 - 2
    }
    let buffers = extractor.outputs.map { UnsafeMutablePointer<Float>.allocate(capacity: n * $0.dimension) }
    var times: [Double] = []
    var cpu = 0.0
    try input.withUnsafeBufferPointer { p in
        guard let base = p.baseAddress else { throw LinprobeError(.usage, "--batch and --size must be positive") }
        for i in 0..<(args.iterations + args.warmup) {
            let t = now(), c = cpuSeconds()
            try extractor.forward(input: base, count: n, height: args.size, width: args.size, destinations: buffers)
            times.append(now() - t)
            if i >= args.warmup { cpu += cpuSeconds() - c }
        }
    }
    if !args.dump.isEmpty {
        // Raw float32 features of every output, one after the other (for checks against other engines).
        var data = Data()
        for (k, out) in extractor.outputs.enumerated() {
            data.append(UnsafeBufferPointer(start: buffers[k], count: n * out.dimension))
        }
        try data.write(to: URL(fileURLWithPath: args.dump))
        FileHandle.standardError.write(Data("notes: \(trunk.notes)\n".utf8))
    }
    let measured = Array(times.dropFirst(args.warmup))
    let seconds = median(measured)
    let imagesPerSecond = Double(n) / seconds
    let macs = spec.multiplyAccumulates(inputHeight: args.size, inputWidth: args.size, through: extractor.deepestTap)
    let gflops = 2 * Double(macs) * imagesPerSecond / 1e9
    let dims = extractor.outputs.map { "\"\($0.name)\": \($0.dimension)" }.joined(separator: ", ")
    print(
        """
        {"engine": "linprobe", "depth": \(args.depth), "width": \(args.width), "batch": \(n), "size": \(args.size), \
        "threads": \(args.threads), "parallelism": "\(args.parallelism?.rawValue ?? "auto")", "algorithm": "\(args.algorithm.rawValue)", \
        "parallelism_used": "\(extractor.parallelism.rawValue)", "tuning": \(extractor.provenance["tuning"]?.canonicalText ?? "null"), \
        "extractor_setup_seconds": \(setupSeconds), "micro_batch": \(args.microBatch), \
        "chunk_rows": \(args.chunkRows), "blas_core": "\(BLAS.coreName)", "images_per_second": \(imagesPerSecond), \
        "seconds_per_batch_median": \(seconds), "seconds_per_batch_all": [\(measured.map { String($0) }.joined(separator: ", "))], \
        "gflops": \(gflops), "cpu_seconds_per_image": \(cpu / Double(n * args.iterations)), "macs_per_image": \(macs), "peak_rss_mb": \(peakRSSMegabytes()), \
        "workspace_mb": \(Double(extractor.workspaceBytes) / 1_048_576), "weights_fold_seconds": \(loadSeconds), "outputs": {\(dims)}}
        """)
} catch {
    FileHandle.standardError.write(Data("bench-trunk: \(oneLine(error))\n".utf8))
    exit(1)
}
