// A helper process for tests that need a second process:
//   store-write <final.h5> <rows> <batch> <sleep-ms>
//       writes a synthetic feature store slowly, flushing after every batch, so a test can kill
//       it with SIGKILL part-way and check that the store resumes from its watermark;
//   manifest-put <workdir> <prefix> <count>
//       adds <count> records to <workdir>/manifest.json one update at a time (concurrency tests).
import Foundation
import LinprobeCore
import LinprobeStore
import LinprobeTestSupport

func fail(_ message: String, _ code: Int32) -> Never {
    FileHandle.standardError.write(Data("\(message)\n".utf8))
    exit(code)
}

let args = Array(CommandLine.arguments.dropFirst())
switch args.first {
case "store-write":
    guard args.count == 5, let total = Int(args[2]), let batch = Int(args[3]), let sleepMS = Int(args[4]) else {
        fail("usage: LinprobeTestHelper store-write <final.h5> <rows> <batch> <sleep-ms>", 64)
    }
    let layers = SyntheticRows.layers.map { StoreLayer(name: $0.name, shapeCHW: $0.shape) }
    let metadata = StoreMetadata(
        fingerprint: "synthetic", split: "train", numClasses: SyntheticRows.classes,
        classNames: (0..<SyntheticRows.classes).map { "c\($0)" })
    do {
        let writer = try FeatureStoreWriter(
            creating: args[1], layers: layers, targetLayout: .multiLabel(classes: SyntheticRows.classes),
            metadata: metadata, dtype: .float32, chunkRows: 8)
        var row = 0
        while row < total {
            let n = min(batch, total - row)
            let rows = row..<(row + n)
            try writer.append(
                FeatureBatch(
                    count: n, features: layers.indices.map { SyntheticRows.features(rows: rows, layer: $0) },
                    targets: SyntheticRows.targets(rows: rows), indices: rows.map(Int64.init),
                    imagePaths: SyntheticRows.paths(rows: rows)))
            try writer.flush()
            row += n
            FileHandle.standardOutput.write(Data("flushed \(writer.rowsWritten)\n".utf8))
            usleep(useconds_t(sleepMS * 1000))
        }
        try writer.finish()
        FileHandle.standardOutput.write(Data("finished\n".utf8))
    } catch {
        fail("error: \(oneLine(error))", 1)
    }
case "manifest-put":
    guard args.count == 4, let count = Int(args[3]) else {
        fail("usage: LinprobeTestHelper manifest-put <workdir> <prefix> <count>", 64)
    }
    let store = ManifestStore(workdir: args[1])
    do {
        for i in 0..<count {
            try store.put(
                ManifestRecord(
                    stage: "test", fingerprint: "\(args[2])-\(i)", status: .complete,
                    parameters: ["i": .int(Int64(i))]))
        }
    } catch {
        fail("error: \(oneLine(error))", 1)
    }
default:
    fail("usage: LinprobeTestHelper store-write|manifest-put ...", 64)
}
