import Foundation
import LinprobeCore

/// Output size rule of torchvision's `Resize`.
public enum ResizeSize: Sendable, Equatable {
    /// `size: 256` or `[256]`: the shorter side becomes 256, the longer `int(256 · long / short)`.
    case shorterSide(Int)
    /// `size: [h, w]`.
    case exact(height: Int, width: Int)
}

/// One step of a preprocessing pipeline with torchvision-on-PIL semantics.
public enum TransformStep: Sendable, Equatable {
    case resize(ResizeSize, maxSize: Int?, filter: ResampleFilter)
    /// `CenterCrop([h, w])`; a crop larger than the image pads with zeros as torchvision does.
    case centerCrop(height: Int, width: Int)
    /// `RandomResizedCrop`: a seeded random box (torchvision's `get_params` algorithm), then a
    /// resize of the box to `height`×`width`.
    case randomResizedCrop(
        height: Int, width: Int, scale: ClosedRange<Double>, ratio: ClosedRange<Double>,
        filter: ResampleFilter)
    /// `F.resized_crop` with a fixed box (the deterministic part of `RandomResizedCrop`).
    case resizedCrop(
        top: Int, left: Int, boxHeight: Int, boxWidth: Int, height: Int, width: Int,
        filter: ResampleFilter)
    /// torchvision's `RandomCrop(size)` (no padding): a seeded uniform box of `height`×`width`
    /// inside the image; an image smaller than the crop is an error, as in torchvision.
    case randomCrop(height: Int, width: Int)
    case randomHorizontalFlip(p: Double)
    /// `ToTensor`: HWC uint8 → CHW float32 in [0, 1].
    case toTensor
    /// VISSL's `ImgPilToRawTensor`: HWC uint8 → CHW float32 in [0, 255].
    case toRawTensor
    /// VISSL's `ImgPil2LabTensor`: RGB → OpenCV 8-bit Lab (`LabColor`) → CHW float32
    /// `[L8·100/255 − 50, a8 − 128, b8 − 128]`.
    case toLabTensor
    case normalize(mean: [Float], std: [Float])

    /// The torchvision/VISSL class name.
    public var name: String {
        switch self {
        case .resize: return "Resize"
        case .centerCrop: return "CenterCrop"
        case .randomResizedCrop: return "RandomResizedCrop"
        case .randomCrop: return "RandomCrop"
        case .resizedCrop: return "ResizedCrop"
        case .randomHorizontalFlip: return "RandomHorizontalFlip"
        case .toTensor: return "ToTensor"
        case .toRawTensor: return "ImgPilToRawTensor"
        case .toLabTensor: return "ImgPil2LabTensor"
        case .normalize: return "Normalize"
        }
    }

    var isTensorConversion: Bool { self == .toTensor || self == .toRawTensor || self == .toLabTensor }

    /// Whether the step changes the image's size (resizes and crops).
    var isGeometric: Bool {
        switch self {
        case .resize, .centerCrop, .randomResizedCrop, .resizedCrop, .randomCrop: return true
        default: return false
        }
    }

    /// Canonical description with every default made explicit (for fingerprints and stores).
    public var description: JSONValue {
        func f(_ filter: ResampleFilter) -> JSONValue { .string(filter.rawValue) }
        switch self {
        case .resize(let size, let maxSize, let filter):
            let s: JSONValue
            switch size {
            case .shorterSide(let n): s = .int(Int64(n))
            case .exact(let h, let w): s = [.int(Int64(h)), .int(Int64(w))]
            }
            return [
                "name": "Resize", "size": s, "max_size": maxSize.map { .int(Int64($0)) } ?? .null,
                "interpolation": f(filter),
            ]
        case .centerCrop(let h, let w):
            return ["name": "CenterCrop", "size": [.int(Int64(h)), .int(Int64(w))]]
        case .randomResizedCrop(let h, let w, let scale, let ratio, let filter):
            return [
                "name": "RandomResizedCrop", "size": [.int(Int64(h)), .int(Int64(w))],
                "scale": [.double(scale.lowerBound), .double(scale.upperBound)],
                "ratio": [.double(ratio.lowerBound), .double(ratio.upperBound)], "interpolation": f(filter),
            ]
        case .resizedCrop(let top, let left, let bh, let bw, let h, let w, let filter):
            return [
                "name": "ResizedCrop", "box": [.int(Int64(top)), .int(Int64(left)), .int(Int64(bh)), .int(Int64(bw))],
                "size": [.int(Int64(h)), .int(Int64(w))], "interpolation": f(filter),
            ]
        case .randomCrop(let h, let w):
            return ["name": "RandomCrop", "size": [.int(Int64(h)), .int(Int64(w))]]
        case .randomHorizontalFlip(let p):
            return ["name": "RandomHorizontalFlip", "p": .double(p)]
        case .toTensor:
            return ["name": "ToTensor"]
        case .toRawTensor:
            return ["name": "ImgPilToRawTensor"]
        case .toLabTensor:
            return ["name": "ImgPil2LabTensor"]
        case .normalize(let mean, let std):
            return [
                "name": "Normalize", "mean": .array(mean.map { .double(Double($0)) }),
                "std": .array(std.map { .double(Double($0)) }),
            ]
        }
    }
}

