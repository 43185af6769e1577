public import CSIDriver
import StoreBackend
import VolumeFS

/// ``VolumeContentStore`` over the vineyardds of vineyard deployments (cluster mode): a
/// volume's tree is its names under `<volume id>/` in its cluster's vineyardd.
///
/// vineyardd keeps no snapshots, so only removal is offered; the controller refuses snapshots
/// and clones of such volumes before it gets here.
public struct VineyarddVolumeContent: VolumeContentStore {
    private let selection: BackendSelection

    /// - Parameter selection: where each cluster's vineyardd socket is.
    public init(selection: BackendSelection) {
        self.selection = selection
    }

    public func snapshot(volumeID: String, as snapshotID: String, cluster: ClusterReference) throws(VolumeContentError) -> Int {
        throw VolumeContentError("vineyardd of cluster \(cluster) keeps no snapshots")
    }

    public func populate(volumeID: String, from source: ContentSource, cluster: ClusterReference) throws(VolumeContentError)
        -> Int
    {
        throw VolumeContentError("vineyardd of cluster \(cluster) keeps no snapshots to populate volume \(volumeID) from")
    }

    public func remove(treeOf id: String, cluster: ClusterReference) throws(VolumeContentError) {
        let socket = selection.socketPath(for: cluster)
        let connection = VineyarddConnection(socketPath: socket)
        defer { connection.close() }
        do {
            try VineyarddBackend(connection: connection).purgeVolume(id)
        } catch {
            throw VolumeContentError("cannot delete the objects of \(id) from vineyardd at \(socket): \(error)")
        }
    }

    public func trees(withIDPrefix idPrefix: String) -> [(id: String, cluster: ClusterReference)] { [] }
}

extension VineyarddBackend {
    /// Deletes everything of a volume in vineyardd: its names and what they name, then the
    /// objects stamped with it that no name refers to (the copies migrated to the nodes that
    /// read them, objects put through its socket without a name).
    func purgeVolume(_ volumeID: String) throws {
        try VolumeFileSystem.purge(backend: self, volumeID: volumeID)
        try deleteObjects(stampedWith: VolumeFileSystem.ownerMetadataKey, value: volumeID)
    }
}
