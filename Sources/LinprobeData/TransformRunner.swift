import Foundation
import LinprobeCodecs
import LinprobeCore

/// Runs a `TransformPipeline` on decoded images, writing CHW float32 tensors into caller
/// buffers. One runner per worker thread (it owns scratch buffers); allocation happens only when
/// an image larger than any before needs bigger scratch space.
///
/// Crops are windows on the current image, not copies; a resize computes only the pixels that
/// later crops keep (the same pixels Pillow computes: its resize is separable and each output
/// pixel depends only on its own coefficients); a flip is applied when pixels are written. The
/// result equals torchvision on PIL step by step, just without the intermediate images.
public final class TransformRunner: @unchecked Sendable {
    public let pipeline: TransformPipeline
    private var resampler = Resampler()
    private let scratch = [ScratchBuffer(), ScratchBuffer(), ScratchBuffer()]
    /// Per channel, 256 entries: the float value of each byte after the tensor steps.
    private let lookup: [Float]
    /// `ImgPil2LabTensor`: pixels become OpenCV's 8-bit Lab before the lookup.
    private let lab: Bool

    public init(pipeline: TransformPipeline) {
        self.pipeline = pipeline
        var lut = [Float](repeating: 0, count: 3 * 256)
        for c in 0..<3 {
            for v in 0..<256 {
                var x: Float = 0
                var converted = false
                for step in pipeline.steps {
                    switch step {
                    case .toTensor:
                        x = Float(v) / Float(255)
                        converted = true
                    case .toRawTensor:
                        x = Float(v)
                        converted = true
                    case .toLabTensor:
                        x = LabColor.tensorValue(channel: c, byte: UInt8(v))
                        converted = true
                    case .normalize(let mean, let std):
                        x = (x - mean[mean.count == 1 ? 0 : c]) / std[std.count == 1 ? 0 : c]
                    default:
                        break
                    }
                }
                lut[c * 256 + v] = converted ? x : Float(v) / Float(255)
            }
        }
        lookup = lut
        lab = pipeline.steps.contains(.toLabTensor)
    }

    /// Applies the pipeline to `image` and writes the `[3, H, W]` tensor to `output`; returns
    /// the shape. Throws (a programmer error at the caller) when `output` is too small.
    @discardableResult
    public func transform(
        _ image: RGBImage, random: inout TransformRandom,
        into output: UnsafeMutableBufferPointer<Float>
    ) throws -> [Int] {
        guard image.width > 0, image.height > 0, image.pixels.count >= image.byteCount else {
            throw LinprobeError(.shapeMismatch, "cannot transform an empty image (\(image.width)×\(image.height))")
        }
        try pipeline.checkMemory(imageWidth: image.width, imageHeight: image.height)
        return try image.pixels.withUnsafeBufferPointer { px in
            guard let pixels = px.baseAddress else {
                throw LinprobeError(
                    .shapeMismatch,
                    "cannot transform an image without pixels (\(image.width)×\(image.height))")
            }
            let input = PixelRegion(base: pixels, width: image.width, height: image.height, rowBytes: image.width * 3)
            var state = runGeometry(input, random: &random)
            let tensorFlip = state.tensorFlip
            let final = materialize(&state, into: 2)
            let w = final.width, h = final.height
            guard output.count >= 3 * w * h, let destination = output.baseAddress else {
                throw LinprobeError(
                    .shapeMismatch, "transform output buffer holds \(output.count) floats, the image needs 3×\(h)×\(w)")
            }
            lookup.withUnsafeBufferPointer { lut in
                let plane = w * h
                for y in 0..<h {
                    let row = final.base + y * final.rowBytes
                    let o = destination + y * w
                    for x in 0..<w {
                        let p = row + 3 * (tensorFlip ? w - 1 - x : x)
                        var (c0, c1, c2) = (p[0], p[1], p[2])
                        if lab { (c0, c1, c2) = LabColor.lab8(r: c0, g: c1, b: c2) }
                        o[x] = lut[Int(c0)]
                        o[plane + x] = lut[256 + Int(c1)]
                        o[2 * plane + x] = lut[512 + Int(c2)]
                    }
                }
            }
            return [3, h, w]
        }
    }

    /// Applies the PIL-stage steps only and returns the image torchvision would hand to
    /// `ToTensor` (for tools and tests; tensor-stage flips are applied too). An empty image when
    /// the input is empty or the images would exceed the memory budget (`checkMemory`).
    public func transformToImage(_ image: RGBImage, random: inout TransformRandom) -> RGBImage {
        guard image.width > 0, image.height > 0,
            (try? pipeline.checkMemory(imageWidth: image.width, imageHeight: image.height)) != nil
        else { return RGBImage() }
        return image.pixels.withUnsafeBufferPointer { px in
            guard let pixels = px.baseAddress else { return RGBImage() }
            let input = PixelRegion(base: pixels, width: image.width, height: image.height, rowBytes: image.width * 3)
            var state = runGeometry(input, random: &random)
            if state.tensorFlip { state.flip.toggle() }
            let final = materialize(&state, into: 2)
            var out = [UInt8](repeating: 0, count: final.width * final.height * 3)
            for y in 0..<final.height {
                for i in 0..<(final.width * 3) { out[y * final.width * 3 + i] = final.base[y * final.rowBytes + i] }
            }
            return RGBImage(width: final.width, height: final.height, rgb: out)
        }
    }

