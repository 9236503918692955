import Foundation
import LinprobeCore
import LinprobeHDF5

/// Information about one stored layer.
public struct StoredLayerInfo: Sendable, Equatable {
    public var name: String
    public var dim: Int
    public var shapeCHW: [Int]
    /// The stored element type as HDF5 reports it (`float32`, `float16`, `float64`, ...).
    public var storedType: String
    /// Rows per chunk, or nil for a contiguous dataset.
    public var chunkRows: Int?
}

/// Opens and validates a feature store, and reads rows into caller-provided buffers.
///
/// Accepts stores written by Linprobe and by other tools that follow the layout (h5py):
/// fixed- or variable-length strings, integers of any width, any chunking and compression.
/// A store with `complete = 0` is refused unless `allowIncomplete` is set (used by `inspect`).
public final class FeatureStoreReader {
    public let path: String
    public let count: Int
    public let layers: [StoredLayerInfo]
    public let targetLayout: TargetLayout
    public let formatVersion: Int
    public let isComplete: Bool
    public let fingerprint: String
    public let split: String
    public let numClasses: Int
    public let classNames: [String]
    /// Augmented views stored per sample (`train_views`; 1 when absent). With K > 1 the rows are
    /// sample-major — sample i in rows i·K … i·K+K−1 — so epoch e of linear training reads view
    /// e mod K of every sample (`rows(view:)`).
    public let views: Int

    private let file: HDF5File
    private var datasets: [String: HDF5Dataset] = [:]