/// A validated list of transforms, as VISSL's `DATA.<SPLIT>.TRANSFORMS` gives it:
/// PIL-stage steps (resize, crops, flip), one tensor conversion, then tensor steps (Normalize,
/// flip).
public struct TransformPipeline: Sendable, Equatable {
    public let steps: [TransformStep]

    /// Transform names Linprobe implements (torchvision's, plus VISSL's `ImgPilToRawTensor`).
    public static let supportedNames = [
        "Resize", "CenterCrop", "RandomCrop", "RandomResizedCrop", "RandomHorizontalFlip",
        "ToTensor", "Normalize", "ImgPilToRawTensor", "ImgPil2LabTensor",
    ]

    /// Validates the order. `requireTensor` (the default, what `extract` needs) demands a
    /// tensor conversion; without it the pipeline may end with an image (tools and tests).
    public init(steps: [TransformStep], requireTensor: Bool = true, path: String = "TRANSFORMS") throws {
        var converted = false
        for (i, step) in steps.enumerated() {
            let here = "\(path)[\(i)] (\(step.name))"
            switch step {
            case .toTensor, .toRawTensor, .toLabTensor:
                if converted {
                    throw LinprobeError.config("\(here): the image is already a tensor (a second tensor conversion)")
                }
                converted = true
            case .normalize:
                if !converted {
                    throw LinprobeError.config("\(here): Normalize needs a tensor; put ToTensor before it")
                }
            case .randomHorizontalFlip:
                break
            case .resize, .centerCrop, .randomResizedCrop, .resizedCrop, .randomCrop:
                if converted {
                    throw LinprobeError.config(
                        "\(here): geometric transforms after ToTensor are not supported (torchvision would resample a tensor, not a PIL image); move it before ToTensor"
                    )
                }
            }
        }
        if requireTensor && !converted {
            throw LinprobeError.config(
                "\(path): the transforms must convert the image to a tensor (add {name: ToTensor})")
        }
        self.steps = steps
        try checkConfiguredSizes(path: path)
    }

    /// The configured output sizes (exact resizes, crops; a shorter-side resize makes at least
    /// size×size) checked against the memory budget before any image is processed.
    private func checkConfiguredSizes(path: String) throws {
        let last = steps.lastIndex { $0.isGeometric }
        for (i, step) in steps.enumerated() {
            let h: Int, w: Int, atLeast: Bool
            switch step {
            case .resize(.exact(let eh, let ew), _, _): (h, w, atLeast) = (eh, ew, false)
            case .resize(.shorterSide(let n), _, _): (h, w, atLeast) = (n, n, true)
            case .centerCrop(let ch, let cw), .randomResizedCrop(let ch, let cw, _, _, _),
                .resizedCrop(_, _, _, _, let ch, let cw, _), .randomCrop(let ch, let cw):
                (h, w, atLeast) = (ch, cw, false)
            default: continue
            }
            if let excess = Self.sizeExcess(height: h, width: w, final: i == last, atLeast: atLeast) {
                throw LinprobeError.config("\(path)[\(i)] (\(step.name)): \(excess)")
            }
        }
    }

