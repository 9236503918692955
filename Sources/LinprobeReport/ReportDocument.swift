import Foundation
import LinprobeCore

/// One number of the report: DESIGN.md's flat row `{dataset, split, layer, method, metric,
/// value, fingerprint}`, plus the run it belongs to (several runs — e.g. checkpoints — can be
/// merged into one comparison) and the chosen hyper-parameters in words. A value that is not a
/// number (an undefined AP) is NaN here and null in report.json.
public struct ReportRow: Sendable, Equatable, Codable {
    public var run: String
    public var dataset: String
    public var split: String
    public var layer: String
    public var method: String
    public var metric: String
    public var value: Double
    public var fingerprint: String
    public var hyperparameters: String?

    enum CodingKeys: String, CodingKey {
        case run, dataset, split, layer, method, metric, value, fingerprint, hyperparameters
    }

    public init(
        run: String, dataset: String, split: String, layer: String, method: String, metric: String,
        value: Double, fingerprint: String, hyperparameters: String? = nil
    ) {
        self.run = run
        self.dataset = dataset
        self.split = split
        self.layer = layer
        self.method = method
        self.metric = metric
        self.value = value
        self.fingerprint = fingerprint
        self.hyperparameters = hyperparameters
    }

    /// A row without a run (a report written before runs existed) gets "" here and the report's
    /// title from `ReportDocument`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        run = try c.decodeIfPresent(String.self, forKey: .run) ?? ""
        dataset = try c.decode(String.self, forKey: .dataset)
        split = try c.decode(String.self, forKey: .split)
        layer = try c.decode(String.self, forKey: .layer)
        method = try c.decode(String.self, forKey: .method)
        metric = try c.decode(String.self, forKey: .metric)
        value = try c.decodeNil(forKey: .value) ? .nan : c.decode(Double.self, forKey: .value)
        fingerprint = try c.decode(String.self, forKey: .fingerprint)
        hyperparameters = try c.decodeIfPresent(String.self, forKey: .hyperparameters)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(run, forKey: .run)
        try c.encode(dataset, forKey: .dataset)
        try c.encode(split, forKey: .split)
        try c.encode(layer, forKey: .layer)
        try c.encode(method, forKey: .method)
        try c.encode(metric, forKey: .metric)
        if value.isFinite { try c.encode(value, forKey: .value) } else { try c.encodeNil(forKey: .value) }
        try c.encode(fingerprint, forKey: .fingerprint)
        try c.encodeIfPresent(hyperparameters, forKey: .hyperparameters)
    }
}

/// Everything a report shows, and report.json (`schemas/report.schema.json`). Rendering is
/// deterministic: the same document gives the same bytes.
public struct ReportDocument: Sendable, Equatable, Codable {
    public static let format = "linprobe.report"
    /// Written: 2 (typed protocol block: stores as the results recorded them). Read: 1 and 2.
    public static let formatVersion = 2
    public static let readableVersions = [1, 2]

    public var title: String
    public var rows: [ReportRow]
    public var charts: [ReportChart]
    /// The protocol block: preprocessing, pool ops, solver settings, weights hash, versions.
    public var protocolInfo: ReportProtocol
    /// Short remarks shown under the tables (e.g. which AP definition a column uses).
    public var notes: [String]

    enum CodingKeys: String, CodingKey {
        case format
        case formatVersion = "format_version"
        case title, rows, charts
        case protocolInfo = "protocol"
        case notes
    }

    public init(
        title: String, rows: [ReportRow], charts: [ReportChart] = [], protocolInfo: ReportProtocol = ReportProtocol(),
        notes: [String] = []
    ) {
        self.title = title
        self.rows = rows
        self.charts = charts
        self.protocolInfo = protocolInfo
        self.notes = notes
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let format = try c.decode(String.self, forKey: .format)
        guard format == Self.format else {
            throw DecodingError.dataCorruptedError(
                forKey: .format, in: c, debugDescription: "is '\(format)', not '\(Self.format)'")
        }
        let version = try c.decode(Int.self, forKey: .formatVersion)
        guard Self.readableVersions.contains(version) else {
            throw DecodingError.dataCorruptedError(
                forKey: .formatVersion, in: c, debugDescription: "\(version) is not supported (reads 1 and 2)")
        }
        title = try c.decodeIfPresent(String.self, forKey: .title) ?? ""
        rows = try c.decode([ReportRow].self, forKey: .rows)
        charts = try c.decodeIfPresent([ReportChart].self, forKey: .charts) ?? []
        protocolInfo = try c.decodeIfPresent(ReportProtocol.self, forKey: .protocolInfo) ?? ReportProtocol()
        notes = try c.decodeIfPresent([String].self, forKey: .notes) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Self.format, forKey: .format)
        try c.encode(Self.formatVersion, forKey: .formatVersion)
        try c.encode(title, forKey: .title)
        try c.encode(rows, forKey: .rows)
        try c.encode(charts, forKey: .charts)
        try c.encode(protocolInfo, forKey: .protocolInfo)
        try c.encode(notes, forKey: .notes)
    }

    /// Datasets in order of first appearance.
    public var datasets: [String] { orderedUnique(rows.map(\.dataset) + charts.map(\.dataset)) }

    /// Merges several documents (e.g. one per checkpoint) into one comparison: rows and notes in
    /// document order, charts of the same kind and dataset drawn as one, the protocol blocks kept
    /// per run (the first block of a run label wins).
    public static func merged(_ documents: [ReportDocument], title: String) -> ReportDocument {
        if documents.count == 1, var only = documents.first {
            only.title = title
            return only
        }
        var runs: [String: RunProtocol] = [:]
        for d in documents {
            for (run, block) in d.protocolInfo.runs where runs[run] == nil { runs[run] = block }
        }
        return ReportDocument(
            title: title, rows: documents.flatMap(\.rows),
            charts: ReportBuilder.combineCharts(documents.flatMap(\.charts)),
            protocolInfo: ReportProtocol(runs: runs), notes: orderedUnique(documents.flatMap(\.notes)))
    }
}