    public init(path: String, allowIncomplete: Bool = false) throws {
        self.path = path
        try StoreStructureCheck.verify(path)
        let f: HDF5File
        do {
            f = try HDF5File.open(path)
        } catch {
            throw LinprobeError(
                FileManager.default.fileExists(atPath: path) ? .corruptInput : .missingInput,
                "cannot open feature store: \(error.description)")
        }
        file = f
        func fail(_ code: LinprobeError.Code, _ what: String) -> LinprobeError {
            LinprobeError(code, "\(path): \(what)")
        }
        do {
            guard let format = try f.attributeString("format") else {
                throw fail(
                    .incompatible,
                    "not a Linprobe feature store (no 'format' attribute; expected '\(StoreLayout.format)')")
            }
            guard format == StoreLayout.format else {
                throw fail(
                    .incompatible, "not a Linprobe feature store (format '\(format)', expected '\(StoreLayout.format)')"
                )
            }
            let version = Int(try f.attributeInt64("format_version") ?? -1)
            guard version >= 1 else {
                throw fail(.incompatible, "feature store has no valid 'format_version' attribute")
            }
            guard version <= Int(StoreLayout.formatVersion) else {
                throw fail(
                    .incompatible,
                    "feature store format version \(version) is newer than this Linprobe reads (\(StoreLayout.formatVersion)); upgrade Linprobe or re-extract"
                )
            }
            formatVersion = version
            isComplete = (try f.attributeInt64("complete") ?? 1) == 1
            if !isComplete && !allowIncomplete {
                let rows = try f.attributeInt64("rows_written") ?? 0
                throw fail(
                    .incompatible,
                    "feature store is incomplete (extraction stopped after \(rows) rows); rerun 'linprobe extract' to resume it"
                )
            }
            fingerprint = try f.attributeString("fingerprint") ?? ""
            try Self.checkParts(of: f, store: path, fingerprint: fingerprint, fail: fail)
            split = try f.attributeString("split") ?? ""
            let storedViews = try f.attributeInt64("train_views") ?? 1
            guard storedViews >= 1 else { throw fail(.corruptInput, "train_views = \(storedViews) must be at least 1") }
            views = Int(storedViews)

            guard try f.exists(StoreLayout.featuresGroup) else {
                throw fail(.corruptInput, "feature store has no /features group")
            }
            var names = try f.members(ofGroup: StoreLayout.featuresGroup)
            if let text = try f.attributeString("layer_order"),
                let order = (try? JSONValue.parse(text))?.arrayValue?.compactMap(\.stringValue),
                Set(order) == Set(names)
            {
                names = order
            }
            guard !names.isEmpty else { throw fail(.corruptInput, "feature store has no layers under /features") }
            var infos: [StoredLayerInfo] = []
            var rowCount: Int? = nil
            let watermark = try f.attributeInt64("rows_written").map(Int.init)
            if let w = watermark, w < 0 { throw fail(.corruptInput, "rows_written = \(w) is negative") }
            for name in names {
                let ds = try f.openDataset(StoreLayout.featurePath(name))
                let (info, rows) = try Self.layerInfo(name, ds, fail: fail)
                var n = rows
                if !isComplete, let w = watermark { n = min(n, w) }
                if let r = rowCount, r != n {
                    throw fail(
                        .corruptInput, "layers disagree on the number of rows (\(r) vs \(n) in /features/\(name))")
                }
                rowCount = n
                infos.append(info)
                datasets[name] = ds
            }
            layers = infos
            count = rowCount ?? 0
            if isComplete, let w = watermark, w != count {
                throw fail(.corruptInput, "rows_written = \(w) but the features have \(count) rows")
            }
            if isComplete, count % views != 0 {
                throw fail(.corruptInput, "\(count) rows are not a whole number of samples with train_views = \(views)")
            }

            guard try f.exists(StoreLayout.targets) else {
                throw fail(.corruptInput, "feature store has no /targets dataset")
            }
            let targets = try f.openDataset(StoreLayout.targets)
            let tdims = try targets.dims()
            guard targets.type.kind == .integer, tdims.count == 1 || tdims.count == 2 else {
                throw fail(
                    .corruptInput,
                    "/targets must be integer [N] or [N, C] with N = \(count), found \(targets.type) \(tdims)")
            }
            try Self.checkRows(StoreLayout.targets, tdims[0], count: count, complete: isComplete, fail: fail)
            if tdims.count == 2, MemoryBudget.product([count, tdims[1], 8]) == nil {
                throw fail(.corruptInput, "/targets: dimensions \(tdims) overflow")
            }
            targetLayout = tdims.count == 1 || tdims[1] == 1 ? .singleLabel : .multiLabel(classes: tdims[1])
            datasets["/targets"] = targets

            if let text = try f.attributeString("class_names"), let list = (try? JSONValue.parse(text))?.arrayValue {
                classNames = list.compactMap(\.stringValue)
            } else {
                classNames = []
            }
            if let n = try f.attributeInt64("num_classes") {
                guard n >= 0 else { throw fail(.corruptInput, "num_classes = \(n) is negative") }
                numClasses = Int(n)
            } else if case .multiLabel(let c) = targetLayout {
                numClasses = c
            } else {
                numClasses = classNames.count
            }
            for optional in [StoreLayout.indices, StoreLayout.imagePaths, StoreLayout.unreadable]
            where try f.exists(optional) {
                let ds = try f.openDataset(optional)
                try Self.checkRows(optional, try ds.dims().first ?? 0, count: count, complete: isComplete, fail: fail)
                datasets[optional] = ds
            }
        } catch let error as HDF5Error {
            throw LinprobeError(.corruptInput, "cannot read feature store: \(error.description)")
        }
    }

