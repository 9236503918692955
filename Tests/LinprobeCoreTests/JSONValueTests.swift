import Foundation
import LinprobeCore
import Testing

@Suite struct JSONValueTests {
    @Test func canonicalTextSortsKeysAndIsCompact() throws {
        let v: JSONValue = ["b": [1, 2.5, "x"], "a": ["z": nil, "y": true], "é": "q\"\n"]
        #expect(v.canonicalText == #"{"a":{"y":true,"z":null},"b":[1,2.5,"x"],"é":"q\"\n"}"#)
        #expect(try JSONValue.parse(v.canonicalText) == v)
    }

    @Test func fingerprintDependsOnContentNotKeyOrder() {
        let a: JSONValue = ["x": 1, "y": [1, 2]]
        let b: JSONValue = ["y": [1, 2], "x": 1]
        let c: JSONValue = ["y": [2, 1], "x": 1]
        #expect(Fingerprint.sha256(of: a) == Fingerprint.sha256(of: b))
        #expect(Fingerprint.sha256(of: a) != Fingerprint.sha256(of: c))
        #expect(Fingerprint.short(a).count == 16)
        // SHA-256 of "abc" (FIPS 180-2 test vector).
        #expect(
            Fingerprint.sha256(Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
