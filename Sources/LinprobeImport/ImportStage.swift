import Foundation
import LinprobeCore
import LinprobeHDF5
import LinprobeStore

/// What an import produced (or found already produced).
public struct ImportOutcome: Sendable {
    public var split: String
    public var storePath: String
    public var rows: Int
    public var layers: [String]
    /// VISSL dumps: padded copies the merge dropped.
    public var duplicatesDropped: Int
    public var seconds: Double?
}

/// The `import-features` stage: features made elsewhere (`ImportSource`) streamed into a normal
/// feature store, `features/<fp>/<split>.h5`, whose fingerprint comes from the imported files'
/// content (`ImportSplitPlan`). Rows stream in blocks of whole store chunks, so memory stays flat
/// whatever the number of rows (a 1.28 M × 2048 dump included). Run through `StageRunner`.
public struct ImportStage: PipelineStage {
    public let split: ImportSplitPlan
    public let layout: WorkdirLayout
    public let pipeline: String?
    /// Bytes of features per block (every layer together).
    public var blockBytes = 64 << 20

    public init(split: ImportSplitPlan, layout: WorkdirLayout, pipeline: String?) {
        self.split = split
        self.layout = layout
        self.pipeline = pipeline
    }

    public var storePath: String { layout.resolve(split.relativeStorePath) }

    public var plan: StagePlan {
        StagePlan(
            kind: .importFeatures, fingerprint: split.fingerprint, inputs: split.inputs,
            parameters: split.fingerprintValue, outputs: [split.relativeStorePath], pipeline: pipeline)
    }

    public func run(_ context: StageContext) throws -> ImportOutcome {
        defer { context.progress.finish() }
        let start = Date()
        if let adopted = try adoptExisting(context) { return adopted }
        let source = split.source
        let labels = try LabelScan(source.targets, layout: source.targetLayout)
        let writer = try FeatureStoreWriter(
            creating: storePath, layers: source.storeLayers, targetLayout: source.targetLayout,
            metadata: metadata(numClasses: max(labels.numClasses, source.classNames.count)), dtype: split.dtype,
            deflate: split.deflate)
        do {
            try stream(into: writer, progress: context.progress)
            try writer.finish()
        } catch {
            writer.abandon()
            try? FileManager.default.removeItem(atPath: writer.partialPath)
            throw error
        }
        if source.duplicatesDropped > 0 {
            context.note(
                "import-features: \(source.location): dropped \(source.duplicatesDropped) padded duplicate row(s) (same dataset index in two shards)"
            )
        }
        return ImportOutcome(
            split: split.split, storePath: storePath, rows: source.count, layers: source.layerNames,
            duplicatesDropped: source.duplicatesDropped, seconds: Date().timeIntervalSince(start))
    }

    public func reuse(_ context: StageContext, record: ManifestRecord) throws -> ImportOutcome {
        let reader = try FeatureStoreReader(path: storePath)
        guard reader.fingerprint == split.fingerprint else {
            throw LinprobeError(
                .incompatible,
                "\(storePath): holds features with fingerprint \(reader.fingerprint), not \(split.fingerprint); rerun with --force to import again"
            )
        }
        return ImportOutcome(
            split: split.split, storePath: storePath, rows: reader.count, layers: reader.layers.map(\.name),
            duplicatesDropped: split.source.duplicatesDropped, seconds: nil)
    }

    public func manifestMessage(_ outcome: ImportOutcome) -> String? {
        "\(outcome.rows) rows of \(outcome.layers.joined(separator: ", ")) from \(split.source.kind.rawValue)"
            + (outcome.duplicatesDropped > 0 ? ", \(outcome.duplicatesDropped) padded duplicates dropped" : "")
    }

    public func discardPreviousRun(_ context: StageContext) throws {
        for path in [storePath, storePath + StoreLayout.partialSuffix]
        where FileManager.default.fileExists(atPath: path) {
            try FileManager.default.removeItem(atPath: path)
        }
    }

    /// A complete store of this fingerprint the manifest did not list (manifest removed): kept.
    private func adoptExisting(_ context: StageContext) throws -> ImportOutcome? {
        guard FileManager.default.fileExists(atPath: storePath),
            let reader = try? FeatureStoreReader(path: storePath), reader.fingerprint == split.fingerprint,
            reader.count == split.source.count
        else { return nil }
        context.note(
            "import-features: found a complete store for fingerprint \(split.fingerprint) at \(storePath); using it")
        return ImportOutcome(
            split: split.split, storePath: storePath, rows: reader.count, layers: reader.layers.map(\.name),
            duplicatesDropped: split.source.duplicatesDropped, seconds: nil)
    }