    /// A virtual store (`StoreMerger.writeVirtual`) reads its rows from its parts, and HDF5 reads
    /// a missing source as fill values: so every part must be there, a complete store of the same
    /// fingerprint, and pass the structure check in a child process like any store.
    private static func checkParts(
        of f: HDF5File, store: String, fingerprint: String, fail: (LinprobeError.Code, String) -> LinprobeError
    ) throws {
        guard let text = try? f.attributeString(StoreMerger.partsAttribute) else { return }
        guard let list = (try? JSONValue.parse(text))?.arrayValue?.compactMap(\.stringValue) else {
            throw fail(.corruptInput, "attribute \(StoreMerger.partsAttribute) is not a JSON list of part files")
        }
        let folder = Paths.parent(store)
        for name in list {
            let part = Paths.absolute(name, relativeTo: folder)
            guard FileManager.default.fileExists(atPath: part) else {
                throw fail(
                    .missingInput,
                    "part \(name) of this virtual store is missing (\(part)); restore it, or merge again (linprobe extract --shards N)"
                )
            }
            try StoreStructureCheck.verify(part)
            do {
                let partFile = try HDF5File.open(part)
                guard try partFile.attributeString("fingerprint") == fingerprint,
                    try partFile.attributeInt64("complete") == 1
                else {
                    throw fail(
                        .incompatible,
                        "part \(name) is not a complete store of fingerprint \(fingerprint); merge again (linprobe extract --shards N --force)"
                    )
                }
            } catch let error as HDF5Error {
                throw fail(.corruptInput, "part \(name): \(error.description)")
            }
        }
    }

    /// A layer's dataset checked before use: numeric `[N, D…]` whose row width and byte count do
    /// not overflow, and a `shape_chw` of three non-negative entries whose product is the width.
    private static func layerInfo(
        _ name: String, _ ds: HDF5Dataset, fail: (LinprobeError.Code, String) -> LinprobeError
    ) throws -> (StoredLayerInfo, rows: Int) {
        let where_ = StoreLayout.featurePath(name)
        let dims = try ds.dims()
        guard dims.count >= 2, ds.type.kind == .float || ds.type.kind == .integer else {
            throw fail(.corruptInput, "\(where_) must be a numeric [N, D] dataset, found \(ds.type) \(dims)")
        }
        guard let width = MemoryBudget.product(Array(dims.dropFirst())),
            MemoryBudget.product([dims[0], width, 8]) != nil
        else {
            throw fail(.corruptInput, "\(where_): dimensions \(dims) overflow")
        }
        let shape: [Int]
        if let stored = try ds.attributeInt64Array("shape_chw") {
            guard stored.count == 3, stored.allSatisfy({ $0 >= 0 }) else {
                throw fail(
                    .corruptInput,
                    "\(where_): attribute shape_chw \(stored) must be three non-negative sizes [C, H, W]")
            }
            shape = stored.map { Int($0) }
            guard let product = MemoryBudget.product(shape) else {
                throw fail(
                    .corruptInput,
                    "\(where_): attribute shape_chw \(shape) overflows (its product exceeds \(Int.max))")
            }
            guard product == width else {
                throw fail(.corruptInput, "\(where_): shape_chw \(shape) does not match D = \(width)")
            }
        } else {
            shape = dims.count == 4 ? Array(dims.dropFirst()) : [width, 1, 1]
        }
        let chunkRows = try ds.chunkDims()?.first
        if let c = chunkRows, c < 1 { throw fail(.corruptInput, "\(where_): chunks of \(c) rows") }
        let info = StoredLayerInfo(
            name: name, dim: width, shapeCHW: shape,
            storedType: ds.isFloat16 ? "float16" : ds.type.description, chunkRows: chunkRows)
        return (info, dims[0])
    }

    /// A per-row dataset (`/targets`, `/indices`, ...) has as many rows as the features — in an
    /// incomplete store, at least as many as were written.
    private static func checkRows(
        _ name: String, _ rows: Int, count: Int, complete: Bool,
        fail: (LinprobeError.Code, String) -> LinprobeError
    ) throws {
        if complete ? rows == count : rows >= count { return }
        let relation = rows < count ? "fewer" : "more"
        throw fail(.corruptInput, "\(name) has \(rows) rows, \(relation) than the \(count) rows of the features")
    }

    /// Number of samples (rows / views).
    public var sampleCount: Int { count / views }

