import Foundation
import LinprobeCore

/// Renders a `ReportDocument` as report.md, report.json and a self-contained report.html.
public enum ReportRenderer {
    /// Markdown: per dataset, a table of layer × method with the metric, then the chosen
    /// hyper-parameters.
    public static func markdown(_ doc: ReportDocument) -> String {
        var out = "# \(doc.title)\n"
        for dataset in doc.datasets {
            let rows = doc.rows.filter { $0.dataset == dataset }
            guard !rows.isEmpty else { continue }
            let splits = orderedUnique(rows.map(\.split)).joined(separator: ", ")
            out += "\n## \(dataset) (\(splits))\n\n"
            let table = DatasetTable(rows: rows)
            out += "| layer | " + table.columns.map { escapeMarkdown(table.header($0)) }.joined(separator: " | ") + " |\n"
            out += "|---|" + String(repeating: "---:|", count: table.columns.count) + "\n"
            for (i, layer) in table.layers.enumerated() {
                out += "| \(escapeMarkdown(layer)) | " + table.cells[i].joined(separator: " | ") + " |\n"
            }
            if !table.hyperColumns.isEmpty {
                out += "\nChosen hyper-parameters:\n\n"
                out += "| layer | " + table.hyperColumns.map { escapeMarkdown(table.hyperHeader($0)) }.joined(separator: " | ") + " |\n"
                out += "|---|" + String(repeating: "---|", count: table.hyperColumns.count) + "\n"
                for (i, layer) in table.layers.enumerated() {
                    out += "| \(escapeMarkdown(layer)) | " + table.hyperCells[i].map(escapeMarkdown).joined(separator: " | ") + " |\n"
                }
            }
        }
        if !doc.notes.isEmpty {
            out += "\nNotes:\n\n" + doc.notes.map { "- \($0)\n" }.joined()
        }
        return out
    }

    /// report.json: the flat rows plus the protocol block (`schemas/report.schema.json`).
    public static func json(_ doc: ReportDocument) -> JSONValue {
        let rows: [JSONValue] = doc.rows.map { r in
            var o: [String: JSONValue] = [
                "run": .string(r.run), "dataset": .string(r.dataset), "split": .string(r.split), "layer": .string(r.layer),
                "method": .string(r.method), "metric": .string(r.metric),
                "value": r.value.isFinite ? .double(r.value) : .null, "fingerprint": .string(r.fingerprint),
            ]
            if let h = r.hyperparameters { o["hyperparameters"] = .string(h) }
            return .object(o)
        }
        let charts: [JSONValue] = doc.charts.map { c in
            var o: [String: JSONValue] = [
                "id": .string(c.id), "run": .string(c.run), "title": .string(c.title), "dataset": .string(c.dataset),
                "x_label": .string(c.xLabel), "y_label": .string(c.yLabel), "log_x": .bool(c.logX),
                "series": .array(c.series.map { s in
                    ["name": .string(s.name),
                     "points": .array(s.points.map { .array([chartNumber($0.x), chartNumber($0.y)]) })]
                }),
            ]
            if let cats = c.categories { o["categories"] = .array(cats.map { .string($0) }) }
            return .object(o)
        }
        return [
            "format": "linprobe.report", "format_version": 1, "title": .string(doc.title),
            "rows": .array(rows), "charts": .array(charts), "protocol": doc.protocolInfo,
            "notes": .array(doc.notes.map { .string($0) }),
        ]
    }

    /// A self-contained HTML page (inline CSS and SVG, no scripts, no external resources).
    public static func html(_ doc: ReportDocument) -> String {
        var body = "<h1>\(escapeHTML(doc.title))</h1>\n"
        for dataset in doc.datasets {
            body += "<section>\n<h2>\(escapeHTML(dataset))</h2>\n"
            let rows = doc.rows.filter { $0.dataset == dataset }
            if !rows.isEmpty {
                let table = DatasetTable(rows: rows)
                body += "<table>\n<thead><tr><th>layer</th>"
                body += table.columns.map { "<th>\(escapeHTML(table.header($0)))</th>" }.joined()
                body += "</tr></thead>\n<tbody>\n"
                for (i, layer) in table.layers.enumerated() {
                    body += "<tr><th>\(escapeHTML(layer))</th>" + table.cells[i].map { "<td>\($0)</td>" }.joined() + "</tr>\n"
                }
                body += "</tbody>\n</table>\n"
                if !table.hyperColumns.isEmpty {
                    body += "<details><summary>Chosen hyper-parameters</summary>\n<table class=\"hyper\">\n<thead><tr><th>layer</th>"
                    body += table.hyperColumns.map { "<th>\(escapeHTML(table.hyperHeader($0)))</th>" }.joined()
                    body += "</tr></thead>\n<tbody>\n"
                    for (i, layer) in table.layers.enumerated() {
                        body += "<tr><th>\(escapeHTML(layer))</th>" + table.hyperCells[i].map { "<td>\(escapeHTML($0))</td>" }.joined() + "</tr>\n"
                    }
                    body += "</tbody>\n</table>\n</details>\n"
                }
            }
            for chart in doc.charts where chart.dataset == dataset {
                body += "<figure>\n\(SVGChart.render(chart))\n<figcaption>\(escapeHTML(chart.title))</figcaption>\n</figure>\n"
            }
            body += "</section>\n"
        }
        if !doc.notes.isEmpty {
            body += "<section>\n<h2>Notes</h2>\n<ul>\n" + doc.notes.map { "<li>\(escapeHTML($0))</li>\n" }.joined() + "</ul>\n</section>\n"
        }
        let protocolText = (try? doc.protocolInfo.prettyText()) ?? doc.protocolInfo.canonicalText
        body += "<section>\n<h2>Protocol</h2>\n<pre>\(escapeHTML(protocolText))</pre>\n</section>\n"
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>\(escapeHTML(doc.title))</title>
            <style>
            body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 64rem; color: #1f2328; padding: 0 1rem; }
            table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
            th, td { border: 1px solid #d0d7de; padding: 0.3rem 0.6rem; }
            td { text-align: right; font-variant-numeric: tabular-nums; }
            table.hyper td { text-align: left; }
            thead th { background: #f6f8fa; }
            figure { margin: 1rem 0; }
            figcaption { font-size: 0.9rem; color: #57606a; }
            pre { background: #f6f8fa; padding: 0.8rem; overflow-x: auto; font-size: 0.8rem; }
            svg text { font-family: inherit; }
            </style>
            </head>
            <body>
            \(body)</body>
            </html>

            """
    }

    /// Writes report.md, report.json and report.html into `directory` (atomically each).
    /// - Returns: the three paths.
    @discardableResult
    public static func write(_ doc: ReportDocument, to directory: String) throws -> [String] {
        let md = (directory as NSString).appendingPathComponent("report.md")
        let js = (directory as NSString).appendingPathComponent("report.json")
        let ht = (directory as NSString).appendingPathComponent("report.html")
        try AtomicFile.write(markdown(doc), to: md)
        try AtomicFile.write(try json(doc).prettyText() + "\n", to: js)
        try AtomicFile.write(html(doc), to: ht)
        return [md, js, ht]
    }
}

private func chartNumber(_ v: Double) -> JSONValue { v.isFinite ? .double(v) : .null }

func escapeHTML(_ s: String) -> String {
    var out = ""
    for c in s {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(c)
        }
    }
    return out
}

func escapeMarkdown(_ s: String) -> String {
    s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
}
