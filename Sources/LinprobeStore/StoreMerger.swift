import Foundation
import LinprobeCore
import LinprobeHDF5

/// Joins the part stores of a sharded extraction (rows in shard order) into one store: an HDF5
/// virtual dataset over the parts, or a self-contained copy. Either is a store of the layout in
/// `StoreLayout` whose rows are the parts' rows, bit for bit, and whose root attributes are the
/// first part's (less its `shard`), with the runs of every part in its provenance.
public struct StoreMerger {
    /// Root attribute of a virtual store: the JSON list of its parts, relative to its folder.
    public static let partsAttribute = "parts"

    public let target: String
    public let parts: [FeatureStoreReader]
    /// Each part's path relative to the target's folder (how the virtual dataset names it).
    public let partFiles: [String]
    /// Deflate level of a copy (nil = none).
    public let deflate: Int?

    public init(target: String, parts: [FeatureStoreReader], partFiles: [String], deflate: Int?) {
        precondition(!parts.isEmpty && parts.count == partFiles.count, "one file name per part")
        self.target = target
        self.parts = parts
        self.partFiles = partFiles
        self.deflate = deflate
    }

    private var first: FeatureStoreReader { parts[0] }
    private var total: Int { parts.reduce(0) { $0 + $1.count } }
    private var partialPath: String { target + StoreLayout.partialSuffix }

    /// Writes the target as virtual datasets over the parts.
    public func writeVirtual() throws {
        try? FileManager.default.removeItem(atPath: partialPath)
        do {
            let file = try HDF5File.create(partialPath)
            let source = try HDF5File.open(first.path)
            try copyRootAttributes(from: source, to: file)
            try file.setAttribute(
                Self.partsAttribute, string: JSONValue.array(partFiles.map { .string($0) }).canonicalText)
            for layer in first.layers {
                let path = StoreLayout.featurePath(layer.name)
                let ds = try file.createVirtualDataset(
                    path, type: layer.storedType == "float16" ? .float16 : .float32, dims: [total, layer.dim],
                    sources: sources(path))
                try ds.setAttribute("shape_chw", int64Array: layer.shapeCHW.map(Int64.init))
                ds.close()
            }
            let targetDims = first.targetLayout == .singleLabel ? [total] : [total, first.targetLayout.width]
            for (path, type, dims) in [
                (StoreLayout.targets, HDF5StorageType.int64, targetDims), (StoreLayout.indices, .int64, [total]),
                (StoreLayout.imagePaths, .utf8String, [total]), (StoreLayout.unreadable, .int64, [total]),
            ] {
                try file.createVirtualDataset(path, type: type, dims: dims, sources: sources(path)).close()
            }
            try file.close()
        } catch let error as HDF5Error {
            throw LinprobeError(.io, "\(partialPath): cannot write the merged store: \(error.description)")
        }
        try publish()
    }

    private func sources(_ dataset: String) -> [HDF5VirtualSource] {
        var row = 0
        return zip(parts, partFiles).map { part, file in
            defer { row += part.count }
            return HDF5VirtualSource(file: file, dataset: dataset, firstRow: row, rows: part.count)
        }
    }

    /// The first part's root attributes, as one store of every part's rows.
    private func copyRootAttributes(from source: HDF5File, to file: HDF5File) throws {
        for name in try source.attributeNames() where name != "shard" {
            if let text = try? source.attributeString(name) {
                try file.setAttribute(name, string: text)
            } else if let values = try source.attributeInt64Array(name) {
                if values.count == 1 {
                    try file.setAttribute(name, int64: values[0])
                } else {
                    try file.setAttribute(name, int64Array: values)
                }
            }
        }
        try file.setAttribute("rows_written", int64: Int64(total))
        try file.setAttribute("complete", int64: 1)
        try file.setAttribute("provenance", string: try provenance().canonicalText)
    }

    /// The first part's provenance with every part's runs (each tagged with its shard).
    private func provenance() throws -> JSONValue {
        var merged = try first.jsonAttribute("provenance").objectValue ?? [:]
        var runs: [JSONValue] = []
        for (i, part) in parts.enumerated() {
            for run in try part.jsonAttribute("provenance")["runs"]?.arrayValue ?? [] {
                var entry = run.objectValue ?? [:]
                entry["shard"] = .int(Int64(i))
                runs.append(.object(entry))
            }
        }
        merged["runs"] = .array(runs)
        merged["merged_from_shards"] = .int(Int64(parts.count))
        return .object(merged)
    }

    /// Writes the target as one self-contained store (the parts' rows copied, chunk by chunk).
    public func writeCopy() throws {
        let layers = first.layers.map { StoreLayer(name: $0.name, shapeCHW: $0.shapeCHW) }
        let metadata = StoreMetadata(
            fingerprint: first.fingerprint, split: first.split, numClasses: first.numClasses,
            classNames: first.classNames, trunk: try first.jsonAttribute("trunk"),
            weights: try first.jsonAttribute("weights"), transforms: try first.jsonAttribute("transforms"),
            poolOps: try first.jsonAttribute("pool_ops"), provenance: try provenance(), trainViews: first.views)
        let chunk = first.layers.first?.chunkRows ?? 256
        let writer = try FeatureStoreWriter(
            creating: target, layers: layers, targetLayout: first.targetLayout, metadata: metadata,
            dtype: first.layers.first?.storedType == "float16" ? .float16 : .float32, deflate: deflate,
            chunkRows: chunk)
        for part in parts {
            let flagged = Set(try part.unreadableRows())
            var lo = 0
            while lo < part.count {
                let rows = lo..<min(part.count, lo + chunk)
                try writer.append(try batch(part, rows: rows, flagged: flagged))
                lo = rows.upperBound
            }
        }
        try writer.finish()
    }

    private func batch(_ part: FeatureStoreReader, rows: Range<Int>, flagged: Set<Int>) throws -> FeatureBatch {
        let features = try part.layers.map { layer -> [Float] in
            var values = [Float](repeating: 0, count: rows.count * layer.dim)
            try values.withUnsafeMutableBufferPointer {
                try part.readFeatures(layer: layer.name, rows: rows, into: $0)
            }
            return values
        }
        return FeatureBatch(
            count: rows.count, features: features, targets: try part.targets(rows: rows),
            indices: try part.indices(rows: rows), imagePaths: try part.imagePaths(rows: rows),
            unreadable: rows.map { flagged.contains($0) })
    }

    private func publish() throws {
        if rename(partialPath, target) != 0 {
            let reason = String(cString: strerror(errno))
            throw LinprobeError(.io, "\(partialPath): cannot rename to \(target): \(reason)")
        }
    }
}
