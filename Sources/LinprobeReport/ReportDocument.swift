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
    /// What the chart shows, independent of the run (e.g. `layers/mAP`, `svm-cv`): charts of
    /// several runs with the same `id` and dataset are drawn as one chart when runs are merged.
    public var id: String
    /// The run whose data the chart shows ("" for a chart combining several runs).
    public var run: String

    public init(title: String, dataset: String, xLabel: String, yLabel: String, logX: Bool = false,
                categories: [String]? = nil, series: [Series], id: String? = nil, run: String = "") {
        self.title = title
        self.dataset = dataset
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.logX = logX
        self.categories = categories
        self.series = series
        self.id = id ?? title
        self.run = run
    }

    /// Series of several charts with the same id in one chart; series names get their run's label
    /// when the charts come from more than one run. Categorical x positions are re-mapped onto the
    /// union of the categories (in layer order).
    static func combined(_ charts: [ReportChart]) -> ReportChart {
        guard var first = charts.first else { preconditionFailure("combining no charts") }
        if charts.count == 1 { return first }
        let runs = orderedUnique(charts.map(\.run))
        let prefix = runs.count > 1
        var categories: [String]? = nil
        if charts.allSatisfy({ $0.categories != nil }) {
            categories = orderedUnique(charts.flatMap { $0.categories ?? [] }).sorted(by: naturalLess)
        }
        var series: [Series] = []
        for chart in charts {
            for s in chart.series {
                var points = s.points
                if let all = categories, let own = chart.categories {
                    points = s.points.compactMap { p in
                        let i = Int(p.x)
                        guard i >= 0, i < own.count, let j = all.firstIndex(of: own[i]) else { return nil }
                        return Point(Double(j), p.y)
                    }
                }
                series.append(Series(name: prefix && !chart.run.isEmpty ? "\(chart.run) · \(s.name)" : s.name, points: points))
            }
        }
        first.series = series
        first.categories = categories
        first.run = prefix ? "" : first.run
        return first
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

    /// Merges several documents (e.g. one per checkpoint) into one comparison: rows and notes in
    /// document order, charts of the same kind and dataset drawn as one, the protocol blocks kept
    /// per run (`protocol.runs.<run label>`).
    public static func merged(_ documents: [ReportDocument], title: String) -> ReportDocument {
        var runs: [String: JSONValue] = [:]
        for d in documents {
            if let blocks = d.protocolInfo["runs"]?.objectValue {
                for (run, block) in blocks where runs[run] == nil { runs[run] = block }
            } else {
                let key = orderedUnique(d.rows.map(\.run)).joined(separator: ", ")
                if runs[key] == nil { runs[key] = d.protocolInfo }
            }
        }
        let protocolInfo: JSONValue = documents.count == 1 ? documents[0].protocolInfo : [
            "report": ["tool": "linprobe", "version": .string(LinprobeVersion.string)],
            "runs": .object(runs),
        ]
        return ReportDocument(
            title: title, rows: documents.flatMap(\.rows), charts: ReportBuilder.combineCharts(documents.flatMap(\.charts)),
            protocolInfo: protocolInfo, notes: orderedUnique(documents.flatMap(\.notes)))
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
