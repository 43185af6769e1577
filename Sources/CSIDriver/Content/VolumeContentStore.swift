public import SharedMemoryStore

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

/// ``VolumeContentStore`` over the node's embedded stores, one per vineyard cluster (the same
/// ``StoreRegistry`` the node plugin's FUSE volumes use, so both see one store).
public struct EmbeddedVolumeContent: VolumeContentStore {
    private let registry: StoreRegistry

    public init(registry: StoreRegistry) {
        self.registry = registry
    }

    public func snapshot(volumeID: String, as snapshotID: String, cluster: ClusterReference) throws(VolumeContentError) -> Int {
        try copy(from: volumeID, to: snapshotID, cluster: cluster)
    }

    public func populate(volumeID: String, from source: ContentSource, cluster: ClusterReference) throws(VolumeContentError)
        -> Int
    {
        switch source {
        case .snapshot(let id), .volume(let id): return try copy(from: id, to: volumeID, cluster: cluster)
        }
    }

    public func remove(treeOf id: String, cluster: ClusterReference) throws(VolumeContentError) {
        let store = try open(cluster)
        do {
            try store.removeNames(withPrefix: id + "/")
        } catch {
            throw VolumeContentError("cannot remove the objects of \(id) from the store of \(cluster): \(error)")
        }
    }

    public func trees(withIDPrefix idPrefix: String) -> [(id: String, cluster: ClusterReference)] {
        registry.existingKeys().flatMap { key -> [(id: String, cluster: ClusterReference)] in
            guard let store = try? registry.store(namespace: key.namespace, name: key.name) else { return [] }
            let cluster = ClusterReference(namespace: key.namespace, name: key.name)
            // Names are `<tree id>/<path>`: the ids are the first components.
            let ids = Set(store.names(withPrefix: idPrefix).compactMap { name, _ in
                name.split(separator: "/", maxSplits: 1).first.map(String.init)
            })
            return ids.sorted().map { (id: $0, cluster: cluster) }
        }
    }

    private func copy(from source: String, to target: String, cluster: ClusterReference) throws(VolumeContentError) -> Int {
        let store = try open(cluster)
        do {
            return try store.copyNames(withPrefix: source + "/", to: target + "/").bytes
        } catch {
            throw VolumeContentError("cannot share the objects of \(source) with \(target) in the store of \(cluster): \(error)")
        }
    }

    private func open(_ cluster: ClusterReference) throws(VolumeContentError) -> ObjectStore {
        do {
            return try registry.store(namespace: cluster.namespace, name: cluster.name)
        } catch {
            throw VolumeContentError("cannot open the store of vineyard cluster \(cluster): \(error)")
        }
    }
}
