import Foundation
import LinprobeCheckpoint
import LinprobeCore

/// The trunk's parameters by the family's names, checked strictly against an architecture, with
/// where they came from. Tensors still point into the mapped checkpoint; each family prepares
/// them for inference when its network is built (ResNet folds BatchNorm into the convolutions).
public struct TrunkWeights: @unchecked Sendable {
    public let architecture: any TrunkArchitecture
    /// Parameter name → tensor (every entry of `architecture.parameters`).
    public let tensors: [String: CheckpointTensor]
    /// How the weights were obtained (file, SHA-256, format, settings, notes; or the random seed).
    public let provenance: JSONValue
    /// SHA-256 of the weights file (nil for a random initialisation).
    public let sha256: String?
    /// Remarks for the user (keys ignored, flat file read under the default key, …).
    public let notes: [String]
    /// Parameter name → key as stored in the file (for messages).
    public let originalKeys: [String: String]

    /// The random-initialisation scheme, stated in provenance.
    public static let randomScheme =
        "conv weights ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's default kaiming_uniform(a=sqrt(5)) bound); BatchNorm weight 1, bias 0, running_mean 0, running_var 1; SplitMix64 stream per tensor seeded with FNV-1a-64(name) + seed * 0x9E3779B97F4A7C15"

    /// The scheme for one architecture: `randomScheme`, plus how embeddings are drawn when it has
    /// any (the text enters fingerprints, so a ResNet's stays what it was).
    public static func randomScheme(for architecture: any TrunkArchitecture) -> String {
        let embeddings = architecture.parameters.contains {
            if case .embedding = $0.initialisation { return true }
            return false
        }
        guard embeddings else { return randomScheme }
        return randomScheme
            + "; linear weights as conv weights, norm weights 1 and biases 0; embeddings ~ U(-std*sqrt(3), std*sqrt(3))"
    }

    /// Loads weights as `MODEL.WEIGHTS_INIT` says; an empty `PARAMS_FILE` gives the seeded random
    /// initialisation (VISSL's "random" baseline).
    public static func load(
        _ settings: WeightsInit, architecture: any TrunkArchitecture, randomSeed: UInt64 = 0
    ) throws -> TrunkWeights {
        try checkMemory(architecture)
        if settings.paramsFile.isEmpty { return random(architecture: architecture, seed: randomSeed) }
        let path = settings.paramsFile
        let checkpoint = try Checkpoint.load(path: path)
        let stateDict = try TrunkStateDict.select(
            from: checkpoint, settings: settings, moduleName: architecture.visslModuleName)
        let sha = try Fingerprint.sha256(ofFile: path)
        return try TrunkWeights(
            architecture: architecture, stateDict: stateDict, source: path, skipLayers: settings.skipLayers,
            randomSeed: randomSeed,
            provenance: [
                "init": "checkpoint",
                "path": .string(path),
                "sha256": .string(sha),
                "format": .string(checkpoint.format.rawValue),
                "settings": settings.provenance,
            ], sha256: sha)
    }

    /// The network keeps its weights as one float32 copy (BatchNorm folded in): refuse, with the
    /// figure, before the checkpoint is opened or hashed when that copy cannot fit (SEER-10B: 40 GB).
    static func checkMemory(_ architecture: any TrunkArchitecture) throws {
        // Overflow-checked: a configuration can ask for more parameters than an Int holds.
        let parameters = architecture.parameters
        guard let excess = MemoryBudget.excess(sumOf: parameters.map { $0.shape + [4] }) else { return }
        let count = parameters.reduce(0.0) { $0 + $1.shape.reduce(1.0) { $0 * Double($1) } }
        let figure = count < 1e15 ? String(Int(count)) : String(format: "%.3g", count)
        throw LinprobeError.config(
            "the \(architecture) trunk's \(figure) parameters in float32 \(excess); run it on a machine with more memory"
        )
    }

