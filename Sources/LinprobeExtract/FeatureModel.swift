import Foundation
import LinprobeTrunk

/// What the streaming engine needs from a network: fixed input size, one flattened output per
/// stored layer, and a batched forward pass writing into caller buffers.
///
/// `FeatureExtractor` (the ResNet trunk with its pool ops) is the production model; tests use
/// cheap models to exercise ordering, resumption and failure paths.
public protocol FeatureModel: AnyObject {
    /// Input tensor height and width (3 channels, NCHW).
    var inputHeight: Int { get }
    var inputWidth: Int { get }
    /// Flattened length of each output, in store layer order.
    var outputDimensions: [Int] { get }
    /// Runs `count` images (`count × 3 × H × W` floats) and writes output k of image i to
    /// `destinations[k] + i · outputDimensions[k]`.
    func forward(input: UnsafePointer<Float>, count: Int, destinations: [UnsafeMutablePointer<Float>]) throws
}

extension FeatureExtractor: FeatureModel {
    public var outputDimensions: [Int] { outputs.map(\.dimension) }

    public func forward(input: UnsafePointer<Float>, count: Int, destinations: [UnsafeMutablePointer<Float>]) throws {
        try forward(input: input, count: count, height: inputHeight, width: inputWidth, destinations: destinations)
    }
}
