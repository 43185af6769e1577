import CSIDriver
import FUSEKit
import SharedMemoryStore
import Synchronization
import StoreBackend
import VineyardSocket
import VolumeFS

/// The vineyardds of vineyard deployments (cluster mode): ``VineyarddFileSystem`` over one
/// connection per deployment socket, and a `vineyard.sock` that relays to vineyardd within
/// the volume's scope. Files of a volume are its names under `<volume id>/`.
final class VineyarddProvider: VolumeBackendProvider {
    private let selection: BackendSelection
    /// One connection per deployment socket, shared by the file systems of its volumes.
    private let connections = Mutex<[String: VineyarddConnection]>([:])

    init(selection: BackendSelection) {
        self.selection = selection
    }

    var survivesRestarts: Bool { false }

    /// Every vineyardd that serves a mounted volume answers.
    func isReady(serving volumes: [VolumeDescriptor]) -> Bool {
        Set(volumes.map { selection.socketPath(for: $0.cluster) }).allSatisfy { connection(socketPath: $0).isReachable }
    }

    func open(_ volume: VolumeDescriptor, survival: SurvivalFile?, withSocket: Bool) throws(VolumeHostError)
        -> BackendFileSystem
    {
        let connection = connection(for: volume)
        guard connection.isReachable else {
            throw VolumeHostError(.unavailable, "vineyardd of cluster \(volume.cluster) does not answer at \(connection.socketPath)")
        }
        let fileSystem: VineyarddFileSystem
        do {
            fileSystem = try VineyarddFileSystem(
                connection: connection, volumeID: volume.volumeID, readOnly: false, capacityBytes: volume.capacityBytes)
        } catch {
            throw VolumeHostError(.failed, "cannot open the file system of volume \(volume.volumeID): \(error)")
        }
        return BackendFileSystem(
            fileSystem: fileSystem,
            mountOptions: VineyarddFileSystem.recommendedMountOptions(volumeID: volume.volumeID, readOnly: false),
            capacityBytes: { fileSystem.capacityBytes },
            resize: { (capacityBytes: Int) throws(VolumeHostError) in fileSystem.resize(capacityBytes: capacityBytes) },
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
        let connection = connection(for: volume)
        guard let status = try? connection.status(),
            let (names, named) = try? VolumeFileSystem.namedContents(
                backend: VineyarddBackend(connection: connection), volumeID: volume.volumeID)
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
            try VineyarddBackend(connection: connection(for: volume)).purgeVolume(volume.volumeID)
        } catch {
            throw VolumeHostError(.failed, "cannot delete the objects of volume \(volume.volumeID) from vineyardd: \(error)")
        }
    }

    func close() {
        connections.withLock { connections in
            for connection in connections.values { connection.close() }
            connections = [:]
        }
    }

    private func connection(for volume: VolumeDescriptor) -> VineyarddConnection {
        connection(socketPath: selection.socketPath(for: volume.cluster))
    }

    private func connection(socketPath: String) -> VineyarddConnection {
        connections.withLock { connections in
            if let existing = connections[socketPath] { return existing }
            let created = VineyarddConnection(socketPath: socketPath)
            connections[socketPath] = created
            return created
        }
    }
}