    /// A checked parameter as float32, refusing NaN and infinities (a corrupt checkpoint). Each
    /// parameter is read once, while the network is built.
    public func values(_ name: String) throws -> [Float] {
        guard let t = tensors[name] else {
            throw LinprobeError(.incompatible, "weights for \(architecture) lack \(name)")
        }
        try StopRequest.check("loading the trunk's weights")
        let v = t.floats()
        // The float32 copy is what the network keeps: the file's pages need not stay resident too.
        t.releaseResidentPages()
        if v.contains(where: { !$0.isFinite }) {
            throw LinprobeError(
                .numerical, "\(originalKeys[name] ?? name) contains NaN or infinite values; the checkpoint is corrupt")
        }
        return v
    }

    /// Seeded random initialisation (see `randomScheme`).
    public static func random(architecture: any TrunkArchitecture, seed: UInt64 = 0) -> TrunkWeights {
        var tensors: [String: CheckpointTensor] = [:]
        for p in architecture.parameters { tensors[p.name] = randomTensor(p, seed: seed) }
        return TrunkWeights(
            architecture: architecture, tensors: tensors,
            provenance: [
                "init": "random", "seed": .int(Int64(bitPattern: seed)),
                "scheme": .string(randomScheme(for: architecture)),
            ],
            sha256: nil, notes: ["random initialisation (no PARAMS_FILE), seed \(seed)"])
    }

    /// Weights given as tensors in memory (tests, converters); checked like a file's.
    public init(
        architecture: any TrunkArchitecture, tensors: [String: CheckpointTensor], source: String = "<memory>"
    ) throws {
        var sd = TrunkStateDict()
        for (name, tensor) in tensors.sorted(by: { $0.key < $1.key }) {
            sd.tensors[name] = TrunkStateDict.Entry(originalKey: name, tensor: tensor)
            sd.order.append(name)
        }
        try self.init(
            architecture: architecture, stateDict: sd, source: source, skipLayers: [], randomSeed: 0,
            provenance: ["init": "memory", "source": .string(source)], sha256: nil)
    }

    private init(
        architecture: any TrunkArchitecture, tensors: [String: CheckpointTensor], provenance: JSONValue,
        sha256: String?, notes: [String], originalKeys: [String: String] = [:]
    ) {
        self.architecture = architecture
        self.tensors = tensors
        self.originalKeys = originalKeys
        self.provenance = provenance
        self.sha256 = sha256
        self.notes = notes
    }

