import Foundation
import LinprobeCore

/// One number of the report: DESIGN.md's flat row `{dataset, split, layer, method, metric,
/// value, fingerprint}`, plus the run it belongs to (several runs — e.g. checkpoints — can be
/// merged into one comparison) and the chosen hyper-parameters in words.
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

    public init(run: String, dataset: String, split: String, layer: String, method: String, metric: String,
                value: Double, fingerprint: String, hyperparameters: String? = nil) {
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
}

/// A line chart: x either numeric (optionally logarithmic) or categorical (`categories`).
public struct ReportChart: Sendable, Equatable {
    public struct Series: Sendable, Equatable {
        public var name: String
        public var points: [Point]
        public init(name: String, points: [Point]) {
            self.name = name
            self.points = points
        }
    }

    public struct Point: Sendable, Equatable {
        public var x: Double
        public var y: Double
        public init(_ x: Double, _ y: Double) {
            self.x = x
            self.y = y
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var logX: Bool
    /// Names of categorical x positions 0, 1, 2, …; nil for a numeric axis.
    public var categories: [String]?
    public var series: [Series]
    /// The dataset the chart belongs to (charts are shown in that dataset's section).
    public var dataset: String

    public init(title: String, dataset: String, xLabel: String, yLabel: String, logX: Bool = false,
                categories: [String]? = nil, series: [Series]) {
        self.title = title
        self.dataset = dataset
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.logX = logX
        self.categories = categories
        self.series = series
    }
}

/// Everything a report shows. Rendering is deterministic: the same document gives the same bytes.
public struct ReportDocument: Sendable, Equatable {
    public var title: String
    public var rows: [ReportRow]
    public var charts: [ReportChart]
    /// The protocol block: preprocessing, pool ops, solver settings, weights hash, versions.
    public var protocolInfo: JSONValue
    /// Short remarks shown under the tables (e.g. which AP definition a column uses).
    public var notes: [String]

    public init(title: String, rows: [ReportRow], charts: [ReportChart] = [], protocolInfo: JSONValue = .object([:]),
                notes: [String] = []) {
        self.title = title
        self.rows = rows
        self.charts = charts
        self.protocolInfo = protocolInfo
        self.notes = notes
    }

    /// Datasets in order of first appearance.
    public var datasets: [String] { orderedUnique(rows.map(\.dataset) + charts.map(\.dataset)) }

    /// Merges several documents (e.g. one per checkpoint) into one comparison.
    public static func merged(_ documents: [ReportDocument], title: String) -> ReportDocument {
        var protocolByRun: [String: JSONValue] = [:]
        for d in documents {
            let runs = orderedUnique(d.rows.map(\.run))
            protocolByRun[runs.joined(separator: ", ")] = d.protocolInfo
        }
        return ReportDocument(
            title: title, rows: documents.flatMap(\.rows), charts: documents.flatMap(\.charts),
            protocolInfo: documents.count == 1 ? documents[0].protocolInfo : .object(protocolByRun),
            notes: orderedUnique(documents.flatMap(\.notes)))
    }
}

func orderedUnique<T: Hashable>(_ values: [T]) -> [T] {
    var seen = Set<T>()
    return values.filter { seen.insert($0).inserted }
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
        layers = orderedUnique(rows.map(\.layer))
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
        let hkeys = orderedUnique(rows.filter { $0.hyperparameters != nil }.map { HKey(run: $0.run, method: $0.method) })
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