    /// Rows in blocks of whole store chunks (about `blockBytes` of features each).
    private func stream(into writer: FeatureStoreWriter, progress: ProgressReporter) throws {
        let source = split.source
        let n = source.count
        let rowBytes = max(1, source.layers.reduce(0) { $0 + $1.rows.rowElements } * 4)
        let block = max(writer.chunkRows, (blockBytes / rowBytes) / writer.chunkRows * writer.chunkRows)
        progress.begin("\(split.split) import", total: n, unit: "rows")
        for start in stride(from: 0, to: n, by: block) {
            let range = start..<min(n, start + block)
            var features: [[Float]] = []
            for layer in source.layers {
                var values = [Float](repeating: 0, count: range.count * layer.rows.rowElements)
                try values.withUnsafeMutableBufferPointer { try layer.rows.readFloats(range, into: $0) }
                features.append(values)
            }
            let targets = try source.targets.readInt64(range)
            try LabelScan.check(targets, layout: source.targetLayout, first: start, what: source.targets.what)
            let indices = try source.indices?.readInt64(range) ?? range.map { Int64($0) }
            let paths = try source.imagePaths?.strings(range) ?? Array(repeating: "", count: range.count)
            try writer.append(
                FeatureBatch(
                    count: range.count, features: features, targets: targets, indices: indices, imagePaths: paths))
            progress.advance(by: range.count)
        }
    }

    private func metadata(numClasses: Int) -> StoreMetadata {
        let source = split.source
        let names = source.classNames.isEmpty ? [] : source.classNames
        let provenance: JSONValue = [
            "tool": .string("linprobe \(LinprobeVersion.string)"),
            "libraries": ["hdf5": .string(hdf5LibraryVersion())],
            "imported": [
                "format": .string(source.kind.rawValue), "source": .string(Paths.standardized(source.location)),
                "files": split.inputs["files"] ?? .null, "layers": .array(source.layerNames.map { .string($0) }),
                "duplicates_dropped": .int(Int64(source.duplicatesDropped)),
            ],
            "dataset": [
                "name": split.datasetName.map { .string($0) } ?? .string(Paths.lastComponent(source.location)),
                "root": .string(Paths.standardized(source.location)), "count": .int(Int64(source.count)),
                "settings": ["dataset_names": split.datasetName.map { [.string($0)] } ?? []],
            ],
            "fingerprint": split.fingerprintValue,
        ]
        return StoreMetadata(
            fingerprint: split.fingerprint, split: split.split, numClasses: numClasses, classNames: names,
            provenance: provenance)
    }
}

/// Labels checked before anything is written: single-label class indices ≥ −1 (−1 = no label),
/// multi-label values in VOC's 1 / 0 / −1; the class count they imply.
struct LabelScan {
    var numClasses = 0

    /// Rows of labels read at once.
    static let block = 1 << 16

    init(_ targets: RowSource, layout: TargetLayout) throws {
        for start in stride(from: 0, to: targets.rows, by: Self.block) {
            let values = try targets.readInt64(start..<min(targets.rows, start + Self.block))
            try Self.check(values, layout: layout, first: start, what: targets.what)
            if case .singleLabel = layout, let top = values.max() { numClasses = max(numClasses, Int(top) + 1) }
        }
        if case .multiLabel(let c) = layout { numClasses = c }
    }

    static func check(_ values: [Int64], layout: TargetLayout, first: Int, what: String) throws {
        switch layout {
        case .singleLabel:
            if let i = values.firstIndex(where: { $0 < -1 || $0 > Int64(Int32.max) }) {
                throw LinprobeError(
                    .corruptInput,
                    "\(what): row \(first + i) has label \(values[i]); single-label targets are class indices (-1 = no label)"
                )
            }
        case .multiLabel(let c):
            if let i = values.firstIndex(where: { $0 < -1 || $0 > 1 }) {
                throw LinprobeError(
                    .corruptInput,
                    "\(what): row \(first + i / c) column \(i % c) is \(values[i]); [N, C] labels use VOC's encoding: 1 present, 0 absent, -1 difficult"
                )
            }
        }
    }
}