    /// Strict matching of a state dict against the architecture: every parameter present with its
    /// shape, no unexpected trunk parameter; all problems are reported in one line naming
    /// keys and both shapes. Parameters matched by `skipLayers` keep the random initial value.
    init(
        architecture: any TrunkArchitecture, stateDict: TrunkStateDict, source: String, skipLayers: [String],
        randomSeed: UInt64, provenance: JSONValue, sha256: String?
    ) throws {
        let spec = architecture
        let expected = spec.parameters
        let expectedNames = Set(expected.map(\.name))
        var tensors: [String: CheckpointTensor] = [:]
        var missing: [String] = []
        var wrongShape: [String] = []
        var skipped: [String] = []
        var notes = stateDict.notes
        for p in expected {
            let modelName = architecture.visslModuleName(p.name)
            if skipLayers.contains(where: { modelName.contains($0) }) {
                tensors[p.name] = TrunkWeights.randomTensor(p, seed: randomSeed)
                skipped.append(p.name)
                continue
            }
            guard let entry = stateDict.tensors[p.name] else {
                missing.append(p.name)
                continue
            }
            guard entry.tensor.shape == p.shape else {
                wrongShape.append("\(entry.originalKey): checkpoint \(entry.tensor.shape) vs model \(p.shape)")
                continue
            }
            guard entry.tensor.dtype.isFloatingPoint else {
                throw LinprobeError(
                    .incompatible,
                    "\(source): \(entry.originalKey) holds \(entry.tensor.dtype.rawValue) values, expected floating point"
                )
            }
            tensors[p.name] = entry.tensor
        }
        // Keys that look like trunk parameters but are not in this architecture.
        var unexpected: [String] = []
        var ignored: [String] = stateDict.ignoredKeys
        for name in stateDict.order where !expectedNames.contains(name) {
            let original = stateDict.tensors[name]?.originalKey ?? name
            if name.hasSuffix("num_batches_tracked") {
                continue
            }
            if architecture.looksLikeTrunkParameter(name) {
                unexpected.append(original)
            } else {
                ignored.append(original)
            }
        }
        if !missing.isEmpty || !wrongShape.isEmpty || !unexpected.isEmpty {
            var parts: [String] = []
            func list(_ items: [String]) -> String {
                items.prefix(4).joined(separator: ", ") + (items.count > 4 ? ", … (\(items.count) in all)" : "")
            }
            if !wrongShape.isEmpty { parts.append("wrong shape: \(list(wrongShape))") }
            if !missing.isEmpty { parts.append("missing: \(list(missing))") }
            if !unexpected.isEmpty { parts.append("unexpected: \(list(unexpected))") }
            let sample = stateDict.order.prefix(3).map { stateDict.tensors[$0]?.originalKey ?? $0 }
            var hint = architecture.checkpointHint
            if stateDict.order.isEmpty {
                hint =
                    "no trunk tensors found (ignored keys start with: \(list(Array(ignored.prefix(3)))))); set MODEL.WEIGHTS_INIT.STATE_DICT_KEY_NAME / REMOVE_PREFIX"
            } else if missing.count == expected.count {
                hint =
                    "none of the \(spec) parameters found (keys look like: \(sample.joined(separator: ", "))); set MODEL.WEIGHTS_INIT.REMOVE_PREFIX / APPEND_PREFIX"
            }
            throw LinprobeError(
                .shapeMismatch, "\(source): checkpoint does not fit \(spec) — \(parts.joined(separator: "; ")); \(hint)"
            )
        }
        if !ignored.isEmpty {
            notes.append(
                "ignored \(ignored.count) key(s) that are not part of the trunk: "
                    + ignored.prefix(5).joined(separator: ", ") + (ignored.count > 5 ? ", …" : ""))
        }
        if !skipped.isEmpty {
            notes.append(
                "SKIP_LAYERS left \(skipped.count) parameter(s) at the random initial value (seed \(randomSeed)): "
                    + skipped.prefix(5).joined(separator: ", ") + (skipped.count > 5 ? ", …" : ""))
        }
        var prov = provenance
        if case .object(var o) = prov {
            o["notes"] = .array(notes.map { .string($0) })
            if !skipped.isEmpty { o["random_seed"] = .int(Int64(bitPattern: randomSeed)) }
            prov = .object(o)
        }
        var originalKeys: [String: String] = [:]
        for (name, entry) in stateDict.tensors { originalKeys[name] = entry.originalKey }
        self.init(
            architecture: architecture, tensors: tensors, provenance: prov, sha256: sha256, notes: notes,
            originalKeys: originalKeys)
    }

    static func randomTensor(_ p: TrunkParameter, seed: UInt64) -> CheckpointTensor {
        let n = p.count
        func uniform(_ bound: Double) -> [Float] {
            var rng = SplitMix64(seed: fnv1a64(p.name) &+ seed &* 0x9E37_79B9_7F4A_7C15)
            return (0..<n).map { _ in Float((2 * (Double(rng.next() >> 11) * 0x1p-53) - 1) * bound) }
        }
        let values: [Float]
        switch p.initialisation {
        case .uniform(let fanIn):
            values = fanIn > 0 ? uniform(1 / Double(fanIn).squareRoot()) : Array(repeating: 0, count: n)
        case .embedding(let std): values = uniform(std * 3.0.squareRoot())
        case .zeros: values = Array(repeating: 0, count: n)
        case .ones: values = Array(repeating: 1, count: n)
        }
        return CheckpointTensor(shape: p.shape, values: values)
    }
}

/// FNV-1a, 64-bit, over UTF-8.
func fnv1a64(_ s: String) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in s.utf8 {
        h ^= UInt64(b)
        h = h &* 0x0000_0100_0000_01B3
    }
    return h
}

/// SplitMix64 (Steele, Lea & Flood 2014).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
