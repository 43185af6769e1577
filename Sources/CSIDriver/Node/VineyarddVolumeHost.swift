import Foundation
import FUSEKit
public import Logging
import SharedMemoryStore
import StoreBackend
import Synchronization
import VolumeFS

/// Serves volumes whose backend is a vineyard deployment's vineyardd (cluster mode): one FUSE
/// session per path over ``VineyarddFileSystem``, and the volume's own `vineyard.sock` (see
/// ``VolumeSockets``) relaying to vineyardd within the volume's scope: a vineyard client of the
/// volume sees the volume's names and objects only, and maps vineyardd's memory itself.
/// Files of the volume are its names under `<volume id>/`.
public final class VineyarddVolumeHost: VolumeHost {
    private struct Served: Sendable {
        let served: ServedFUSESession
        let volume: VolumeDescriptor
        let fileSystem: VineyarddFileSystem
    }

    private let selection: BackendSelection
    private let logger: Logger
    private let sockets: VolumeSockets?
    private let sessions = Mutex<[String: Served]>([:])
    /// One connection per deployment socket, shared by the file systems of its volumes.
    private let connections = Mutex<[String: VineyarddConnection]>([:])

    /// - Parameter socketDirectory: where the host side of each volume's `vineyard.sock` is
    ///   bound; `nil` serves no socket.
    public init(selection: BackendSelection, logger: Logger, socketDirectory: String? = nil) {
        self.selection = selection
        self.logger = logger
        self.sockets = socketDirectory.map { VolumeSockets(directory: $0, logger: logger) }
    }

    /// FUSE usable, and every vineyardd that serves a mounted volume answers.
    public var isReady: Bool {
        guard FUSEDeviceCheck.isUsable else { return false }
        return unreachableSockets().isEmpty
    }

    /// The sockets of mounted volumes' vineyardds that do not answer now.
    public func unreachableSockets() -> [String] {
        let inUse = Set(sessions.withLock { $0.values.map { selection.socketPath(for: $0.volume.cluster) } })
        return inUse.sorted().filter { !connection(socketPath: $0).isReachable }
    }

    private func connection(socketPath: String) -> VineyarddConnection {
        connections.withLock { connections in
            if let existing = connections[socketPath] { return existing }
            let created = VineyarddConnection(socketPath: socketPath)
            connections[socketPath] = created
            return created
        }
    }

    private func connection(for volume: VolumeDescriptor) -> VineyarddConnection {
        connection(socketPath: selection.socketPath(for: volume.cluster))
    }

    public func mount(_ volume: VolumeDescriptor, at path: String) throws(VolumeHostError) {
        try FUSEDeviceCheck.require()
        let connection = connection(for: volume)
        guard connection.isReachable else {
            throw VolumeHostError(
                .unavailable, "vineyardd of cluster \(volume.cluster) does not answer at \(connection.socketPath)")
        }
        let fileSystem: VineyarddFileSystem
        do {
            fileSystem = try VineyarddFileSystem(
                connection: connection, volumeID: volume.volumeID, readOnly: false, capacityBytes: volume.capacityBytes)
        } catch {
            throw VolumeHostError(.failed, "cannot open the file system of volume \(volume.volumeID): \(error)")
        }
        let options = VineyarddFileSystem.recommendedMountOptions(volumeID: volume.volumeID, readOnly: false)
        let served = try ServedFUSESession.start(fileSystem, at: path, options: options, volume: volume, logger: logger)
        // The file system shows a placeholder `vineyard.sock`; the volume's socket goes on it.
        if let sockets {
            do throws(VolumeHostError) {
                try sockets.attach(volume, vineyarddSocket: connection.socketPath, at: path)
            } catch {
                served.stop(path: path, logger: logger)
                throw error
            }
        }
        sessions.withLock { $0[path] = Served(served: served, volume: volume, fileSystem: fileSystem) }
        logger.info(
            "serving volume from vineyardd",
            metadata: ["volume": "\(volume.volumeID)", "cluster": "\(volume.cluster)", "socket": "\(connection.socketPath)", "path": "\(path)"])
    }

    public func unmount(path: String) throws(VolumeHostError) {
        guard let entry = sessions.withLock({ $0.removeValue(forKey: path) }) else { return }
        sockets?.detach(path: path)
        entry.served.stop(path: path, logger: logger)
    }

    public func isServing(path: String) -> Bool {
        sessions.withLock { $0[path] }?.served.isServing ?? false
    }

    /// Bytes are the volume's capacity and the bytes of its named objects (vineyardd's memory
    /// when it has no capacity, as ephemeral volumes may not); inodes are the volume's names.
    public func statistics(of volume: VolumeDescriptor) -> VolumeStatistics? {
        let connection = connection(for: volume)
        guard let status = try? connection.status(),
            let (names, named) = try? VolumeFileSystem.namedContents(
                backend: VineyarddBackend(connection: connection), volumeID: volume.volumeID)
        else { return nil }
        let limit = Int(status["memory_limit"]?.int64Value ?? 0)
        let used = Int(status["memory_usage"]?.int64Value ?? 0)
        let capacity = sessions.withLock { sessions in
            sessions.values.filter { $0.volume.volumeID == volume.volumeID }.map(\.fileSystem.capacityBytes).max()
        } ?? volume.capacityBytes
        let total = capacity > 0 ? capacity : limit
        let usedBytes = capacity > 0 ? min(named, total) : min(used, total)
        let available = max(0, min(total - usedBytes, limit - used))
        let usedInodes = names + 1  // and the root
        return VolumeStatistics(
            totalBytes: total, usedBytes: usedBytes, availableBytes: available,
            totalInodes: usedInodes + FUSEVolumeHost.reportedFreeInodes, usedInodes: usedInodes,
            availableInodes: FUSEVolumeHost.reportedFreeInodes)
    }

    public func purge(_ volume: VolumeDescriptor) throws(VolumeHostError) {
        do {
            try VolumeFileSystem.purge(backend: VineyarddBackend(connection: connection(for: volume)), volumeID: volume.volumeID)
        } catch {
            throw VolumeHostError(.failed, "cannot delete the objects of volume \(volume.volumeID) from vineyardd: \(error)")
        }
    }

    /// Raises the quota of every mounted file system of the volume (the node plugin records
    /// the capacity, so a restart mounts it with the new one).
    public func resize(_ volume: VolumeDescriptor, capacityBytes: Int) throws(VolumeHostError) {
        for entry in sessions.withLock({ Array($0.values) }) where entry.volume.volumeID == volume.volumeID {
            entry.fileSystem.resize(capacityBytes: capacityBytes)
        }
    }

    public func unmountAll() {
        for path in sessions.withLock({ Array($0.keys) }) { try? unmount(path: path) }
        connections.withLock { connections in
            for connection in connections.values { connection.close() }
            connections = [:]
        }
    }
}
