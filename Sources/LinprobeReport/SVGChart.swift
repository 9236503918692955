import Foundation

/// Inline SVG line charts: axes with round-number ticks, a legend, one polyline with markers
/// per series. Numeric x axes may be logarithmic (cost sweeps); categorical axes place the
/// categories evenly (layers).
enum SVGChart {
    static let width = 720.0
    static let height = 340.0
    static let margin = (left: 64.0, right: 180.0, top: 16.0, bottom: 48.0)
    static let palette = [
        "#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#1b7c83", "#e16f24", "#6e7781",
        "#a40e26", "#0550ae",
    ]

    /// The plot area and the data range it shows.
    struct Frame {
        static let plotW = width - margin.left - margin.right
        static let plotH = height - margin.top - margin.bottom
        var xMin, xMax, yMin, yMax: Double

        func px(_ x: Double) -> Double { margin.left + (x - xMin) / (xMax - xMin) * Frame.plotW }
        func py(_ y: Double) -> Double { margin.top + (1 - (y - yMin) / (yMax - yMin)) * Frame.plotH }
    }

    static func render(_ chart: ReportChart) -> String {
        let plotW = Frame.plotW
        let plotH = Frame.plotH
        let points = chart.series.flatMap(\.points).filter {
            $0.x.isFinite && $0.y.isFinite && (!chart.logX || $0.x > 0)
        }
        var svg =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(f(width)) \(f(height))\" width=\"\(f(width))\" "
            + "height=\"\(f(height))\" role=\"img\" aria-label=\"\(escapeHTML(chart.title))\">\n"
        svg += "<rect x=\"0\" y=\"0\" width=\"\(f(width))\" height=\"\(f(height))\" fill=\"#ffffff\"/>\n"
        guard !points.isEmpty else {
            svg +=
                "<text x=\"\(f(width / 2))\" y=\"\(f(height / 2))\" text-anchor=\"middle\" font-size=\"13\" "
                + "fill=\"#57606a\">no data</text>\n</svg>"
            return svg
        }
        let (frame, yTicks) = frame(chart, points: points)
        // grid and y ticks
        for t in yTicks {
            let y = f(frame.py(t))
            svg +=
                "<line x1=\"\(f(margin.left))\" x2=\"\(f(margin.left + plotW))\" y1=\"\(y)\" y2=\"\(y)\" "
                + "stroke=\"#eaeef2\"/>\n"
            svg +=
                "<text x=\"\(f(margin.left - 6))\" y=\"\(f(frame.py(t) + 4))\" text-anchor=\"end\" font-size=\"11\" "
                + "fill=\"#57606a\">\(tickLabel(t))</text>\n"
        }
        for (x, label) in xTicks(chart, frame: frame) {
            svg +=
                "<line x1=\"\(f(frame.px(x)))\" x2=\"\(f(frame.px(x)))\" y1=\"\(f(margin.top + plotH))\" "
                + "y2=\"\(f(margin.top + plotH + 4))\" stroke=\"#57606a\"/>\n"
            svg +=
                "<text x=\"\(f(frame.px(x)))\" y=\"\(f(margin.top + plotH + 17))\" text-anchor=\"middle\" "
                + "font-size=\"11\" fill=\"#57606a\">\(escapeHTML(label))</text>\n"
        }
        // axes
        svg +=
            "<line x1=\"\(f(margin.left))\" x2=\"\(f(margin.left))\" y1=\"\(f(margin.top))\" "
            + "y2=\"\(f(margin.top + plotH))\" stroke=\"#57606a\"/>\n"
        svg +=
            "<line x1=\"\(f(margin.left))\" x2=\"\(f(margin.left + plotW))\" y1=\"\(f(margin.top + plotH))\" "
            + "y2=\"\(f(margin.top + plotH))\" stroke=\"#57606a\"/>\n"
        svg +=
            "<text x=\"\(f(margin.left + plotW / 2))\" y=\"\(f(height - 8))\" text-anchor=\"middle\" font-size=\"12\" "
            + "fill=\"#1f2328\">\(escapeHTML(chart.xLabel))</text>\n"
        svg +=
            "<text transform=\"translate(16 \(f(margin.top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\" "
            + "font-size=\"12\" fill=\"#1f2328\">\(escapeHTML(chart.yLabel))</text>\n"
        for (i, s) in chart.series.enumerated() { svg += series(s, index: i, logX: chart.logX, frame: frame) }
        svg += "</svg>"
        return svg
    }

