import LinprobeBLAS
import LinprobeCodecs
import LinprobeHDF5
import Testing

/// One test per native library: a broken pkg-config or link setup fails here, visibly.
@Suite struct NativeLinkTests {
    @Test func hdf5Links() {
        #expect(hdf5LibraryVersion().hasPrefix("1."))
    }

    @Test func openBLASLinksAndMultiplies() {
        #expect(BLAS.config.contains("OpenBLAS"))
        let a: [Float] = [1, 2, 3, 4, 5, 6]  // 2×3
        let b: [Float] = [7, 8, 9, 10, 11, 12]  // 3×2
        var c = [Float](repeating: 0, count: 4)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    BLAS.sgemm(m: 2, n: 2, k: 3, a: pa, b: pb, c: pc)
                }
            }
        }
        #expect(c == [58, 64, 139, 154])
    }

    @Test func turboJPEGLinks() {
        #expect(CodecVersions.turboJPEGAvailable())
    }

    @Test func libpngLinks() {
        #expect(CodecVersions.libpng.hasPrefix("1.6"))
    }
}
