import Foundation

/// Limits on YAML input, checked before the YAML library sees the text: its composer recurses once
/// per nesting level (5,000 levels overflow the stack), and alias expansion is bounded in
/// `ConfigYAML.convert`. VISSL's configs nest fewer than 10 levels and hold a few thousand values.
enum YAMLBounds {
    /// Deepest nesting accepted (maps, lists and flow collections together).
    static let maximumDepth = 200
    /// Most values the expanded document may hold (after aliases).
    static let nodeBudget = 1_000_000

    /// Rejects text whose nesting could exceed `maximumDepth`, from an upper bound that needs no
    /// parse: per line, its indentation plus the block-sequence dashes that open it, plus the flow
    /// brackets open at that point. Quoted text and comments are skipped.
    static func check(_ text: String, source: String) throws {
        var flowDepth = 0
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let bytes = Array(line.utf8)
            var i = 0
            while i < bytes.count && (bytes[i] == 0x20 || bytes[i] == 0x09) { i += 1 }
            var bound = i
            while i < bytes.count && bytes[i] == 0x2D {  // "- - - x" nests one level per dash
                bound += 1
                i += 1
                while i < bytes.count && bytes[i] == 0x20 { i += 1 }
            }
            let (open, peak) = scanFlow(bytes, from: i, depth: flowDepth)
            flowDepth = open
            if bound + peak > maximumDepth {
                throw LinprobeError.config(
                    "\(source) line \(lineNumber): nested deeper than \(maximumDepth) levels (indentation, '- ' and brackets); a pipeline config is far shallower"
                )
            }
        }
    }

    /// The flow-bracket depth after scanning `bytes[start...]` and the deepest point reached on the
    /// way (quotes and comments skipped).
    private static func scanFlow(_ bytes: [UInt8], from start: Int, depth: Int) -> (open: Int, peak: Int) {
        var depth = depth
        var peak = depth
        var quote: UInt8? = nil
        var i = start
        while i < bytes.count {
            let b = bytes[i]
            if let q = quote {
                if b == q { quote = nil }
            } else if b == 0x22 || b == 0x27 {
                quote = b
            } else if b == 0x23 && (i == 0 || bytes[i - 1] == 0x20) {
                break  // comment
            } else if b == 0x5B || b == 0x7B {
                depth += 1
                peak = max(peak, depth)
            } else if b == 0x5D || b == 0x7D {
                depth = max(0, depth - 1)
            }
            i += 1
        }
        return (depth, peak)
    }
}
