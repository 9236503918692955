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
            out +=
                "| layer | " + table.columns.map { escapeMarkdown(table.header($0)) }.joined(separator: " | ") + " |\n"
            out += "|---|" + String(repeating: "---:|", count: table.columns.count) + "\n"
            for (i, layer) in table.layers.enumerated() {
                out += "| \(escapeMarkdown(layer)) | " + table.cells[i].joined(separator: " | ") + " |\n"
            }
            if !table.hyperColumns.isEmpty {
                out += "\nChosen hyper-parameters:\n\n"
                out +=
                    "| layer | "
                    + table.hyperColumns.map { escapeMarkdown(table.hyperHeader($0)) }.joined(separator: " | ") + " |\n"
                out += "|---|" + String(repeating: "---|", count: table.hyperColumns.count) + "\n"
                for (i, layer) in table.layers.enumerated() {
                    out +=
                        "| \(escapeMarkdown(layer)) | "
                        + table.hyperCells[i].map(escapeMarkdown).joined(separator: " | ") + " |\n"
                }
            }
        }
        if !doc.notes.isEmpty {
            out += "\nNotes:\n\n" + doc.notes.map { "- \($0)\n" }.joined()
        }
        let summary = protocolSummary(doc.protocolInfo)
        if !summary.isEmpty {
            out += "\n## Protocol\n\n" + summary.map { "- \(escapeMarkdown($0))\n" }.joined()
            out += "\nEverything else (versions, solver settings, provenance) is in report.json's `protocol` block.\n"
        }
        return out
    }

    /// One line per feature store, SVM run and linear run of each run: what produced the numbers.
    static func protocolSummary(_ info: ReportProtocol) -> [String] {
        var lines: [String] = []
        let showRun = info.runs.count > 1
        for run in info.runs.keys.sorted() {
            guard let block = info.runs[run] else { continue }
            let prefix = showRun ? "\(run): " : ""
            for (fp, f) in block.features.sorted(by: { $0.key < $1.key }) {
                let split = f.split.map { " (\($0))" } ?? ""
                lines.append("\(prefix)features \(fp)\(split): " + featuresSummary(f))
            }
            for (fp, b) in (block.svm ?? [:]).sorted(by: { $0.key < $1.key }) {
                lines.append("\(prefix)svm \(fp): " + svmSummary(b))
            }
            for (fp, b) in (block.linear ?? [:]).sorted(by: { $0.key < $1.key }) {
                lines.append("\(prefix)linear \(fp): " + linearSummary(b))
            }
            for (fp, b) in (block.knn ?? [:]).sorted(by: { $0.key < $1.key }) {
                lines.append("\(prefix)knn \(fp): " + knnSummary(b))
            }
        }
        return lines
    }

    static func featuresSummary(_ f: FeaturesProtocol) -> String {
        guard f.recorded else { return "provenance not recorded" }
        var parts: [String] = []
        if let t = f.trunk, t != .null { parts.append("trunk \(t.canonicalText)") }
        if let w = f.weights, w != .null {
            if w["init"]?.stringValue == "random" {
                parts.append("weights random init" + (w["seed"]?.intValue.map { " (seed \($0))" } ?? ""))
            } else {
                parts.append("weights \(w["path"]?.stringValue ?? "?") sha256 \(w["sha256"]?.stringValue ?? "?")")
            }
        }
        if let t = f.transforms, t != .null { parts.append("transforms \(t.canonicalText)") }
        if let p = f.poolOps, p != .null { parts.append("pool ops \(p.canonicalText)") }
        if parts.isEmpty, let root = f.dataset?["root"]?.stringValue {
            // A store without trunk or weights (imported features): where they came from.
            parts.append("features from \(root)")
        }
        if let tool = f.provenance?["tool"]?.stringValue { parts.append("written by \(tool)") }
        return parts.joined(separator: "; ")
    }

    static func svmSummary(_ b: SVMRunProtocol) -> String {
        var parts = [b.protocolName ?? "svm"]
        if let costs = b.costs { parts.append("costs \(JSONValue.array(costs.map(jsonNumber)).canonicalText)") }
        if let s = b.settings {
            for key in ["cross_val_folds", "normalize", "loss", "max_iter", "tol", "solver"] {
                if let v = s[key] { parts.append("\(key) \(v.stringValue ?? v.canonicalText)") }
            }
        }
        if let v = b.provenance?.toolVersion { parts.append("linprobe \(v)") }
        return parts.joined(separator: ", ")
    }

    static func linearSummary(_ b: LinearRunProtocol) -> String {
        var parts: [String] = []
        let heads = b.heads.sorted(by: { $0.key < $1.key })
            .map { "\($0.key) \($0.value.headType?.rawValue ?? "?") \(dimsText($0.value.headSpec?.dims))" }
        if !heads.isEmpty { parts.append("heads " + heads.joined(separator: ", ")) }
        if let h = b.hyperParameters {
            if let l = h["loss"]?["name"]?.stringValue { parts.append("loss \(l)") }
            if let seed = h["seed"] { parts.append("seed \(seed.canonicalText)") }
        }
        if let v = b.provenance?.version { parts.append("linprobe \(v)") }
        return parts.joined(separator: "; ")
    }

    static func knnSummary(_ b: KNNRunProtocol) -> String {
        let s = b.settings
        let ks = JSONValue.array(s.topk.map { .int(Int64($0)) }).canonicalText
        return "\(b.protocolName), k \(ks), T \(jsonNumber(s.temperature).canonicalText), "
            + "l2_normalize \(s.l2Normalize), linprobe \(b.provenance.version)"
    }

    /// A number as JSON text spells it after a round trip: whole numbers without a fraction.
    static func jsonNumber(_ v: Double) -> JSONValue {
        v == v.rounded() && abs(v) < 1e15 ? .int(Int64(v)) : .double(v)
    }

    /// `[512,10]`, as the head's `dims` read in JSON.
    static func dimsText(_ dims: [Int]?) -> String {
        dims.map { JSONValue.array($0.map { .int(Int64($0)) }).canonicalText } ?? ""
    }

    /// report.json's text: the document (`schemas/report.schema.json`), pretty, keys sorted.
    public static func jsonText(_ doc: ReportDocument) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(doc), as: UTF8.self) + "\n"
    }

    /// report.json as a JSON value (for tests and tools that inspect it).
    public static func json(_ doc: ReportDocument) throws -> JSONValue {
        try JSONValue.parse(jsonText(doc))
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
                    body +=
                        "<tr><th>\(escapeHTML(layer))</th>" + table.cells[i].map { "<td>\($0)</td>" }.joined()
                        + "</tr>\n"
                }
                body += "</tbody>\n</table>\n"
                if !table.hyperColumns.isEmpty {
                    body +=
                        "<details><summary>Chosen hyper-parameters</summary>\n"
                        + "<table class=\"hyper\">\n<thead><tr><th>layer</th>"
                    body += table.hyperColumns.map { "<th>\(escapeHTML(table.hyperHeader($0)))</th>" }.joined()
                    body += "</tr></thead>\n<tbody>\n"
                    for (i, layer) in table.layers.enumerated() {
                        body +=
                            "<tr><th>\(escapeHTML(layer))</th>"
                            + table.hyperCells[i].map { "<td>\(escapeHTML($0))</td>" }.joined() + "</tr>\n"
                    }
                    body += "</tbody>\n</table>\n</details>\n"
                }
            }
            for chart in doc.charts where chart.dataset == dataset {
                body +=
                    "<figure>\n\(SVGChart.render(chart))\n"
                    + "<figcaption>\(escapeHTML(chart.title))</figcaption>\n</figure>\n"
            }
            body += "</section>\n"
        }
        if !doc.notes.isEmpty {
            body +=
                "<section>\n<h2>Notes</h2>\n<ul>\n" + doc.notes.map { "<li>\(escapeHTML($0))</li>\n" }.joined()
                + "</ul>\n</section>\n"
        }
        let protocolText = (try? protocolJSON(doc.protocolInfo)) ?? ""
        let summary = protocolSummary(doc.protocolInfo)
        body += "<section>\n<h2>Protocol</h2>\n"
        if !summary.isEmpty { body += "<ul>\n" + summary.map { "<li>\(escapeHTML($0))</li>\n" }.joined() + "</ul>\n" }
        body +=
            "<details><summary>Full protocol block (report.json)</summary>\n"
            + "<pre>\(escapeHTML(protocolText))</pre>\n</details>\n</section>\n"
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

    /// The protocol block as report.json holds it, for the page's "full protocol block".
    static func protocolJSON(_ info: ReportProtocol) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(info), as: UTF8.self)
    }

    /// The three files of a report: `report.md`, `report.json`, `report.html`, in that order.
    public static let fileNames = ["report.md", "report.json", "report.html"]

    /// The texts of the three files, in the order of `fileNames`.
    public static func texts(_ doc: ReportDocument) throws -> [String] {
        [markdown(doc), try jsonText(doc), html(doc)]
    }

    /// Writes report.md, report.json and report.html into `directory` (atomically each).
    /// - Returns: the three paths.
    @discardableResult
    public static func write(_ doc: ReportDocument, to directory: String) throws -> [String] {
        let paths = fileNames.map { Paths.join(directory, $0) }
        for (path, text) in zip(paths, try texts(doc)) { try AtomicFile.write(text, to: path) }
        return paths
    }
}

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
