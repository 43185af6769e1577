/// The trees of names behind volumes and snapshots, where the controller can reach them.
///
/// Snapshots and clones copy names, never bytes: a snapshot's tree binds the same sealed objects
/// as its volume's tree did, and writing a file afterwards binds a new object to the volume's
/// name only. The controller reaches the trees only when it runs beside the store (the
/// embedded store lives in the node plugin's process: `--mode all`); without one it does not
/// offer snapshots or clones.
public protocol VolumeContentStore: Sendable {
    /// Binds the snapshot's tree to the objects the volume's tree names now.
    /// - Returns: the bytes the snapshot shares.
    func snapshot(volumeID: String, as snapshotID: String, cluster: ClusterReference) throws(VolumeContentError) -> Int

    /// Starts a new volume's tree as a copy of a snapshot's or another volume's tree.
    /// - Returns: the bytes the new volume shares.
    func populate(volumeID: String, from source: ContentSource, cluster: ClusterReference) throws(VolumeContentError) -> Int

    /// Removes a volume's or snapshot's tree; objects no other tree names are freed.
    func remove(treeOf id: String, cluster: ClusterReference) throws(VolumeContentError)

    /// The trees whose ids start with `idPrefix`, in every store on this node.
    func trees(withIDPrefix idPrefix: String) -> [(id: String, cluster: ClusterReference)]
}

public struct VolumeContentError: Error, CustomStringConvertible, Sendable {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
