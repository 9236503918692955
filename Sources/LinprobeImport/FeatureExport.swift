import Foundation
import LinprobeCheckpoint
import LinprobeCore
import LinprobeStore

/// A feature store written out for other tools, streamed chunk by chunk:
///
/// - `npy`: a folder with `features_<layer>.npy` (float32 `[N, D]`, or `[N, C, H, W]` when the
///   layer's `shape_chw` has a spatial extent), `targets.npy` (int64 `[N]` or `[N, C]`),
///   `indices.npy` (int64 `[N]`), `image_paths.npy` (`<U…` `[N]`) and, when the store names its
///   classes, `class_names.npy`;
/// - `npz`: the same arrays as the keys of one `np.savez` archive (uncompressed, so it can be
///   read back a row range at a time).
///
/// `import-features` reads both back into a store with identical features and labels.
public enum FeatureExport {
    public enum Format: String, Sendable, CaseIterable {
        case npy
        case npz
    }

    /// Rows read from the store at once.
    static let blockRows = 4096

    /// Exports `layers` (empty = every layer) of `store` to `destination` (a folder for `npy`, a
    /// file for `npz`); returns the files written.
    @discardableResult
    public static func export(
        _ store: FeatureStoreReader, format: Format, to destination: String, layers wanted: [String] = [],
        progress: ProgressReporter? = nil
    ) throws -> [String] {
        let layers = try store.layers(named: wanted)
        let arrays = try self.arrays(store, layers: layers)
        let total = arrays.reduce(0) { $0 + ($1.isFeature ? store.count : 0) }
        progress?.begin("export", total: total, unit: "rows")
        defer { progress?.finish() }
        switch format {
        case .npy:
            try Paths.ensureDirectory(destination)
            return try arrays.map { array in
                let path = Paths.join(destination, array.name + ".npy")
                let stream = try NPYWriter.Stream(
                    path: path, descr: array.descr, shape: array.shape, itemSize: array.itemSize)
                try array.write(store) { data in
                    try stream.append(data)
                    if array.isFeature { progress?.advance(by: data.count / max(1, array.rowBytes)) }
                }
                try stream.finish()
                return path
            }
        case .npz:
            try Paths.ensureDirectory(Paths.parent(Paths.absolute(destination)))
            let partial = destination + ".partial"
            let zip = try ZipWriter(path: partial)
            for array in arrays {
                let header = NPYWriter.header(descr: array.descr, shape: array.shape)
                let bytes = UInt64(header.count) + UInt64(array.shape.reduce(1, *) * array.itemSize)
                try zip.beginEntry(name: array.name + ".npy", size: bytes)
                try zip.write(header)
                try array.write(store) { data in
                    try zip.write(data)
                    if array.isFeature { progress?.advance(by: data.count / max(1, array.rowBytes)) }
                }
                try zip.endEntry()
            }
            try zip.finish()
            if rename(partial, destination) != 0 {
                throw LinprobeError(
                    .io, "\(partial): cannot rename to \(destination): \(String(cString: strerror(errno)))")
            }
            return [destination]
        }
    }

    /// One exported array: its key, dtype, shape and how its bytes are produced.
    struct ExportedArray {
        var name: String
        var descr: String
        var shape: [Int]
        var itemSize: Int
        var isFeature: Bool
        /// Bytes of one row.
        var rowBytes: Int { (MemoryBudget.product(Array(shape.dropFirst())) ?? 0) * itemSize }
        /// Produces the data in blocks.
        var produce: (FeatureStoreReader, Range<Int>) throws -> Data

        func write(_ store: FeatureStoreReader, _ sink: (Data) throws -> Void) throws {
            let rows = shape.first ?? 0
            for start in stride(from: 0, to: rows, by: FeatureExport.blockRows) {
                try sink(try produce(store, start..<min(rows, start + FeatureExport.blockRows)))
            }
        }
    }

    static func arrays(_ store: FeatureStoreReader, layers: [StoredLayerInfo]) throws -> [ExportedArray] {
        let n = store.count
        var out: [ExportedArray] = layers.map { layer in
            let spatial = layer.shapeCHW[1] * layer.shapeCHW[2] > 1
            return ExportedArray(
                name: "features_\(layer.name)", descr: "<f4", shape: spatial ? [n] + layer.shapeCHW : [n, layer.dim],
                itemSize: 4, isFeature: true
            ) { store, range in
                var values = [Float](repeating: 0, count: range.count * layer.dim)
                try values.withUnsafeMutableBufferPointer {
                    try store.readFeatures(layer: layer.name, rows: range, into: $0)
                }
                return values.withUnsafeBytes { Data($0) }
            }
        }
        let width = store.targetLayout.width
        let targetShape = store.targetLayout == .singleLabel ? [n] : [n, width]
        out.append(
            ExportedArray(name: "targets", descr: "<i8", shape: targetShape, itemSize: 8, isFeature: false) {
                store, range in
                try store.targets(rows: range).withUnsafeBytes { Data($0) }
            })
        out.append(
            ExportedArray(name: "indices", descr: "<i8", shape: [n], itemSize: 8, isFeature: false) { store, range in
                try store.indices(rows: range).withUnsafeBytes { Data($0) }
            })
        let pathWidth = try longest(store)
        out.append(
            ExportedArray(
                name: "image_paths", descr: "<U\(pathWidth)", shape: [n], itemSize: 4 * pathWidth, isFeature: false
            ) { store, range in NPYWriter.unicodeElements(try store.imagePaths(rows: range), width: pathWidth) })
        let names = store.classNames
        if !names.isEmpty {
            let nameWidth = max(1, names.map { $0.unicodeScalars.count }.max() ?? 1)
            out.append(
                ExportedArray(
                    name: "class_names", descr: "<U\(nameWidth)", shape: [names.count], itemSize: 4 * nameWidth,
                    isFeature: false
                ) { _, range in NPYWriter.unicodeElements(Array(names[range]), width: nameWidth) })
        }
        return out
    }

    /// The longest image path in unicode scalars (at least 1: NumPy has no `<U0`).
    static func longest(_ store: FeatureStoreReader) throws -> Int {
        var width = 1
        for start in stride(from: 0, to: store.count, by: blockRows * 16) {
            let paths = try store.imagePaths(rows: start..<min(store.count, start + blockRows * 16))
            width = max(width, paths.map { $0.unicodeScalars.count }.max() ?? 1)
        }
        return width
    }
}
