import Foundation
import LinprobeCore
import LinprobeHDF5

/// Streams rows into `<name>.h5.partial` and publishes `<name>.h5` when finished.
///
/// Crash safety: rows are buffered until a whole chunk (`chunkRows` rows) is full and each
/// chunk is written exactly once, so rows below the watermark are never rewritten. `flush()`
/// makes the written chunks durable and only then advances the `rows_written` watermark. A
/// killed writer leaves a `.partial` file with `complete = 0`; `resume` reopens it, cuts every
/// dataset back to the watermark and carries on from there.
public final class FeatureStoreWriter {
    public let finalPath: String
    public let partialPath: String
    public let layers: [StoreLayer]
    public let targetLayout: TargetLayout
    public let chunkRows: Int
    public let dtype: FeatureDType

    private var file: HDF5File?
    private var featureSets: [HDF5Dataset]
    private var targetSet: HDF5Dataset
    private var indexSet: HDF5Dataset
    private var pathSet: HDF5Dataset
    private var unreadableSet: HDF5Dataset

    /// Rows durably recorded (the watermark).
    public private(set) var rowsWritten: Int
    /// Rows written to HDF5 (whole chunks), possibly not yet flushed.
    private var rowsInFile: Int
    /// Rows accepted but still buffered (fewer than a chunk after each append).
    private var pending: FeatureBatch

    /// Whether a write to the file failed: HDF5's cache may then hold data it cannot write, and
    /// closing the file would try again (and can crash inside HDF5).
    private var writeFailed = false

    /// Rows accepted so far, buffered ones included.
    public var rowsAppended: Int { rowsInFile + pending.count }

    /// A sensible chunk height: about 2 MiB for the widest layer, between 8 and 256 rows.
    public static func defaultChunkRows(layers: [StoreLayer], dtype: FeatureDType) -> Int {
        let widest = max(1, layers.map(\.dim).max() ?? 1) * dtype.bytes
        var rows = 8
        while rows < 256, (rows * 2) * widest <= (2 << 20) { rows *= 2 }
        return rows
    }

