import Foundation
import LinprobeCore

/// A line chart: x either numeric (optionally logarithmic) or categorical (`categories`).
/// In report.json: `{id, run, title, dataset, x_label, y_label, log_x, categories?, series: [{name,
/// points: [[x, y]]}]}` with null for a coordinate that is not a finite number.
public struct ReportChart: Sendable, Equatable, Codable {
    public struct Series: Sendable, Equatable, Codable {
        public var name: String
        public var points: [Point]
        public init(name: String, points: [Point]) {
            self.name = name
            self.points = points
        }
    }

    /// A point, stored as the pair `[x, y]`.
    public struct Point: Sendable, Equatable, Codable {
        public var x: Double
        public var y: Double
        public init(_ x: Double, _ y: Double) {
            self.x = x
            self.y = y
        }

        public init(from decoder: any Decoder) throws {
            var c = try decoder.unkeyedContainer()
            guard c.count == 2 else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "a point is a pair [x, y]")
            }
            x = try c.decodeNil() ? .nan : c.decode(Double.self)
            y = try c.decodeNil() ? .nan : c.decode(Double.self)
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.unkeyedContainer()
            for v in [x, y] {
                if v.isFinite { try c.encode(v) } else { try c.encodeNil() }
            }
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

    enum CodingKeys: String, CodingKey {
        case id, run, title, dataset, categories, series
        case xLabel = "x_label"
        case yLabel = "y_label"
        case logX = "log_x"
    }

    public init(
        title: String, dataset: String, xLabel: String, yLabel: String, logX: Bool = false,
        categories: [String]? = nil, series: [Series], id: String? = nil, run: String = ""
    ) {
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

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        run = try c.decodeIfPresent(String.self, forKey: .run) ?? ""
        title = try c.decode(String.self, forKey: .title)
        dataset = try c.decode(String.self, forKey: .dataset)
        xLabel = try c.decodeIfPresent(String.self, forKey: .xLabel) ?? ""
        yLabel = try c.decodeIfPresent(String.self, forKey: .yLabel) ?? ""
        logX = try c.decodeIfPresent(Bool.self, forKey: .logX) ?? false
        categories = try c.decodeIfPresent([String].self, forKey: .categories)
        series = try c.decode([Series].self, forKey: .series)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(run, forKey: .run)
        try c.encode(title, forKey: .title)
        try c.encode(dataset, forKey: .dataset)
        try c.encode(xLabel, forKey: .xLabel)
        try c.encode(yLabel, forKey: .yLabel)
        try c.encode(logX, forKey: .logX)
        try c.encodeIfPresent(categories, forKey: .categories)
        try c.encode(series, forKey: .series)
    }

    /// Series of several charts with the same id in one chart; series names get their run's label
    /// when the charts come from more than one run. Categorical x positions are re-mapped onto the
    /// union of the categories (in layer order).
    static func combined(_ charts: [ReportChart]) -> ReportChart? {
        guard var first = charts.first else { return nil }
        if charts.count == 1 { return first }
        let prefix = orderedUnique(charts.map(\.run)).count > 1
        var categories: [String]? = nil
        if charts.allSatisfy({ $0.categories != nil }) {
            categories = orderedUnique(charts.flatMap { $0.categories ?? [] }).sorted(by: naturalLess)
        }
        var series: [Series] = []
        for chart in charts {
            for s in chart.series {
                let points = categories.map { chart.remap(s.points, onto: $0) } ?? s.points
                series.append(
                    Series(name: prefix && !chart.run.isEmpty ? "\(chart.run) · \(s.name)" : s.name, points: points))
            }
        }
        first.series = series
        first.categories = categories
        first.run = prefix ? "" : first.run
        return first
    }

    /// Points on this chart's categorical axis moved to the same categories' positions in `all`.
    private func remap(_ points: [Point], onto all: [String]) -> [Point] {
        guard let own = categories else { return points }
        return points.compactMap { p in
            guard p.x.isFinite, p.x >= 0, p.x < Double(own.count), let j = all.firstIndex(of: own[Int(p.x)]) else {
                return nil
            }
            return Point(Double(j), p.y)
        }
    }
}
