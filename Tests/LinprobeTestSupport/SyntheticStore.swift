import Foundation

/// Deterministic synthetic rows for store tests (shared by the tests and the kill helper).
public enum SyntheticRows {
    public static let layers: [(name: String, shape: [Int])] = [("res4", [4, 3, 3]), ("res5avg", [7, 1, 1])]
    public static let classes = 5

    public static func value(row: Int, layer: Int, column: Int) -> Float {
        Float((row * 131 + column * 17 + layer * 7) % 1000) / 997 - 0.5
    }

    /// Features of `rows` for layer `layer` (row-major).
    public static func features(rows: Range<Int>, layer: Int) -> [Float] {
        let d = layers[layer].shape.reduce(1, *)
        var out: [Float] = []
        out.reserveCapacity(rows.count * d)
        for r in rows { for j in 0..<d { out.append(value(row: r, layer: layer, column: j)) } }
        return out
    }

    /// Multi-label targets in VOC encoding.
    public static func targets(rows: Range<Int>) -> [Int64] {
        rows.flatMap { r in (0..<classes).map { c in Int64((r + c) % 3) - 1 } }
    }

    public static func paths(rows: Range<Int>) -> [String] { rows.map { "class_\($0 % 3)/img_\($0).jpg" } }
}
