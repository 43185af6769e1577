/// Routes each volume to the host of its backend: the node's embedded store (with or
/// without mount handover) or the vineyard deployment's vineyardd (cluster mode).
public final class BackendVolumeHost: VolumeHost {
    private let embedded: any VolumeHost
    private let vineyardd: VineyarddVolumeHost

    public init(embedded: any VolumeHost, vineyardd: VineyarddVolumeHost) {
        self.embedded = embedded
        self.vineyardd = vineyardd
    }

    private func host(for volume: VolumeDescriptor) -> any VolumeHost {
        volume.effectiveBackend == .vineyardd ? vineyardd : embedded
    }

    /// Not ready when FUSE is unusable or a vineyardd that serves mounted volumes is down.
    public var isReady: Bool { embedded.isReady && vineyardd.isReady }

    public func mount(_ volume: VolumeDescriptor, at path: String) throws(VolumeHostError) {
        try host(for: volume).mount(volume, at: path)
    }

    public func unmount(path: String) throws(VolumeHostError) {
        if vineyardd.isServing(path: path) { try vineyardd.unmount(path: path) } else { try embedded.unmount(path: path) }
    }

    public func isServing(path: String) -> Bool {
        vineyardd.isServing(path: path) || embedded.isServing(path: path)
    }

    public func statistics(of volume: VolumeDescriptor) -> VolumeStatistics? {
        host(for: volume).statistics(of: volume)
    }

    public func purge(_ volume: VolumeDescriptor) throws(VolumeHostError) {
        try host(for: volume).purge(volume)
    }

    public func resize(_ volume: VolumeDescriptor, capacityBytes: Int) throws(VolumeHostError) {
        try host(for: volume).resize(volume, capacityBytes: capacityBytes)
    }

    /// Only embedded mounts are handed over across restarts; vineyardd volumes are mounted again.
    public func resume(_ volume: VolumeDescriptor, at path: String) -> Bool {
        volume.effectiveBackend == .vineyardd ? false : embedded.resume(volume, at: path)
    }
}
