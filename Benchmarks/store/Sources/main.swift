// Feature-store throughput: write and read one float32 layer of ROWS × DIM through Linprobe's
// store, the way extraction writes (batches of 256 rows) and training reads (blocks of rows).
// Usage: bench-store <folder> <rows> <dim> <deflate 0-9> <repeats>
// Prints one JSON line per repeat: {"write_s": ..., "read_s": ..., "bytes": ...}.
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
var block = [Float](repeating: 0, count: batch * dim)
for i in block.indices { block[i] = i % 3 == 0 ? 0 : Float((i &* 2_654_435_761) % 10_007) / 10_007 }
let targets = [Int64](repeating: 1, count: batch)

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
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
                try writer.append(
                    FeatureBatch(
                        count: n, features: [Array(block[0..<(n * dim)])], targets: Array(targets[0..<n]),
                        indices: (row..<(row + n)).map(Int64.init), imagePaths: Array(repeating: "x.jpg", count: n)))
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
        print("{\"write_s\": \(write), \"read_s\": \(read), \"file_bytes\": \(bytes), \"check\": \(sum)}")
        try? FileManager.default.removeItem(atPath: path)
    }
} catch {
    FileHandle.standardError.write(Data("error: \(oneLine(error))\n".utf8))
    exit(1)
}
