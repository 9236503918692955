// Feature-store throughput: write and read one float32 layer of ROWS × DIM through Linprobe's
// store, the way extraction writes (batches of 256 rows) and training reads (blocks of rows).
// Usage: bench-store <folder> <rows> <dim> <deflate 0-9> <repeats>
// Prints one JSON line per repeat: {"write_s": ..., "read_s": ..., "write_cpu_s": ..., "read_cpu_s": ...,
// "file_bytes": ...} (CPU = user + system time of this process, less noisy than wall time on a shared machine).
import Foundation
import LinprobeCore
import LinprobeStore

let args = CommandLine.arguments
guard args.count == 6, let rows = Int(args[2]), let dim = Int(args[3]), let level = Int(args[4]),
    let repeats = Int(args[5])
else {
    FileHandle.standardError.write(Data("usage: bench-store <folder> <rows> <dim> <deflate> <repeats>\n".utf8))
    exit(64)
}
let folder = args[1]
let batch = 256
// Deterministic, mildly compressible content (ReLU-like features: a third are zero).
func value(_ i: Int) -> Float { i % 3 == 0 ? 0 : Float((i &* 2_654_435_761) % 10_007) / 10_007 }
let block: [Float] = (0..<(batch * dim)).map(value)
let targets = [Int64](repeating: 1, count: batch)
// A full batch is built once, as h5py's reference hands the same array to every write.
let fullBatch = FeatureBatch(
    count: batch, features: [block], targets: targets, indices: [], imagePaths: Array(repeating: "x.jpg", count: batch))

func batchOf(_ n: Int, at row: Int) -> FeatureBatch {
    var b =
        n == batch
        ? fullBatch
        : FeatureBatch(
            count: n, features: [Array(block[0..<(n * dim)])], targets: Array(targets[0..<n]), indices: [],
            imagePaths: Array(repeating: "x.jpg", count: n))
    b.indices = (row..<(row + n)).map(Int64.init)
    return b
}

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
    return user + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}

/// Wall and CPU seconds of `body`.
func seconds(_ body: () throws -> Void) rethrows -> (wall: Double, cpu: Double) {
    let start = DispatchTime.now().uptimeNanoseconds
    let cpu = cpuSeconds()
    try body()
    return (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, cpuSeconds() - cpu)
}

do {
    for r in 0..<repeats {
        let path = (folder as NSString).appendingPathComponent("bench-store-\(r).h5")
        try? FileManager.default.removeItem(atPath: path)
        let layer = StoreLayer(name: "res4", shapeCHW: [dim, 1, 1])
        let meta = StoreMetadata(fingerprint: "bench", split: "train", numClasses: 1000, classNames: [])
        let write = try seconds {
            let writer = try FeatureStoreWriter(
                creating: path, layers: [layer], targetLayout: .singleLabel, metadata: meta,
                deflate: level == 0 ? nil : level)
            var row = 0
            while row < rows {
                let n = min(batch, rows - row)
                try writer.append(batchOf(n, at: row))
                row += n
                if row % (batch * 16) == 0 { try writer.flush() }
            }
            try writer.finish()
        }
        var sum: Double = 0
        let read = try seconds {
            let reader = try FeatureStoreReader(path: path)
            let blockRows = 4096
            var buffer = [Float](repeating: 0, count: blockRows * dim)
            var row = 0
            while row < reader.count {
                let n = min(blockRows, reader.count - row)
                try buffer.withUnsafeMutableBufferPointer {
                    try reader.readFeatures(layer: "res4", rows: row..<(row + n), into: $0)
                }
                sum += Double(buffer[0])
                row += n
            }
        }
        let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0
        print(
            "{\"write_s\": \(write.wall), \"read_s\": \(read.wall), \"write_cpu_s\": \(write.cpu), "
                + "\"read_cpu_s\": \(read.cpu), \"file_bytes\": \(bytes), \"check\": \(sum)}")
        try? FileManager.default.removeItem(atPath: path)
    }
} catch {
    FileHandle.standardError.write(Data("error: \(oneLine(error))\n".utf8))
    exit(1)
}
