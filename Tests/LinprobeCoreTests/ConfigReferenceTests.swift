import Foundation
import LinprobeTestSupport
import Testing

@testable import LinprobeCore

/// The loader reads YAML as VISSL's OmegaConf does and overrides as Hydra does: checked against
/// `Tests/Fixtures/config/reference.json`, made by `scripts/gen_config_reference.py` with
/// omegaconf and hydra-core.
@Suite struct ConfigReferenceTests {
    enum Expected {
        case value(JSONValue)
        case error
        case sweep
    }

    static let reference: JSONValue = {
        let path = fixturePath("config/reference.json")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), let value = try? JSONValue.parse(text)
        else { return .null }
        return value
    }()

    static func untag(_ v: JSONValue) -> Expected {
        switch v {
        case .object(let o) where o.count == 1:
            if let s = o["int"]?.stringValue, let i = Int64(s) { return .value(.int(i)) }
            if let s = o["float"]?.stringValue, let d = Double(s) { return .value(.double(d)) }
            if case .object(let m)? = o["map"] {
                var out: [String: JSONValue] = [:]
                for (k, item) in m {
                    guard case .value(let x) = untag(item) else { return .error }
                    out[k] = x
                }
                return .value(.object(out))
            }
            if o["error"] != nil { return .error }
            if o["sweep"] != nil { return .sweep }
            return .error
        case .array(let items):
            var out: [JSONValue] = []
            for item in items {
                guard case .value(let x) = untag(item) else { return .error }
                out.append(x)
            }
            return .value(.array(out))
        default:
            return .value(v)
        }
    }

    /// Equality that treats NaN as equal to NaN.
    static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.double(let x), .double(let y)): return x == y || (x.isNaN && y.isNaN)
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
        case (.object(let x), .object(let y)):
            return Set(x.keys) == Set(y.keys) && x.allSatisfy { k, v in y[k].map { same(v, $0) } ?? false }
        default: return a == b
        }
    }

    @Test func referenceWasMadeByOmegaConfAndHydra() {
        #expect(Self.reference["tools"]?["omegaconf"]?.stringValue != nil)
        #expect(Self.reference["tools"]?["hydra-core"]?.stringValue != nil)
        #expect((Self.reference["yaml_files"]?.objectValue?.count ?? 0) == 8)
        #expect((Self.reference["yaml_scalars"]?.arrayValue?.count ?? 0) > 50)
        #expect((Self.reference["overrides"]?.arrayValue?.count ?? 0) > 60)
    }

    @Test func visslFilesParseAsOmegaConfReadsThem() throws {
        let files = try #require(Self.reference["yaml_files"]?.objectValue)
        for (relative, tagged) in files.sorted(by: { $0.key < $1.key }) {
            let text = try String(contentsOfFile: fixturePath(relative), encoding: .utf8)
            let parsed = try #require(try ConfigYAML.parse(text, source: relative))
            guard case .value(let expected) = Self.untag(tagged) else {
                Issue.record("\(relative): bad reference entry")
                continue
            }
            #expect(Self.same(parsed.json, expected), "\(relative)")
        }
    }

    @Test func plainScalarsAsOmegaConfReadsThem() throws {
        let cases = try #require(Self.reference["yaml_scalars"]?.arrayValue)
        for item in cases {
            guard case .array(let pair) = item, pair.count == 2, let text = pair[0].stringValue,
                case .value(let expected) = Self.untag(pair[1])
            else {
                Issue.record("bad reference entry \(item.canonicalText)")
                continue
            }
            let parsed = try ConfigYAML.parse("v: " + text, source: "scalar")?.json["v"] ?? .null
            #expect(
                Self.same(parsed, expected),
                "'\(text)': Linprobe \(parsed.canonicalText), OmegaConf \(expected.canonicalText)")
        }
    }

    @Test func overrideValuesAsHydraReadsThem() throws {
        let cases = try #require(Self.reference["overrides"]?.arrayValue)
        for item in cases {
            guard case .array(let pair) = item, pair.count == 2, let text = pair[0].stringValue else {
                Issue.record("bad reference entry \(item.canonicalText)")
                continue
            }
            switch Self.untag(pair[1]) {
            case .value(let expected):
                do {
                    let parsed = try ConfigOverride(parsing: text)
                    #expect(parsed.path == "a.b")
                    #expect(
                        Self.same(parsed.value, expected),
                        "'\(text)': Linprobe \(parsed.value.canonicalText), Hydra \(expected.canonicalText)")
                } catch {
                    Issue.record(
                        "'\(text)': Hydra reads \(expected.canonicalText), Linprobe refuses it: \(oneLine(error))")
                }
            case .error:
                let error = configError { _ = try ConfigOverride(parsing: text) }
                #expect(
                    error?.message.contains("bad override '\(text)'") == true,
                    "'\(text)': Hydra refuses it, Linprobe accepts it")
            case .sweep:
                let error = configError { _ = try ConfigOverride(parsing: text) }
                #expect(error?.message.contains("sweep") == true, "'\(text)' is a Hydra sweep")
            }
        }
    }
}