    /// The rows holding view `view mod views` of every sample, in sample order (all rows when
    /// the store has one view per sample).
    public func rows(view: Int) -> [Int] {
        let v = ((view % views) + views) % views
        return (0..<sampleCount).map { $0 * views + v }
    }

    /// The layer with this name, or an error listing the available layers.
    public func layer(_ name: String) throws -> StoredLayerInfo {
        guard let info = layers.first(where: { $0.name == name }) else {
            throw LinprobeError(
                .missingInput, "\(path): no layer '\(name)' (layers: \(layers.map(\.name).joined(separator: ", ")))")
        }
        return info
    }

    /// The layers named by a pool-op map (`FeatureLayers.names`), in that order; every layer of the
    /// store, in its order, when `names` is empty. A name the store lacks is one line naming it and
    /// listing what the store holds.
    public func layers(named names: [String]) throws -> [StoredLayerInfo] {
        guard !names.isEmpty else { return layers }
        return try names.map { name in
            guard let info = layers.first(where: { $0.name == name }) else {
                throw LinprobeError(
                    .missingInput,
                    "\(path): no layer '\(name)' for tap '\(name)' of \(FeatureLayers.poolMapKey) (the store holds: \(layers.map(\.name).joined(separator: ", "))); extract with this pool-op map, or list only taps the store holds"
                )
            }
            return info
        }
    }

    private func featureSet(_ name: String) throws -> HDF5Dataset {
        _ = try layer(name)
        guard let ds = datasets[name] else {
            throw LinprobeError(.corruptInput, "\(path): no dataset for layer '\(name)'")
        }
        return ds
    }

    /// Reads rows `range` of a layer (row-major, `dim` per row) into `buffer` as float32.
    public func readFeatures(
        layer name: String, rows range: Range<Int>, into buffer: UnsafeMutableBufferPointer<Float>
    ) throws {
        let ds = try featureSet(name)
        guard range.lowerBound >= 0, range.upperBound <= count else {
            throw LinprobeError(.usage, "\(path): rows \(range) outside 0..<\(count)")
        }
        do { try ds.readFloats(rows: range, into: buffer) } catch {
            throw readFailure(error, what: "\(name) rows \(range)")
        }
    }

    /// Reads the given rows (any order) of a layer; row `k` of `buffer` receives row `rows[k]`.
    public func readFeatures(layer name: String, rows: [Int], into buffer: UnsafeMutableBufferPointer<Float>) throws {
        let ds = try featureSet(name)
        if let bad = rows.first(where: { $0 < 0 || $0 >= count }) {
            throw LinprobeError(.usage, "\(path): row \(bad) outside 0..<\(count)")
        }
        do { try ds.readFloats(rowIndices: rows, into: buffer) } catch {
            throw readFailure(error, what: "\(name) rows \(rows.min() ?? 0)…\(rows.max() ?? 0)")
        }
    }

    /// Convenience: a whole layer as a new array (`count × dim`).
    public func readLayer(_ name: String) throws -> [Float] {
        let info = try layer(name)
        var out = [Float](repeating: 0, count: count * info.dim)
        try out.withUnsafeMutableBufferPointer { try readFeatures(layer: name, rows: 0..<count, into: $0) }
        return out
    }

    /// Targets: `count` values (single-label) or `count × C` row-major (multi-label).
    public func targets() throws -> [Int64] {
        guard let ds = datasets["/targets"] else {
            throw LinprobeError(.corruptInput, "\(path): feature store has no /targets dataset")
        }
        do { return try ds.readInt64(rows: 0..<count) } catch {
            throw readFailure(error, what: "targets")
        }
    }

    /// Targets of rows `range`: `range.count` values, or `range.count × C` (multi-label).
    public func targets(rows range: Range<Int>) throws -> [Int64] {
        guard let ds = datasets["/targets"] else {
            throw LinprobeError(.corruptInput, "\(path): feature store has no /targets dataset")
        }
        try checkRowRange(range)
        do { return try ds.readInt64(rows: range) } catch {
            throw LinprobeError(.corruptInput, "reading targets \(range): \(error.description)")
        }
    }

