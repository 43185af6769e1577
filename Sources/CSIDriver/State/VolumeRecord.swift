import Foundation

/// What the controller remembers about one volume.
public struct VolumeRecord: DurableRecord, Equatable {
    /// Driver-assigned id (`vol-` + 32 hex digits); the record's file name.
    public var id: String
    /// The CO's name for the volume; CreateVolume is idempotent on it.
    public var name: String
    public var capacityBytes: Int
    public var cluster: ClusterReference
    /// The parameters CreateVolume was called with, kept to detect incompatible repeats.
    public var parameters: [String: String]
    /// The node the volume is pinned to, when the CO asked for topology.
    public var node: String?
    /// Nodes the volume is controller-published to, with the readonly flag of each.
    public var publishedNodes: [String: Bool]
    public var createdAt: Date

    public var key: String { id }

    static let idPrefix = "vol-"

    static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        return idPrefix + hex(high) + hex(low)
    }

    /// Whether `text` has the shape of an id this driver hands out.
    static func isWellFormedID(_ text: String) -> Bool {
        guard text.hasPrefix(idPrefix) else { return false }
        let digits = text.dropFirst(idPrefix.count)
        return digits.count == 32 && digits.allSatisfy(\.isHexDigit)
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