    /// Checks every image the pipeline makes from an `imageWidth`×`imageHeight` input, and the
    /// tensor it ends with, against the memory budget (before the runner allocates them).
    /// Also refuses a `RandomCrop` larger than the image it gets (torchvision raises there).
    public func checkMemory(imageWidth: Int, imageHeight: Int) throws {
        let sizes = imageSizes(imageWidth: imageWidth, imageHeight: imageHeight)
        var before = (h: imageHeight, w: imageWidth)
        for s in sizes {
            if case .randomCrop(let ch, let cw) = steps[s.step], ch > before.h || cw > before.w {
                throw LinprobeError(
                    .shapeMismatch,
                    "TRANSFORMS[\(s.step)] (RandomCrop) of a \(imageWidth)×\(imageHeight) image: required crop size (\(ch), \(cw)) is larger than the input image size (\(before.h), \(before.w))"
                )
            }
            before = (s.height, s.width)
        }
        for (k, s) in sizes.enumerated() {
            let final = k == sizes.count - 1
            if let excess = Self.sizeExcess(height: s.height, width: s.width, final: final, atLeast: false) {
                throw LinprobeError.config(
                    "TRANSFORMS[\(s.step)] (\(steps[s.step].name)) of a \(imageWidth)×\(imageHeight) image: \(excess)")
            }
        }
    }

    /// nil when an image of `height`×`width` (uint8 RGB, or the float32 tensor for the last
    /// geometric step) fits the memory budget; otherwise the phrase giving the figure.
    static func sizeExcess(height: Int, width: Int, final: Bool, atLeast: Bool) -> String? {
        let factors = final ? [3, height, width, 4] : [height, width, 3]
        guard let excess = MemoryBudget.excess(factors, atLeast: atLeast) else { return nil }
        let what = final ? "its 3×\(height)×\(width) float32 tensor" : "a \(width)×\(height) RGB image"
        return "\(what) \(excess)"
    }

    /// Parses VISSL's list syntax: `[{name: Resize, size: 256}, {name: CenterCrop, size: 224}, …]`.
    public init(config: ConfigNode, requireTensor: Bool = true) throws {
        var steps = [TransformStep]()
        for item in try config.list() {
            steps.append(try Self.parseStep(item))
        }
        try self.init(steps: steps, requireTensor: requireTensor, path: config.path)
    }

    /// Canonical JSON description (defaults explicit) for fingerprints and the store's attributes.
    public var description: JSONValue { .array(steps.map(\.description)) }

    /// Whether any step draws random numbers (then outputs depend on the per-sample seed).
    public var isRandom: Bool {
        steps.contains {
            if case .randomResizedCrop = $0 { return true }
            if case .randomCrop = $0 { return true }
            if case .randomHorizontalFlip(let p) = $0 { return p > 0 && p < 1 }
            return false
        }
    }

    /// Output tensor shape `[3, H, W]` for an input image of the given size.
    public func outputShape(imageWidth: Int, imageHeight: Int) -> [Int] {
        let last = imageSizes(imageWidth: imageWidth, imageHeight: imageHeight).last
        return [3, last?.height ?? imageHeight, last?.width ?? imageWidth]
    }

    /// The image size after each geometric step (its index in `steps`), for an input of the
    /// given size: the images the runner materialises at most.
    func imageSizes(imageWidth: Int, imageHeight: Int) -> [(step: Int, height: Int, width: Int)] {
        var w = imageWidth, h = imageHeight
        var sizes: [(step: Int, height: Int, width: Int)] = []
        for (i, step) in steps.enumerated() {
            switch step {
            case .resize(let size, let maxSize, _):
                (h, w) = Self.resizedSize(height: h, width: w, size: size, maxSize: maxSize)
            case .centerCrop(let ch, let cw):
                (h, w) = (ch, cw)
            case .randomResizedCrop(let ch, let cw, _, _, _), .resizedCrop(_, _, _, _, let ch, let cw, _):
                (h, w) = (ch, cw)
            case .randomCrop(let ch, let cw):
                (h, w) = (ch, cw)
            default:
                continue
            }
            sizes.append((i, h, w))
        }
        return sizes
    }

    /// The output shape when it does not depend on the input size (the trunk's shape checks need
    /// it), or nil when it does (e.g. `Resize(256)` without a crop).
    public var fixedOutputShape: [Int]? {
        let a = outputShape(imageWidth: 1000, imageHeight: 700)
        let b = outputShape(imageWidth: 333, imageHeight: 517)
        return a == b ? a : nil
    }

