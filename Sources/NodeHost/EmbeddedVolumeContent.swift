public import CSIDriver
public import SharedMemoryStore

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