func orderedUnique<T: Hashable>(_ values: [T]) -> [T] {
    var seen = Set<T>()
    return values.filter { seen.insert($0).inserted }
}

/// Natural order of names with numbers (`conv1 < res2 < res4 < res5 < res5avg < res10`): runs of
/// digits compare by value, everything else by Unicode scalars. Deterministic and locale-free.
func naturalLess(_ a: String, _ b: String) -> Bool {
    let x = Array(a.unicodeScalars), y = Array(b.unicodeScalars)
    var i = 0, j = 0
    func isDigit(_ c: Unicode.Scalar) -> Bool { c.value >= 48 && c.value <= 57 }
    while i < x.count && j < y.count {
        if isDigit(x[i]) && isDigit(y[j]) {
            var ie = i, je = j
            while ie < x.count && isDigit(x[ie]) { ie += 1 }
            while je < y.count && isDigit(y[je]) { je += 1 }
            let da = String(String.UnicodeScalarView(x[i..<ie])).drop { $0 == "0" }
            let db = String(String.UnicodeScalarView(y[j..<je])).drop { $0 == "0" }
            if da.count != db.count { return da.count < db.count }
            if da != db { return da < db }
            i = ie
            j = je
        } else {
            if x[i] != y[j] { return x[i].value < y[j].value }
            i += 1
            j += 1
        }
    }
    if (x.count - i) != (y.count - j) { return (x.count - i) < (y.count - j) }
    return a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
}

/// Formats a metric value (already ×100) with two decimals.
func formatValue(_ v: Double) -> String {
    v.isFinite ? String(format: "%.2f", v) : "–"
}

/// A table of one dataset: rows = layers, columns = (run, method, metric).
struct DatasetTable {
    var layers: [String]
    var columns: [(run: String, method: String, metric: String)]
    var cells: [[String]]
    var hyperColumns: [(run: String, method: String)]
    var hyperCells: [[String]]
    var showRun: Bool

    init(rows: [ReportRow]) {
        layers = orderedUnique(rows.map(\.layer)).sorted(by: naturalLess)
        struct Key: Hashable { var run, method, metric: String }
        struct HKey: Hashable { var run, method: String }
        let keys = orderedUnique(rows.map { Key(run: $0.run, method: $0.method, metric: $0.metric) })
        columns = keys.map { ($0.run, $0.method, $0.metric) }
        showRun = Set(rows.map(\.run)).count > 1
        var value: [String: [Key: Double]] = [:]
        var hyper: [String: [HKey: String]] = [:]
        for r in rows {
            value[r.layer, default: [:]][Key(run: r.run, method: r.method, metric: r.metric)] = r.value
            if let h = r.hyperparameters { hyper[r.layer, default: [:]][HKey(run: r.run, method: r.method)] = h }
        }
        cells = layers.map { layer in keys.map { k in value[layer]?[k].map(formatValue) ?? "" } }
        let hkeys = orderedUnique(
            rows.filter { $0.hyperparameters != nil }.map { HKey(run: $0.run, method: $0.method) })
        hyperColumns = hkeys.map { ($0.run, $0.method) }
        hyperCells = layers.map { layer in hkeys.map { hyper[layer]?[$0] ?? "" } }
    }

    func header(_ c: (run: String, method: String, metric: String)) -> String {
        showRun ? "\(c.run) · \(c.method) \(c.metric)" : "\(c.method) \(c.metric)"
    }

    func hyperHeader(_ c: (run: String, method: String)) -> String {
        showRun ? "\(c.run) · \(c.method)" : c.method
    }
}
