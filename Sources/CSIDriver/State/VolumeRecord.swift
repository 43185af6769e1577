import FoundationEssentials
import Glibc

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
    /// What the volume's tree started as (CreateVolume's volume_content_source), if anything.
    public var contentSource: ContentSource?
    /// Where its objects live; `nil` in records written before cluster mode means embedded.
    public var backend: VolumeBackend?

    public var key: String { id }

    static let idPrefix = "vol-"

    static func newID() -> String { RecordID.random(prefix: idPrefix) }

    /// Whether `text` has the shape of an id this driver hands out.
    static func isWellFormedID(_ text: String) -> Bool { RecordID.isWellFormed(text, prefix: idPrefix) }
}

/// Ids the driver hands out: a kind prefix and 128 random bits in hex. The prefixes keep the
/// store's name trees of volumes and snapshots apart.
enum RecordID {
    static func random(prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        return prefix + hex(generator.next() as UInt64) + hex(generator.next() as UInt64)
    }

    static func isWellFormed(_ text: String, prefix: String) -> Bool {
        guard text.hasPrefix(prefix) else { return false }
        let digits = text.dropFirst(prefix.count)
        return digits.count == 32 && digits.allSatisfy(\.isHexDigit)
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
