import Foundation
import LinprobeCore

/// One feature tap of VISSL's transformer trunks (`get_intermediate_features`). Every tap reads
/// the block outputs with the final LayerNorm applied (`interms[j] = norm(x_j)`).
public enum ViTTap: Sendable, Hashable {
    /// `interms[i][:, 0]` (`blkCLS{i}`, a Python index: negatives count from the end).
    case blockCLS(Int)
    /// `cat([interms[k][:, 0] for k in interms[-n:]])` (`concatCLS{n}`; `lastCLS` is `concatCLS1`).
    case concatCLS(Int)
    case lastCLS
    /// Token mean of `interms[-1]` (`lastPOOL`).
    case lastPOOL
    /// Token means of `interms[-n:]`, concatenated (`concatPOOL{n}`).
    case concatPOOL(Int)
    /// Token means of `interms[::-stride][:count]` (`stridePOOL_{count}_{stride}`; stride nil for
    /// the one-argument form, where it is ⌈L/count⌉).
    case stridePOOL(count: Int, stride: Int?)
    /// `interms[-1][:, 1:]` as `h × w × D` (channels last).
    case lastMAP
    /// `interms[-1]`, all tokens.
    case lastBLK
    /// `cat(interms[-n:], -1)`, all tokens.
    case concatBLK(Int)

    /// The tap families, as error messages list them.
    public static let names = [
        "lastCLS", "concatCLS{n}", "blkCLS{i}", "lastPOOL", "concatPOOL{n}", "stridePOOL_{count}_{stride}",
        "stridePOOL_{count}", "lastMAP", "lastBLK", "concatBLK{n}",
    ]

    /// Parses a tap name as VISSL does (`int(...)` of the suffix: optional sign, digits); nil
    /// for a name VISSL would not recognise.
    public init?(name: String) {
        func number(_ s: Substring) -> Int? {
            let t = s.trimmingCharacters(in: .whitespaces)
            guard !t.isEmpty, t.firstMatch(of: #/^[+-]?[0-9]+$/#) != nil else { return nil }
            return Int(t.hasPrefix("+") ? String(t.dropFirst()) : t)
        }
        switch name {
        case "lastCLS": self = .lastCLS
        case "lastPOOL": self = .lastPOOL
        case "lastMAP": self = .lastMAP
        case "lastBLK": self = .lastBLK
        default:
            if name.hasPrefix("blkCLS"), let v = number(name.dropFirst(6)) {
                self = .blockCLS(v)
            } else if name.hasPrefix("concatCLS"), let v = number(name.dropFirst(9)) {
                self = .concatCLS(v)
            } else if name.hasPrefix("concatPOOL"), let v = number(name.dropFirst(10)) {
                self = .concatPOOL(v)
            } else if name.hasPrefix("concatBLK"), let v = number(name.dropFirst(9)) {
                self = .concatBLK(v)
            } else if name.hasPrefix("stridePOOL_") {
                let parts = name.dropFirst(11).split(separator: "_", omittingEmptySubsequences: false).map(number)
                guard (1...2).contains(parts.count), let count = parts[0] else { return nil }
                if parts.count == 2 {
                    guard let stride = parts[1] else { return nil }
                    self = .stridePOOL(count: count, stride: stride)
                } else {
                    self = .stridePOOL(count: count, stride: nil)
                }
            } else {
                return nil
            }
        }
    }

    /// Whether the tap reads the class token (true), pools all tokens (false: needs a model
    /// without class token, as VISSL asserts), or works either way (nil).
    public var classToken: Bool? {
        switch self {
        case .blockCLS, .concatCLS, .lastCLS, .lastMAP: return true
        case .lastPOOL, .concatPOOL, .stridePOOL: return false
        case .lastBLK, .concatBLK: return nil
        }
    }

    /// The taps VISSL's beit trunk offers (class-token rows only).
    var isClassTokenRow: Bool {
        switch self {
        case .lastCLS, .concatCLS, .blockCLS: return true
        default: return false
        }
    }

    /// Whether every token of a block goes into the feature (the others need one row per block).
    var allTokens: Bool {
        switch self {
        case .lastMAP, .lastBLK, .concatBLK: return true
        default: return false
        }
    }

    /// Whether the tokens of each block are averaged.
    var pooled: Bool { classToken == false }

    /// The blocks the tap reads, in concatenation order, for a trunk of `layers` blocks (Python
    /// indexing and slicing semantics); a message saying why when there are none.
    func blocks(layers: Int) -> Result<[Int], TapError> {
        switch self {
        case .lastCLS, .lastPOOL, .lastMAP, .lastBLK:
            return .success([layers - 1])
        case .blockCLS(let i):
            guard i >= -layers, i < layers else {
                return .failure(.init("block index \(i) is outside the \(layers) blocks"))
            }
            return .success([i < 0 ? layers + i : i])
        case .concatCLS(let n), .concatPOOL(let n), .concatBLK(let n):
            // interms[-n:]: Python clamps the start; -0 is 0 (all blocks).
            var start = -n
            if start < 0 { start += layers }
            start = min(max(start, 0), layers)
            guard start < layers else { return .failure(.init("interms[-\(n):] selects no block of \(layers)")) }
            return .success(Array(start..<layers))
        case .stridePOOL(let count, let step):
            guard count > 0 else { return .failure(.init("the count must be positive")) }
            let s = step ?? (layers + count - 1) / count
            guard s > 0 else { return .failure(.init("the stride must be positive")) }
            let picked = Array(stride(from: layers - 1, through: 0, by: -s).prefix(count))
            return .success(picked)
        }
    }

    struct TapError: Error {
        let message: String
        init(_ message: String) { self.message = message }
    }
}
