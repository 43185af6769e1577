import FoundationEssentials
import Glibc

/// What the controller remembers about one snapshot.
public struct SnapshotRecord: DurableRecord, Equatable {
    /// Driver-assigned id (`snap-` + 32 hex digits); the record's file name and the name tree
    /// of the snapshot's objects in the store.
    public var id: String
    /// The CO's name for the snapshot; CreateSnapshot is idempotent on it.
    public var name: String
    public var sourceVolumeID: String
    /// The source volume's vineyard cluster: the store that holds the shared objects.
    public var cluster: ClusterReference
    /// The node whose embedded store holds the objects, when the source volume is pinned.
    public var node: String?
    /// Bytes of the objects the snapshot names (shared with the source, not copied).
    public var sizeBytes: Int
    /// Capacity of the source volume when the snapshot was taken; the least a restored volume
    /// gets.
    public var sourceCapacityBytes: Int
    public var createdAt: Date

    public var key: String { id }

    static let idPrefix = "snap-"

    static func newID() -> String { RecordID.random(prefix: idPrefix) }

    static func isWellFormedID(_ text: String) -> Bool { RecordID.isWellFormed(text, prefix: idPrefix) }
}

/// Where a new volume's tree comes from (CSI's `VolumeContentSource`).
public enum ContentSource: Codable, Equatable, Sendable {
    case snapshot(id: String)
    case volume(id: String)
}
