/// Python's `sorted()` order for `str`: lexicographic by Unicode code point, which is the
/// byte order of UTF-8 (Swift's `<` on `String` compares canonical equivalents and can differ).
@inline(__always)
func pythonLess(_ a: String, _ b: String) -> Bool {
    a.utf8.lexicographicallyPrecedes(b.utf8)
}
