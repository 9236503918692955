// Writes a synthetic feature store slowly, flushing after every batch, so tests can kill it
// with SIGKILL part-way and check that the store resumes from its watermark.
// Usage: StoreKillHelper <final.h5> <rows> <batch> <sleep-ms>
import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport

let args = CommandLine.arguments
guard args.count == 5, let total = Int(args[2]), let batch = Int(args[3]), let sleepMS = Int(args[4]) else {
    FileHandle.standardError.write(Data("usage: StoreKillHelper <final.h5> <rows> <batch> <sleep-ms>\n".utf8))
    exit(64)
}
let layers = SyntheticRows.layers.map { StoreLayer(name: $0.name, shapeCHW: $0.shape) }
let metadata = StoreMetadata(fingerprint: "synthetic", split: "train", numClasses: SyntheticRows.classes,
                             classNames: (0..<SyntheticRows.classes).map { "c\($0)" })
do {
    let writer = try FeatureStoreWriter(creating: args[1], layers: layers, targetLayout: .multiLabel(classes: SyntheticRows.classes),
                                        metadata: metadata, dtype: .float32, chunkRows: 8)
    var row = 0
    while row < total {
        let n = min(batch, total - row)
        let rows = row..<(row + n)
        try writer.append(FeatureBatch(
            count: n, features: layers.indices.map { SyntheticRows.features(rows: rows, layer: $0) },
            targets: SyntheticRows.targets(rows: rows), indices: rows.map(Int64.init), imagePaths: SyntheticRows.paths(rows: rows)))
        try writer.flush()
        row += n
        FileHandle.standardOutput.write(Data("flushed \(writer.rowsWritten)\n".utf8))
        usleep(useconds_t(sleepMS * 1000))
    }
    try writer.finish()
    FileHandle.standardOutput.write(Data("finished\n".utf8))
} catch {
    FileHandle.standardError.write(Data("error: \(oneLine(error))\n".utf8))
    exit(1)
}