    // MARK: - Geometry

    struct Rect: Equatable {
        var x: Int, y: Int, w: Int, h: Int
        func intersection(_ o: Rect) -> Rect {
            let x0 = max(x, o.x), y0 = max(y, o.y)
            let x1 = min(x + w, o.x + o.w), y1 = min(y + h, o.y + o.h)
            return Rect(x: x0, y: y0, w: max(0, x1 - x0), h: max(0, y1 - y0))
        }
    }

    struct PendingResize {
        var source: Rect
        var width: Int
        var height: Int
        var filter: ResampleFilter
    }

    /// The current image: the window `window` of a virtual image (the materialized `base`, or
    /// `base` resized as `pending` says), zero outside `valid`, mirrored if `flip`.
    struct State {
        var base: PixelRegion
        var baseSlot: Int  // -1: the input image, 0...2: scratch
        var pending: PendingResize?
        var window: Rect
        var valid: Rect
        var flip = false
        var tensorFlip = false
    }

    private func runGeometry(_ input: PixelRegion, random: inout TransformRandom) -> State {
        let full = Rect(x: 0, y: 0, w: input.width, h: input.height)
        var s = State(base: input, baseSlot: -1, pending: nil, window: full, valid: full)
        var converted = false
        for step in pipeline.steps {
            switch step {
            case .resize(let size, let maxSize, let filter):
                let (h, w) = TransformPipeline.resizedSize(
                    height: s.window.h, width: s.window.w, size: size, maxSize: maxSize)
                resize(&s, height: h, width: w, filter: filter)
            case .centerCrop(let ch, let cw):
                centerCrop(&s, height: ch, width: cw)
            case .resizedCrop(let top, let left, let bh, let bw, let h, let w, let filter):
                crop(&s, top: top, left: left, height: bh, width: bw)
                resize(&s, height: h, width: w, filter: filter)
            case .randomResizedCrop(let h, let w, let scale, let ratio, let filter):
                let box = Self.randomResizedCropBox(
                    width: s.window.w, height: s.window.h, scale: scale, ratio: ratio, random: &random)
                crop(&s, top: box.top, left: box.left, height: box.height, width: box.width)
                resize(&s, height: h, width: w, filter: filter)
            case .randomCrop(let h, let w):
                // torchvision's RandomCrop.get_params: top, then left, uniform over the valid offsets.
                let top = random.int(below: s.window.h - h + 1)
                let left = random.int(below: s.window.w - w + 1)
                crop(&s, top: top, left: left, height: h, width: w)
            case .randomHorizontalFlip(let p):
                if random.uniform() < p {
                    if converted { s.tensorFlip.toggle() } else { s.flip.toggle() }
                }
            case .toTensor, .toRawTensor, .toLabTensor:
                converted = true
            case .normalize:
                break
            }
        }
        return s
    }

    private func resize(_ s: inout State, height: Int, width: Int, filter: ResampleFilter) {
        if height == s.window.h && width == s.window.w { return }  // torchvision returns the image as is
        let inBase = Rect(x: 0, y: 0, w: s.base.width, h: s.base.height)
        if s.pending != nil || s.flip || s.valid != s.window || inBase.intersection(s.window) != s.window {
            _ = materialize(&s, into: freeSlot(s))
        }
        s.pending = PendingResize(source: s.window, width: width, height: height, filter: filter)
        s.window = Rect(x: 0, y: 0, w: width, h: height)
        s.valid = s.window
    }

    /// torchvision's `center_crop`: zero padding when the crop is larger, offsets rounded half
    /// to even (Python's `round`).
    private func centerCrop(_ s: inout State, height ch: Int, width cw: Int) {
        if s.flip { _ = materialize(&s, into: freeSlot(s)) }
        if cw > s.window.w || ch > s.window.h {
            let W = s.window.w, H = s.window.h
            let left = cw > W ? (cw - W) / 2 : 0, top = ch > H ? (ch - H) / 2 : 0
            let right = cw > W ? (cw - W + 1) / 2 : 0, bottom = ch > H ? (ch - H + 1) / 2 : 0
            s.window = Rect(x: s.window.x - left, y: s.window.y - top, w: W + left + right, h: H + top + bottom)
            if s.window.w == cw && s.window.h == ch { return }
        }
        let top = Int((Double(s.window.h - ch) / 2.0).rounded(.toNearestOrEven))
        let left = Int((Double(s.window.w - cw) / 2.0).rounded(.toNearestOrEven))
        crop(&s, top: top, left: left, height: ch, width: cw)
    }