    /// Creates a new partial store, replacing any earlier partial file of the same name.
    public init(
        creating finalPath: String, layers: [StoreLayer], targetLayout: TargetLayout, metadata: StoreMetadata,
        dtype: FeatureDType = .float32, deflate: Int? = nil, chunkRows: Int? = nil
    ) throws {
        guard !layers.isEmpty else {
            throw LinprobeError(.usage, "\(finalPath): a feature store needs at least one layer")
        }
        let names = layers.map(\.name)
        if Set(names).count != names.count {
            throw LinprobeError(.usage, "\(finalPath): layer names must be unique, got \(names)")
        }
        if let level = deflate, !(1...9).contains(level) {
            throw LinprobeError(.usage, "\(finalPath): deflate level must be 1–9, got \(level)")
        }
        self.finalPath = finalPath
        self.partialPath = finalPath + StoreLayout.partialSuffix
        self.layers = layers
        self.targetLayout = targetLayout
        self.dtype = dtype
        self.chunkRows = chunkRows ?? Self.defaultChunkRows(layers: layers, dtype: dtype)
        try FileManager.default.createDirectory(
            atPath: (finalPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        do {
            let f = try HDF5File.create(partialPath)
            try f.setAttribute("format", string: StoreLayout.format)
            try f.setAttribute("format_version", int64: StoreLayout.formatVersion)
            try f.setAttribute("complete", int64: 0)
            try f.setAttribute("rows_written", int64: 0)
            try f.setAttribute("chunk_rows", int64: Int64(self.chunkRows))
            try Self.writeMetadata(metadata, to: f)
            try f.setAttribute("layer_order", string: JSONValue.array(layers.map { .string($0.name) }).canonicalText)
            var sets: [HDF5Dataset] = []
            for layer in layers {
                let ds = try f.createExtensibleDataset(
                    StoreLayout.featurePath(layer.name), type: dtype == .float32 ? .float32 : .float16,
                    dims: [0, layer.dim], chunkRows: self.chunkRows, deflate: deflate, checksum: true)
                try ds.setAttribute("shape_chw", int64Array: layer.shapeCHW.map(Int64.init))
                sets.append(ds)
            }
            let targetDims = targetLayout == .singleLabel ? [0] : [0, targetLayout.width]
            targetSet = try f.createExtensibleDataset(
                StoreLayout.targets, type: .int64, dims: targetDims, chunkRows: self.chunkRows, checksum: true)
            indexSet = try f.createExtensibleDataset(
                StoreLayout.indices, type: .int64, dims: [0], chunkRows: self.chunkRows, checksum: true)
            pathSet = try f.createExtensibleDataset(
                StoreLayout.imagePaths, type: .utf8String, dims: [0], chunkRows: self.chunkRows)
            unreadableSet = try f.createExtensibleDataset(
                StoreLayout.unreadable, type: .int64, dims: [0], chunkRows: self.chunkRows, checksum: true)
            featureSets = sets
            try f.flush()
            file = f
        } catch let error as HDF5Error {
            throw LinprobeError(.io, "cannot create feature store: \(error.description)")
        }
        rowsWritten = 0
        rowsInFile = 0
        pending = FeatureBatch(count: 0, features: layers.map { _ in [] }, targets: [], indices: [], imagePaths: [])
    }

    /// Reopens an interrupted store and cuts it back to its watermark. Returns nil when there is
    /// no partial file. Throws when the partial file belongs to other inputs (fingerprint) or is
    /// unreadable; the caller then starts over with `init(creating:)`.
    public static func resume(finalPath: String, fingerprint: String) throws -> FeatureStoreWriter? {
        let partial = finalPath + StoreLayout.partialSuffix
        guard FileManager.default.fileExists(atPath: partial) else { return nil }
        return try FeatureStoreWriter(resuming: finalPath, fingerprint: fingerprint)
    }

    private init(resuming finalPath: String, fingerprint: String) throws {
        self.finalPath = finalPath
        self.partialPath = finalPath + StoreLayout.partialSuffix
        do {
            let f = try HDF5File.open(partialPath, writable: true)
            guard try f.attributeString("format") == StoreLayout.format,
                try f.attributeInt64("format_version") == StoreLayout.formatVersion
            else {
                throw LinprobeError(.incompatible, "\(partialPath): not a partial store of this format version")
            }
            guard try f.attributeString("fingerprint") == fingerprint else {
                throw LinprobeError(
                    .incompatible, "\(partialPath): partial store was made from other inputs (fingerprint differs)")
            }
            let watermark = Int(try f.attributeInt64("rows_written") ?? 0)
            let chunk = Int(try f.attributeInt64("chunk_rows") ?? 0)
            guard chunk > 0, watermark % chunk == 0 else {
                throw LinprobeError(
                    .corruptInput, "\(partialPath): watermark \(watermark) is not chunk-aligned (chunk \(chunk))")
            }
            var layers: [StoreLayer] = []
            var sets: [HDF5Dataset] = []
            for name in try f.members(ofGroup: StoreLayout.featuresGroup) {
                let ds = try f.openDataset(StoreLayout.featurePath(name))
                let shape = try ds.attributeInt64Array("shape_chw")?.map(Int.init) ?? [try ds.rowWidth(), 1, 1]
                layers.append(StoreLayer(name: name, shapeCHW: shape))
                sets.append(ds)
            }
            let order = try Self.layerOrder(f)
            if !order.isEmpty, Set(order) == Set(layers.map(\.name)) {
                let byName = Dictionary(uniqueKeysWithValues: zip(layers.map(\.name), zip(layers, sets)))
                let ordered = order.compactMap { byName[$0] }  // every name is there: the sets are equal
                layers = ordered.map(\.0)
                sets = ordered.map(\.1)
            }
            self.layers = layers
            self.featureSets = sets
            self.dtype = sets.first?.isFloat16 == true ? .float16 : .float32
            self.chunkRows = chunk
            targetSet = try f.openDataset(StoreLayout.targets)
            let targetDims = try targetSet.dims()
            targetLayout = targetDims.count == 1 ? .singleLabel : .multiLabel(classes: targetDims[1])
            indexSet = try f.openDataset(StoreLayout.indices)
            pathSet = try f.openDataset(StoreLayout.imagePaths)
            unreadableSet = try f.openDataset(StoreLayout.unreadable)
            for ds in featureSets + [targetSet, indexSet, pathSet, unreadableSet] {
                guard try ds.dims()[0] >= watermark else {
                    throw LinprobeError(
                        .corruptInput, "\(ds.objectName) has fewer rows than the watermark \(watermark)")
                }
                try ds.setRowCount(watermark)
            }
            try f.flush()
            file = f
            rowsWritten = watermark
            rowsInFile = watermark
        } catch let error as HDF5Error {
            throw LinprobeError(.corruptInput, "cannot resume partial store: \(error.description)")
        }
        pending = FeatureBatch(count: 0, features: layers.map { _ in [] }, targets: [], indices: [], imagePaths: [])
    }

    private static func writeMetadata(_ m: StoreMetadata, to f: HDF5File) throws {
        try f.setAttribute("fingerprint", string: m.fingerprint)
        try f.setAttribute("split", string: m.split)
        try f.setAttribute("num_classes", int64: Int64(m.numClasses))
        try f.setAttribute("class_names", string: JSONValue.array(m.classNames.map { .string($0) }).canonicalText)
        try f.setAttribute("trunk", string: m.trunk.canonicalText)
        try f.setAttribute("weights", string: m.weights.canonicalText)
        try f.setAttribute("transforms", string: m.transforms.canonicalText)
        try f.setAttribute("pool_ops", string: m.poolOps.canonicalText)
        try f.setAttribute("provenance", string: m.provenance.canonicalText)
        if m.trainViews != 1 { try f.setAttribute("train_views", int64: Int64(m.trainViews)) }
    }

    /// A root attribute of the open store as text (JSON attributes give their JSON text); nil
    /// when absent. Lets a resuming writer read what the interrupted run recorded.
    public func rootAttribute(_ name: String) throws -> String? {
        guard let file else { throw LinprobeError(.usage, "\(partialPath): store already finished") }
        do { return try file.attributeString(name) } catch {
            throw LinprobeError(.corruptInput, "\(partialPath): reading attribute \(name): \(error.description)")
        }
    }

    /// Replaces a root attribute holding JSON text (e.g. `provenance` when a resumed run adds its
    /// own settings). Reserved layout attributes (format, fingerprint, watermark, …) are refused.
    public func setRootAttribute(_ name: String, json value: JSONValue) throws {
        guard let file else { throw LinprobeError(.usage, "\(partialPath): store already finished") }
        let reserved: Set<String> = [
            "format", "format_version", "fingerprint", "split", "complete", "rows_written",
            "chunk_rows", "layer_order", "num_classes", "class_names", "train_views",
        ]
        guard !reserved.contains(name) else {
            throw LinprobeError(
                .usage, "\(partialPath): attribute \(name) is part of the store layout and cannot be replaced")
        }
        do { try file.setAttribute(name, string: value.canonicalText) } catch {
            writeFailed = true
            throw LinprobeError(
                .io, "\(partialPath): writing attribute \(name) failed (is the disk full?): \(error.description)")
        }
    }

    /// The configured layer order (HDF5 lists group members by name).
    private static func layerOrder(_ f: HDF5File) throws -> [String] {
        guard let text = try f.attributeString("layer_order"), let value = try? JSONValue.parse(text),
            let array = value.arrayValue
        else { return [] }
        return array.compactMap(\.stringValue)
    }

    /// Appends a batch. Whole chunks go to the file at once; the remainder stays buffered.
    /// Rows that complete a buffered chunk are buffered first; whole chunks after that are
    /// written straight from the batch (no copy), so a batch of whole chunks is never buffered.
    public func append(_ batch: FeatureBatch) throws {
        guard file != nil else { throw LinprobeError(.usage, "\(partialPath): store already finished") }
        try validate(batch)
        var next = 0
        if pending.count > 0 {
            next = min(batch.count, chunkRows - pending.count)
            buffer(batch, rows: 0..<next)
            if pending.count == chunkRows { try writePending(rows: chunkRows) }
        }
        let whole = ((batch.count - next) / chunkRows) * chunkRows
        if whole > 0 {
            try write(batch, rows: next..<(next + whole))
            next += whole
        }
        buffer(batch, rows: next..<batch.count)
    }

    /// Copies rows of `batch` to the end of the buffer.
    private func buffer(_ batch: FeatureBatch, rows: Range<Int>) {
        if rows.isEmpty { return }
        for l in layers.indices {
            let d = layers[l].dim
            pending.features[l].append(contentsOf: batch.features[l][(rows.lowerBound * d)..<(rows.upperBound * d)])
        }
        let w = targetLayout.width
        pending.targets.append(contentsOf: batch.targets[(rows.lowerBound * w)..<(rows.upperBound * w)])
        pending.indices.append(contentsOf: batch.indices[rows])
        pending.imagePaths.append(contentsOf: batch.imagePaths[rows])
        if batch.unreadable.isEmpty {
            pending.unreadable.append(contentsOf: repeatElement(false, count: rows.count))
        } else {
            pending.unreadable.append(contentsOf: batch.unreadable[rows])
        }
        pending.count += rows.count
    }

    private func validate(_ batch: FeatureBatch) throws {
        let n = batch.count
        func bad(_ what: String) -> LinprobeError {
            LinprobeError(.usage, "\(partialPath): batch of \(n) rows has \(what)")
        }
        guard batch.features.count == layers.count else {
            throw bad("\(batch.features.count) layers, store has \(layers.count)")
        }
        for (l, layer) in layers.enumerated() where batch.features[l].count != n * layer.dim {
            throw bad("\(batch.features[l].count) values for layer \(layer.name) (D = \(layer.dim))")
        }
        guard batch.targets.count == n * targetLayout.width else { throw bad("\(batch.targets.count) targets") }
        guard batch.indices.count == n else { throw bad("\(batch.indices.count) indices") }
        guard batch.imagePaths.count == n else { throw bad("\(batch.imagePaths.count) image paths") }
        guard batch.unreadable.isEmpty || batch.unreadable.count == n else {
            throw bad("\(batch.unreadable.count) unreadable flags")
        }
    }

    /// Writes the first `rows` buffered rows to the file and drops them from the buffer.
    private func writePending(rows: Int) throws {
        try write(pending, rows: 0..<rows)
        for l in layers.indices { pending.features[l].removeFirst(rows * layers[l].dim) }
        pending.targets.removeFirst(rows * targetLayout.width)
        pending.indices.removeFirst(rows)
        pending.imagePaths.removeFirst(rows)
        pending.unreadable.removeFirst(rows)
        pending.count -= rows
    }

    /// Writes rows `rows` of `source` to the file after the rows already there.
    private func write(_ source: FeatureBatch, rows: Range<Int>) throws {
        let start = rowsInFile
        let range = start..<(start + rows.count)
        do {
            for (l, ds) in featureSets.enumerated() {
                try ds.setRowCount(range.upperBound)
                let d = layers[l].dim
                try source.features[l].withUnsafeBufferPointer { p in
                    try ds.writeFloats(
                        rows: range,
                        from: UnsafeBufferPointer(rebasing: p[(rows.lowerBound * d)..<(rows.upperBound * d)]))
                }
            }
            let w = targetLayout.width
            try targetSet.setRowCount(range.upperBound)
            try targetSet.writeInt64(
                rows: range, from: Array(source.targets[(rows.lowerBound * w)..<(rows.upperBound * w)]))
            try indexSet.setRowCount(range.upperBound)
            try indexSet.writeInt64(rows: range, from: Array(source.indices[rows]))
            try pathSet.setRowCount(range.upperBound)
            try pathSet.writeStrings(rows: range, from: Array(source.imagePaths[rows]))
            try unreadableSet.setRowCount(range.upperBound)
            let flags = source.unreadable.isEmpty ? [] : source.unreadable[rows].map { $0 ? Int64(1) : 0 }
            try unreadableSet.writeInt64(
                rows: range, from: flags.isEmpty ? [Int64](repeating: 0, count: rows.count) : flags)
        } catch {
            writeFailed = true
            throw LinprobeError(
                .io,
                "writing rows \(range) failed (is the disk full?): \(oneLine(error)) — rerun to resume from row \(rowsWritten)"
            )
        }
        rowsInFile = range.upperBound
    }

    /// Makes every whole chunk written so far durable, then advances the watermark.
    public func flush() throws {
        guard let file else { return }
        do {
            try file.flush()
            try file.setAttribute("rows_written", int64: Int64(rowsInFile))
            try file.flush()
        } catch {
            writeFailed = true
            throw LinprobeError(.io, "flushing the store failed (is the disk full?): \(oneLine(error))")
        }
        rowsWritten = rowsInFile
    }

    /// Leaves the store partial and lets go of it now, on the calling thread: rows past the
    /// watermark (`rowsWritten`) are dropped when the run resumes. A healthy file is closed; one
    /// whose writes failed is not touched again (see `writeFailed`). Nothing is reported — the
    /// caller is already reporting the failure that made it give up.
    public func abandon() {
        guard let openFile = file else { return }
        let sets = featureSets + [targetSet, indexSet, pathSet, unreadableSet]
        if writeFailed {
            // Not through HDF5: the descriptor and its lock go when the process exits (HDF5's own
            // clean-up at exit is off in the executable, see `HDF5Library.skipCleanupAtExit`).
            sets.forEach { $0.forget() }
            openFile.forget()
        } else {
            sets.forEach { $0.close() }
            try? openFile.close()
        }
        file = nil
    }

    deinit { abandon() }

    /// Writes the remaining rows, marks the store complete and renames it to its final name.
    /// - Returns: the final path.
    @discardableResult
    public func finish() throws -> String {
        guard let openFile = file else { throw LinprobeError(.usage, "\(partialPath): store already finished") }
        if pending.count > 0 { try writePending(rows: pending.count) }
        do {
            try openFile.setAttribute("rows_written", int64: Int64(rowsInFile))
            try openFile.setAttribute("complete", int64: 1)
            try openFile.flush()
            // Every dataset first: HDF5 keeps the file (and its lock) open while any object is.
            for set in featureSets + [targetSet, indexSet, pathSet, unreadableSet] { set.close() }
            try openFile.close()
        } catch {
            writeFailed = true
            throw LinprobeError(.io, "finishing the store failed (is the disk full?): \(oneLine(error))")
        }
        self.file = nil
        rowsWritten = rowsInFile
        if rename(partialPath, finalPath) != 0 {
            let reason = String(cString: strerror(errno))
            throw LinprobeError(.io, "\(partialPath): cannot rename to \(finalPath): \(reason)")
        }
        return finalPath
    }
}
