// swift-tools-version:6.0
import PackageDescription

// Release builds of the numeric modules are what users run; `-Ounchecked` is not used so
// that preconditions guarding programmer errors stay active.

let package = Package(
    name: "Linprobe",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "linprobe", targets: ["linprobe"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // MARK: - System libraries (one C module per native library, found by pkg-config)

        .systemLibrary(
            name: "CLinprobeHDF5", pkgConfig: "hdf5",
            providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(
            name: "CLinprobeBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CLinprobeJPEG", pkgConfig: "libturbojpeg",
            providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(
            name: "CLinprobePNG", pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"])]),

        // MARK: - Wrappers (each native library is wrapped by exactly one Swift module)

        .target(name: "LinprobeHDF5", dependencies: ["CLinprobeHDF5"]),
        .target(name: "LinprobeBLAS", dependencies: ["CLinprobeBLAS"]),
        .target(name: "LinprobeCodecs", dependencies: ["CLinprobeJPEG", "CLinprobePNG"], exclude: ["README.md"]),

        // MARK: - Core (no C imports): errors, configuration, fingerprints, manifest

        .target(
            name: "LinprobeCore",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),

        // MARK: - Stages and their building blocks

        .target(name: "LinprobeStore", dependencies: ["LinprobeCore", "LinprobeHDF5"]),
        .target(name: "LinprobeCheckpoint", dependencies: ["LinprobeCore"], exclude: ["README.md"]),
        .target(
            name: "LinprobeTrunk",
            dependencies: ["LinprobeCore", "LinprobeBLAS", "LinprobeCheckpoint", "CLinprobeTrunkKernels"],
            exclude: ["README.md"]),
        .target(
            name: "LinprobeData",
            dependencies: ["LinprobeCore", "LinprobeCodecs", .product(name: "Crypto", package: "swift-crypto")],
            exclude: ["README.md"]),
        .target(
            name: "LinprobeExtract",
            dependencies: [
                "LinprobeCore", "LinprobeStore", "LinprobeHDF5", "LinprobeBLAS", "LinprobeCodecs", "LinprobeTrunk",
                "LinprobeData", "LinprobeCheckpoint", "LinprobeImport",
            ],
            exclude: ["README.md"]),
        .target(name: "CLinprobeSVMKernels"),
        .target(name: "CLinprobeTrunkKernels"),
        .target(
            name: "LinprobeSVM",
            dependencies: ["LinprobeCore", "LinprobeStore", "LinprobeBLAS", "CLinprobeSVMKernels"],
            exclude: ["README.md"]),
        .target(
            name: "LinprobeLinear",
            dependencies: [
                "LinprobeCore", "LinprobeStore", "LinprobeBLAS", .product(name: "Crypto", package: "swift-crypto"),
            ],
            exclude: ["README.md"]),
        .target(
            name: "LinprobeKNN", dependencies: ["LinprobeCore", "LinprobeStore", "LinprobeBLAS"],
            exclude: ["README.md"]),
        .target(
            name: "LinprobeImport",
            dependencies: ["LinprobeCore", "LinprobeStore", "LinprobeHDF5", "LinprobeCheckpoint"],
            exclude: ["README.md"]),
        .target(name: "LinprobeReport", dependencies: ["LinprobeCore"], exclude: ["README.md"]),

        // MARK: - Executable (subcommands and option groups only)

        .executableTarget(
            name: "linprobe",
            dependencies: [
                "LinprobeCore", "LinprobeStore", "LinprobeHDF5", "LinprobeBLAS", "LinprobeCodecs",
                "LinprobeCheckpoint", "LinprobeTrunk", "LinprobeData", "LinprobeExtract", "LinprobeSVM",
                "LinprobeLinear", "LinprobeKNN", "LinprobeImport", "LinprobeReport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // MARK: - Benchmarks (run by `make bench`, never by the tests)

        .executableTarget(
            name: "bench-store", dependencies: ["LinprobeCore", "LinprobeStore"], path: "Benchmarks/store/Sources"),
        .executableTarget(
            name: "LinprobeDataBench", dependencies: ["LinprobeData", "LinprobeCodecs", "LinprobeCore"],
            path: "Benchmarks/data/LinprobeDataBench"),
        .executableTarget(
            name: "linear-bench", dependencies: ["LinprobeLinear", "LinprobeStore", "LinprobeCore"],
            path: "Benchmarks/linear/Runner"),
        .executableTarget(
            name: "bench-svm", dependencies: ["LinprobeCore", "LinprobeStore", "LinprobeSVM"],
            path: "Benchmarks/svm/Sources"),
        .executableTarget(
            name: "bench-knn", dependencies: ["LinprobeCore", "LinprobeStore", "LinprobeKNN", "LinprobeBLAS"],
            path: "Benchmarks/knn/Sources"),
        .executableTarget(
            name: "bench-trunk", dependencies: ["LinprobeTrunk", "LinprobeCheckpoint", "LinprobeBLAS", "LinprobeCore"],
            path: "Benchmarks/trunk/Sources"),

        // MARK: - Fuzzing (run by `make fuzz`, never by the tests beyond a few iterations)

        .target(
            name: "LinprobeFuzz",
            dependencies: ["LinprobeCore", "LinprobeCheckpoint", "LinprobeCodecs", "LinprobeStore"],
            path: "Fuzz/LinprobeFuzz"),
        .executableTarget(
            name: "linprobe-fuzz",
            dependencies: ["LinprobeFuzz", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Fuzz/linprobe-fuzz"),

        // MARK: - Tests

        .target(
            name: "LinprobeTestSupport", dependencies: ["LinprobeCore", "LinprobeCheckpoint"],
            path: "Tests/LinprobeTestSupport"),
        .testTarget(
            name: "NativeLinkTests",
            dependencies: ["LinprobeHDF5", "LinprobeBLAS", "LinprobeCodecs"]),
        .executableTarget(
            name: "LinprobeTestHelper", dependencies: ["LinprobeCore", "LinprobeStore", "LinprobeTestSupport"],
            path: "Tests/LinprobeTestHelper"),
        .testTarget(
            name: "LinprobeStoreTests",
            dependencies: ["LinprobeStore", "LinprobeTestSupport", "LinprobeTestHelper"]),
        .testTarget(
            name: "LinprobeCoreTests",
            dependencies: ["LinprobeCore", "LinprobeTestSupport", "LinprobeTestHelper"]),
        .testTarget(
            name: "LinprobeCheckpointTests",
            dependencies: ["LinprobeCheckpoint", "LinprobeTestSupport"]),
        .testTarget(
            name: "LinprobeTrunkTests",
            dependencies: ["LinprobeTrunk", "LinprobeCheckpoint", "LinprobeTestSupport", "CLinprobeTrunkKernels"]),
        .testTarget(
            name: "LinprobeCodecsTests",
            dependencies: ["LinprobeCodecs", "LinprobeCore", "LinprobeTestSupport"]),
        .testTarget(
            name: "LinprobeDataTests",
            dependencies: ["LinprobeData", "LinprobeCodecs", "LinprobeCore", "LinprobeTestSupport"]),
        .testTarget(
            name: "LinprobeExtractTests",
            dependencies: [
                "LinprobeExtract", "LinprobeStore", "LinprobeData", "LinprobeCodecs", "LinprobeTrunk", "LinprobeCore",
                "LinprobeTestSupport",
            ]),
        .testTarget(
            name: "LinprobeSVMTests",
            dependencies: ["LinprobeSVM", "LinprobeStore", "LinprobeTestSupport"]),
        .testTarget(
            name: "LinprobeLinearTests",
            dependencies: ["LinprobeLinear", "LinprobeStore", "LinprobeTestSupport"]),
        .testTarget(
            name: "LinprobeKNNTests",
            dependencies: ["LinprobeKNN", "LinprobeStore", "LinprobeTestSupport"]),
        .testTarget(
            name: "LinprobeImportTests",
            dependencies: ["LinprobeImport", "LinprobeStore", "LinprobeCheckpoint", "LinprobeTestSupport"]),
        .testTarget(
            name: "LinprobeReportTests",
            dependencies: [
                "LinprobeReport", "LinprobeStore", "LinprobeSVM", "LinprobeLinear", "LinprobeKNN", "LinprobeCore",
                "LinprobeTestSupport",
            ]),
        .testTarget(
            name: "LinprobeFuzzTests",
            dependencies: ["LinprobeFuzz", "linprobe-fuzz", "LinprobeTestSupport"]),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "LinprobeTestSupport", "linprobe", "LinprobeStore", "LinprobeHDF5", "LinprobeTrunk", "LinprobeCore",
            ]),
    ],
    swiftLanguageModes: [.v6]
)