    /// Dataset indices of rows `range` (the row numbers when the store has none).
    public func indices(rows range: Range<Int>) throws -> [Int64] {
        try checkRowRange(range)
        guard let ds = datasets[StoreLayout.indices] else { return range.map { Int64($0) } }
        do { return try ds.readInt64(rows: range) } catch {
            throw LinprobeError(.corruptInput, "reading indices \(range): \(error.description)")
        }
    }

    /// Image paths of rows `range` (empty strings when the store has none).
    public func imagePaths(rows range: Range<Int>) throws -> [String] {
        try checkRowRange(range)
        guard let ds = datasets[StoreLayout.imagePaths] else { return Array(repeating: "", count: range.count) }
        do { return try ds.readStrings(rows: range) } catch {
            throw LinprobeError(.corruptInput, "reading image paths \(range): \(error.description)")
        }
    }

    private func checkRowRange(_ range: Range<Int>) throws {
        guard range.lowerBound >= 0, range.upperBound <= count else {
            throw LinprobeError(.usage, "\(path): rows \(range) outside 0..<\(count)")
        }
    }

    /// Dataset indices of the rows (0..<count when the store has none).
    public func indices() throws -> [Int64] {
        guard let ds = datasets[StoreLayout.indices] else { return (0..<Int64(count)).map { $0 } }
        do { return try ds.readInt64(rows: 0..<count) } catch {
            throw readFailure(error, what: "indices")
        }
    }

    /// Image paths of the rows (empty strings when the store has none).
    public func imagePaths() throws -> [String] {
        guard let ds = datasets[StoreLayout.imagePaths] else { return Array(repeating: "", count: count) }
        do { return try ds.readStrings(rows: 0..<count) } catch {
            throw LinprobeError(.corruptInput, "reading image paths: \(error.description)")
        }
    }

    /// Rows whose image was unreadable when the store was written.
    public func unreadableRows() throws -> [Int] {
        guard let ds = datasets[StoreLayout.unreadable] else { return [] }
        do {
            return try ds.readInt64(rows: 0..<count).enumerated().filter { $0.element != 0 }.map(\.offset)
        } catch {
            throw readFailure(error, what: "unreadable flags")
        }
    }

    /// The one-line error for a failed read; a Fletcher-32 mismatch says what it means.
    private func readFailure(_ error: any Error, what: String) -> LinprobeError {
        let text = oneLine(error)
        if text.lowercased().contains("fletcher32") {
            return LinprobeError(
                .corruptInput,
                "\(path): \(what) fail their checksum: the file was changed or damaged after it was written; extract it again (--force)"
            )
        }
        return LinprobeError(.corruptInput, "\(path): reading \(what): \(text)")
    }

    /// A root attribute as text (JSON attributes come back as their JSON text).
    public func attribute(_ name: String) throws -> String? {
        do {
            if let s = try file.attributeString(name) { return s }
        } catch {
            if let i = try? file.attributeInt64Array(name) {
                return i.count == 1 ? String(i[0]) : JSONValue.array(i.map { .int($0) }).canonicalText
            }
            throw LinprobeError(.corruptInput, "reading attribute \(name): \(oneLine(error))")
        }
        return nil
    }

    /// A root attribute holding JSON text, parsed (`null` when absent or not JSON).
    public func jsonAttribute(_ name: String) throws -> JSONValue {
        guard let text = try attribute(name) else { return .null }
        return (try? JSONValue.parse(text)) ?? .string(text)
    }

    /// Every root attribute name.
    public func attributeNames() throws -> [String] {
        do { return try file.attributeNames() } catch { throw LinprobeError(.corruptInput, error.description) }
    }
}
