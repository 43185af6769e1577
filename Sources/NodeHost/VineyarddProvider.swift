import CSIDriver
import FUSEKit
import SharedMemoryStore
import Synchronization
import StoreBackend
import VineyardSocket
import VolumeFS

/// The vineyardds of vineyard deployments (cluster mode): ``VolumeFileSystem`` over one
/// ``VineyarddBackend`` (one connection) per deployment socket, and a `vineyard.sock` that
/// relays to vineyardd within the volume's scope. Files of a volume are its names under
/// `<volume id>/`.
final class VineyarddProvider: VolumeBackendProvider {
    private let selection: BackendSelection
    /// One backend per deployment socket, shared by the file systems of its volumes.
    private let backends = Mutex<[String: VineyarddBackend]>([:])

    init(selection: BackendSelection) {
        self.selection = selection
    }

    var survivesRestarts: Bool { BackendCapabilities.vineyardd.contains(.restartAdoption) }

    /// Every vineyardd that serves a mounted volume answers.
    func isReady(serving volumes: [VolumeDescriptor]) -> Bool {
        Set(volumes.map { selection.socketPath(for: $0.cluster) }).allSatisfy { backend(socketPath: $0).connection.isReachable }
    }

    func open(_ volume: VolumeDescriptor, survival: SurvivalFile?, withSocket: Bool) throws(VolumeHostError)
        -> BackendFileSystem
    {
        let backend = backend(for: volume)
        guard backend.connection.isReachable else {
            throw VolumeHostError(
                .unavailable, "vineyardd of cluster \(volume.cluster) does not answer at \(backend.connection.socketPath)")
        }
        let fileSystem: VolumeFileSystem
        do {
            if withSocket {
                try VolumeFileSystem.ensureSocketPlaceholder(backend: backend, volumeID: volume.volumeID)
                try VolumeFileSystem.ensureVineyardConfig(backend: backend, volumeID: volume.volumeID)
            }
            fileSystem = try VolumeFileSystem(
                backend: backend, volumeID: volume.volumeID, quotaBytes: volume.capacityBytes, readOnly: false)
        } catch {
            throw VolumeHostError(.failed, "cannot open the file system of volume \(volume.volumeID): \(error)")
        }
        let volumeID = volume.volumeID
        return BackendFileSystem(
            fileSystem: fileSystem,
            mountOptions: VolumeFileSystem.recommendedMountOptions(
                volumeID: volumeID, readOnly: false, backend: backend.capabilities),
            capacityBytes: { fileSystem.quotaBytes },
            resize: { (capacityBytes: Int) throws(VolumeHostError) in
                do { try fileSystem.resize(quotaBytes: capacityBytes) } catch {
                    throw VolumeHostError(.failed, "cannot resize volume \(volumeID): \(error)")
                }
            },
            removeStateFile: {})
    }

    func socketServer(for volume: VolumeDescriptor, scope: VolumeScope, socketPath: String, advertisedPath: String)
        throws(VolumeHostError) -> VineyardSocketServer
    {
        do {
            return try VineyardSocketServer(
                backend: VineyarddBackend(socketPath: selection.socketPath(for: volume.cluster)), scope: scope,
                socketPath: socketPath, advertisedSocket: advertisedPath)
        } catch {
            throw VolumeHostError(.failed, "cannot serve the vineyard socket of volume \(volume.volumeID): \(error)")
        }
    }

    /// Bytes are the volume's capacity and the bytes of its named objects (vineyardd's memory
    /// when it has no capacity, as ephemeral volumes may not); inodes are the volume's names.
    func statistics(of volume: VolumeDescriptor, mountedCapacity: Int?) -> VolumeStatistics? {
        let backend = backend(for: volume)
        guard let status = try? backend.connection.status(),
            let (names, named) = try? VolumeFileSystem.namedContents(backend: backend, volumeID: volume.volumeID)
        else { return nil }
        let limit = Int(status["memory_limit"]?.int64Value ?? 0)
        let used = Int(status["memory_usage"]?.int64Value ?? 0)
        let capacity = mountedCapacity ?? volume.capacityBytes
        let total = capacity > 0 ? capacity : limit
        let usedBytes = capacity > 0 ? min(named, total) : min(used, total)
        let available = max(0, min(total - usedBytes, limit - used))
        return VolumeStatistics(totalBytes: total, usedBytes: usedBytes, availableBytes: available, usedInodes: names + 1)
    }

    func purge(_ volume: VolumeDescriptor) throws(VolumeHostError) {
        do {
            try VolumeFileSystem.purge(backend: backend(for: volume), volumeID: volume.volumeID)
        } catch {
            throw VolumeHostError(.failed, "cannot delete the objects of volume \(volume.volumeID) from vineyardd: \(error)")
        }
    }

    func close() {
        backends.withLock { backends in
            for backend in backends.values { backend.connection.close() }
            backends = [:]
        }
    }

    private func backend(for volume: VolumeDescriptor) -> VineyarddBackend {
        backend(socketPath: selection.socketPath(for: volume.cluster))
    }

    private func backend(socketPath: String) -> VineyarddBackend {
        backends.withLock { backends in
            if let existing = backends[socketPath] { return existing }
            let created = VineyarddBackend(socketPath: socketPath)
            backends[socketPath] = created
            return created
        }
    }
}