    /// torchvision's `_compute_resized_output_size` (as `(height, width)`).
    public static func resizedSize(height h: Int, width w: Int, size: ResizeSize, maxSize: Int?) -> (Int, Int) {
        switch size {
        case .exact(let oh, let ow):
            return (oh, ow)
        case .shorterSide(let requested):
            let (short, long) = w <= h ? (w, h) : (h, w)
            var newShort = requested
            // Products in Double: exact below 2^53 (every real size), no overflow above.
            var newLong = clampedInt(Double(requested) * Double(long) / Double(short))
            if let maxSize, newLong > maxSize {
                newShort = clampedInt(Double(maxSize) * Double(newShort) / Double(newLong))
                newLong = maxSize
            }
            return w <= h ? (newLong, newShort) : (newShort, newLong)
        }
    }

    /// `Int(x)` for a non-negative size, with anything at or above 2^62 (or NaN) as 2^62: far
    /// beyond the memory budget, which then refuses it.
    private static func clampedInt(_ x: Double) -> Int {
        x < 0x1p62 ? Int(x) : 1 << 62
    }

    // MARK: - Parsing one list item

    static func parseStep(_ item: ConfigNode) throws -> TransformStep {
        guard case .object(let fields)? = item.value else {
            throw LinprobeError.config(
                "\(item.path): expected a mapping like {name: Resize, size: 256}, got \(item.value?.canonicalText ?? "nothing")"
            )
        }
        guard case .string(let name)? = fields["name"] else {
            throw LinprobeError.config("\(item.path): transform has no 'name'")
        }
        let here = "\(item.path) (\(name))"
        func accept(_ allowed: [String]) throws {
            // VISSL's wrapper adds `indices` (which data source to apply to): one source here.
            let extra = fields.keys.filter { $0 != "name" && $0 != "indices" && !allowed.contains($0) }.sorted()
            if let bad = extra.first {
                let list = allowed.isEmpty ? "none" : allowed.joined(separator: ", ")
                throw LinprobeError.config("\(here): unknown argument '\(bad)'; accepted: \(list)")
            }
            if let indices = fields["indices"] {
                let ok: Bool
                switch indices {
                case .int(0): ok = true
                case .array(let a): ok = a == [.int(0)]
                default: ok = false
                }
                if !ok {
                    throw LinprobeError.config(
                        "\(here): indices \(indices.canonicalText) is not supported (one data source; use [0] or leave it out)"
                    )
                }
            }
        }
        func node(_ key: String) -> ConfigNode { item[key] }
        func positive(_ key: String) throws -> Int {
            let v = try node(key).int()
            guard v > 0 else { throw LinprobeError.config("\(here): \(key) must be positive, got \(v)") }
            return v
        }
        /// `size` as torchvision's `_setup_size`: int → (s, s); [s] → (s, s); [h, w].
        func squareOrPair(_ key: String) throws -> (Int, Int) {
            let n = node(key)
            if let value = n.value, case .array(let a) = value {
                let values = try n.ints()
                guard (1...2).contains(a.count), values.allSatisfy({ $0 > 0 }) else {
                    throw LinprobeError.config(
                        "\(here): \(key) must be a positive integer or [height, width], got \(value.canonicalText)")
                }
                return values.count == 1 ? (values[0], values[0]) : (values[0], values[1])
            }
            let s = try positive(key)
            return (s, s)
        }
        func filter() throws -> ResampleFilter {
            let n = node("interpolation")
            guard n.exists, let value = n.value else { return .bilinear }
            switch value {
            case .int(let code):
                if let f = ResampleFilter(pilCode: Int(code)) { return f }
            case .string(let s):
                let key = s.lowercased().replacingOccurrences(of: "interpolationmode.", with: "")
                if let f = ResampleFilter(rawValue: key) { return f }
            default:
                break
            }
            throw LinprobeError.config(
                "\(here): interpolation \(value.canonicalText) is not supported; use 2 (bilinear), 3 (bicubic), 0 (nearest), 1 (lanczos), 4 (box) or 5 (hamming)"
            )
        }
        func range(_ key: String, default d: ClosedRange<Double>) throws -> ClosedRange<Double> {
            let n = node(key)
            guard n.exists, let value = n.value else { return d }
            let v = try n.doubles()
            guard v.count == 2, v[0] > 0, v[0] <= v[1], v.allSatisfy(\.isFinite) else {
                throw LinprobeError.config(
                    "\(here): \(key) must be [min, max] with 0 < min ≤ max, got \(value.canonicalText)")
            }
            return v[0]...v[1]
        }
        func antialias() throws {
            // Accepted for compatibility: PIL images are always antialiased.
            _ = try node("antialias").boolIfPresent()
        }

        switch name {
        case "Resize":
            try accept(["size", "interpolation", "max_size", "antialias"])
            try antialias()
            let sizeNode = node("size")
            let size: ResizeSize
            if let sizeValue = sizeNode.value, case .array(let a) = sizeValue {
                let values = try sizeNode.ints()
                guard (1...2).contains(a.count), values.allSatisfy({ $0 > 0 }) else {
                    throw LinprobeError.config(
                        "\(here): size must be a positive integer, [size] or [height, width], got \(sizeValue.canonicalText)"
                    )
                }
                size = values.count == 1 ? .shorterSide(values[0]) : .exact(height: values[0], width: values[1])
            } else {
                size = .shorterSide(try positive("size"))
            }
            let maxSize = try node("max_size").intIfPresent()
            if let maxSize {
                guard case .shorterSide(let s) = size else {
                    throw LinprobeError.config(
                        "\(here): max_size is only allowed when size is a single number (the shorter side)")
                }
                guard maxSize > s else {
                    throw LinprobeError.config(
                        "\(here): max_size = \(maxSize) must be strictly greater than size = \(s)")
                }
            }
            return .resize(size, maxSize: maxSize, filter: try filter())
        case "CenterCrop":
            try accept(["size"])
            let (h, w) = try squareOrPair("size")
            return .centerCrop(height: h, width: w)
        case "RandomCrop":
            try accept(["size", "padding", "pad_if_needed", "fill", "padding_mode"])
            let padding = item["padding"].value
            guard padding == nil || padding == .null || padding == .int(0),
                try node("pad_if_needed").boolIfPresent() != true
            else {
                throw LinprobeError.config("\(here): padding is not supported (VISSL's benchmarks crop without it)")
            }
            let (h, w) = try squareOrPair("size")
            return .randomCrop(height: h, width: w)
        case "RandomResizedCrop":
            try accept(["size", "scale", "ratio", "interpolation", "antialias"])
            try antialias()
            let (h, w) = try squareOrPair("size")
            return .randomResizedCrop(
                height: h, width: w, scale: try range("scale", default: 0.08...1.0),
                ratio: try range("ratio", default: (3.0 / 4.0)...(4.0 / 3.0)), filter: try filter())
        case "RandomHorizontalFlip":
            try accept(["p"])
            let p = try node("p").doubleIfPresent() ?? 0.5
            guard (0...1).contains(p) else { throw LinprobeError.config("\(here): p must be within 0…1, got \(p)") }
            return .randomHorizontalFlip(p: p)
        case "ToTensor":
            try accept([])
            return .toTensor
        case "ImgPilToRawTensor":
            try accept([])
            return .toRawTensor
        case "ImgPil2LabTensor":
            try accept([])
            return .toLabTensor
        case "Normalize":
            try accept(["mean", "std", "inplace"])
            _ = try node("inplace").boolIfPresent()
            let mean = try node("mean").doubles().map { Float($0) }
            let std = try node("std").doubles().map { Float($0) }
            for (key, v) in [("mean", mean), ("std", std)] where v.count != 1 && v.count != 3 {
                throw LinprobeError.config("\(here): \(key) needs 1 or 3 values (one per RGB channel), got \(v.count)")
            }
            if std.contains(0) {
                throw LinprobeError.config(
                    "\(here): std evaluated to zero after conversion to float32, leading to division by zero")
            }
            return .normalize(mean: mean, std: std)
        default:
            throw LinprobeError.config(
                "\(here): transform '\(name)' is not supported; supported: \(supportedNames.joined(separator: ", "))")
        }
    }
}