    /// The data range (categorical axes centre their categories) and the y ticks.
    static func frame(_ chart: ReportChart, points: [ReportChart.Point]) -> (Frame, [Double]) {
        let xs = points.map { chart.logX ? log10($0.x) : $0.x }
        let ys = points.map(\.y)
        var (xMin, xMax) = (xs.min() ?? 0, xs.max() ?? 0)
        if let cats = chart.categories {
            xMin = -0.5
            xMax = Double(max(cats.count, 1)) - 0.5
        } else if xMin == xMax {
            xMin -= 1
            xMax += 1
        }
        var (yMin, yMax) = (ys.min() ?? 0, ys.max() ?? 0)
        if yMin == yMax {
            yMin -= 1
            yMax += 1
        }
        let yTicks = niceTicks(yMin, yMax, count: 5)
        yMin = min(yMin, yTicks.first ?? yMin)
        yMax = max(yMax, yTicks.last ?? yMax)
        return (Frame(xMin: xMin, xMax: xMax, yMin: yMin, yMax: yMax), yTicks)
    }

    /// x ticks: the categories, the decades of a log axis, or round numbers.
    static func xTicks(_ chart: ReportChart, frame: Frame) -> [(Double, String)] {
        let (xMin, xMax) = (frame.xMin, frame.xMax)
        if let cats = chart.categories {
            return cats.enumerated().map { (Double($0.offset), $0.element) }
        } else if chart.logX {
            let lo = Int(floor(xMin)), hi = Int(ceil(xMax))
            return (lo...hi).map { (Double($0), tickLabel(pow(10, Double($0)))) }.filter {
                $0.0 >= xMin - 1e-9 && $0.0 <= xMax + 1e-9
            }
        }
        return niceTicks(xMin, xMax, count: 6).filter { $0 >= xMin - 1e-9 && $0 <= xMax + 1e-9 }.map {
            ($0, tickLabel($0))
        }
    }

    /// One series: its polyline, markers and legend entry.
    static func series(_ s: ReportChart.Series, index i: Int, logX: Bool, frame: Frame) -> String {
        var svg = ""
        let color = palette[i % palette.count]
        let pts = s.points.filter { $0.x.isFinite && $0.y.isFinite && (!logX || $0.x > 0) }
            .map { (frame.px(logX ? log10($0.x) : $0.x), frame.py($0.y)) }
        if pts.count > 1 {
            svg +=
                "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\""
                + pts.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " ") + "\"/>\n"
        }
        for p in pts {
            svg += "<circle cx=\"\(f(p.0))\" cy=\"\(f(p.1))\" r=\"3\" fill=\"\(color)\"/>\n"
        }
        let ly = margin.top + 8 + Double(i) * 18
        svg +=
            "<line x1=\"\(f(width - margin.right + 12))\" x2=\"\(f(width - margin.right + 30))\" y1=\"\(f(ly))\" "
            + "y2=\"\(f(ly))\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
        svg +=
            "<text x=\"\(f(width - margin.right + 36))\" y=\"\(f(ly + 4))\" font-size=\"11\" "
            + "fill=\"#1f2328\">\(escapeHTML(s.name))</text>\n"
        return svg
    }

    /// Round-number ticks covering [lo, hi].
    static func niceTicks(_ lo: Double, _ hi: Double, count: Int) -> [Double] {
        let span = hi - lo
        let raw = span / Double(max(count, 1))
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        let first = Int(floor(lo / step)), last = Int(ceil(hi / step))
        var ticks: [Double] = []
        for k in first...max(first, min(last, first + 50)) { ticks.append(Double(k) * step) }
        return ticks
    }

    static func tickLabel(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e6 { return String(Int(v)) }
        if abs(v) < 1e-3 || abs(v) >= 1e6 { return String(format: "%.0e", v) }
        var s = String(format: "%.3f", v)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }
}