    /// PIL's `crop`: a box anywhere; pixels outside the image are zero.
    private func crop(_ s: inout State, top: Int, left: Int, height: Int, width: Int) {
        if s.flip { _ = materialize(&s, into: freeSlot(s)) }
        s.window = Rect(x: s.window.x + left, y: s.window.y + top, w: width, h: height)
        s.valid = s.valid.intersection(s.window)
    }

    private func freeSlot(_ s: State) -> Int { s.baseSlot == 0 ? 1 : 0 }

    /// Computes the current image into scratch slot `slot` (unless it already is a plain view)
    /// and makes it the new base.
    private func materialize(_ s: inout State, into slot: Int) -> PixelRegion {
        let W = s.window.w, H = s.window.h
        let inBase = Rect(x: 0, y: 0, w: s.base.width, h: s.base.height)
        if s.pending == nil && !s.flip && s.valid == s.window && inBase.intersection(s.window) == s.window {
            // Already a plain view of the base: no copy.
            let view = PixelRegion(
                base: s.base.base + s.window.y * s.base.rowBytes + s.window.x * 3,
                width: W, height: H, rowBytes: s.base.rowBytes)
            s.base = view
            s.window = Rect(x: 0, y: 0, w: W, h: H)
            s.valid = s.window
            return view
        }
        let dest = scratch[slot].reserve(W * H * 3)
        let region = s.window.intersection(s.valid)
        if region != s.window { dest.update(repeating: 0, count: W * H * 3) }
        if region.w > 0 && region.h > 0 {
            let origin = dest + ((region.y - s.window.y) * W + (region.x - s.window.x)) * 3
            if let p = s.pending {
                let src = PixelRegion(
                    base: s.base.base + p.source.y * s.base.rowBytes + p.source.x * 3,
                    width: p.source.w, height: p.source.h, rowBytes: s.base.rowBytes)
                resampler.resize(
                    src, outW: p.width, outH: p.height, filter: p.filter,
                    window: (region.x, region.y, region.w, region.h), into: origin, dstRowBytes: W * 3)
            } else {
                for y in 0..<region.h {
                    (origin + y * W * 3).update(
                        from: s.base.base + (region.y + y) * s.base.rowBytes + region.x * 3,
                        count: region.w * 3)
                }
            }
        }
        if s.flip {
            for y in 0..<H {
                var a = dest + y * W * 3, b = dest + (y * W + W - 1) * 3
                while a < b {
                    for c in 0..<3 { swap(&a[c], &b[c]) }
                    a += 3
                    b -= 3
                }
            }
        }
        let view = PixelRegion(base: UnsafePointer(dest), width: W, height: H, rowBytes: W * 3)
        s = State(
            base: view, baseSlot: slot, pending: nil, window: Rect(x: 0, y: 0, w: W, h: H),
            valid: Rect(x: 0, y: 0, w: W, h: H), flip: false, tensorFlip: s.tensorFlip)
        return view
    }

    /// torchvision's `RandomResizedCrop.get_params`, drawing from `random`: ten tries of a random
    /// area fraction in `scale` and log-uniform aspect ratio in `ratio`, else the central crop
    /// clamped to `ratio`.
    public static func randomResizedCropBox(
        width: Int, height: Int, scale: ClosedRange<Double>,
        ratio: ClosedRange<Double>, random: inout TransformRandom
    )
        -> (top: Int, left: Int, height: Int, width: Int)
    {
        let area = Double(height * width)
        let logLow = log(ratio.lowerBound), logHigh = log(ratio.upperBound)
        for _ in 0..<10 {
            let targetArea = area * random.uniform(scale.lowerBound, scale.upperBound)
            let aspect = exp(random.uniform(logLow, logHigh))
            let w = Int((targetArea * aspect).squareRoot().rounded(.toNearestOrEven))
            let h = Int((targetArea / aspect).squareRoot().rounded(.toNearestOrEven))
            if w > 0 && w <= width && h > 0 && h <= height {
                let i = random.int(below: height - h + 1)
                let j = random.int(below: width - w + 1)
                return (i, j, h, w)
            }
        }
        let inRatio = Double(width) / Double(height)
        var w = width, h = height
        if inRatio < ratio.lowerBound {
            h = Int((Double(w) / ratio.lowerBound).rounded(.toNearestOrEven))
        } else if inRatio > ratio.upperBound {
            w = Int((Double(h) * ratio.upperBound).rounded(.toNearestOrEven))
        }
        return ((height - h) / 2, (width - w) / 2, h, w)
    }
}

/// A growable raw byte buffer owned by one runner.
final class ScratchBuffer {
    private(set) var pointer: UnsafeMutablePointer<UInt8>?
    private var capacity = 0

    func reserve(_ count: Int) -> UnsafeMutablePointer<UInt8> {
        if let pointer, count <= capacity { return pointer }
        pointer?.deallocate()
        capacity = max(count, 1)
        let fresh = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
        pointer = fresh
        return fresh
    }

    deinit { pointer?.deallocate() }
}
