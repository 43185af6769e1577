import Foundation
import FUSEKit
public import Logging
public import SharedMemoryStore
import Synchronization
import StoreBackend
import VolumeFS

/// Serves each staged volume as a FUSE file system over its cluster's embedded store.
///
/// One ``FUSESession`` per mounted path, each running libfuse's multithreaded loop on a thread
/// of its own; stores are opened once per vineyard cluster and shared by its volumes.
public final class FUSEVolumeHost: VolumeHost {
    private struct ServedSession: Sendable {
        let served: ServedFUSESession
        let volume: VolumeDescriptor
        let fileSystem: VolumeFileSystem
    }

    /// Free inodes reported by NodeGetVolumeStats: files cost metadata, not inode slots.
    static let reportedFreeInodes = 1 << 20

    private let registry: StoreRegistry
    private let sessions = Mutex<[String: ServedSession]>([:])
    private let logger: Logger
    /// The vineyard socket of each served path; `nil` serves none.
    private let sockets: VolumeSockets?
    /// Read-only opens bypass the page cache (see ``VolumeFileSystem/directReads``).
    private let directReads: Bool

    /// - Parameters:
    ///   - registry: opens the store of each vineyard cluster on first use.
    ///   - socketDirectory: where the host side of each volume's `vineyard.sock` is bound
    ///     (see ``VolumeSockets``); `nil` for volumes without a socket.
    ///   - directReads: serve read-only opens with `direct_io` (``VolumeFileSystem/directReads``).
    public init(registry: StoreRegistry, logger: Logger, socketDirectory: String? = nil, directReads: Bool = false) {
        self.registry = registry
        self.logger = logger
        self.directReads = directReads
        self.sockets = socketDirectory.map { VolumeSockets(directory: $0, logger: logger) }
    }

    public var isReady: Bool { FUSEDeviceCheck.isUsable }

    public func mount(_ volume: VolumeDescriptor, at path: String) throws(VolumeHostError) {
        try FUSEDeviceCheck.require()
        let store = try openStore(volume)
        try sockets?.prepare(volume, store: store)
        let fileSystem: VolumeFileSystem
        do {
            fileSystem = try VolumeFileSystem(store: store, volumeID: volume.volumeID, quotaBytes: volume.capacityBytes, readOnly: false)
        } catch {
            throw VolumeHostError(.failed, "cannot open the file system of volume \(volume.volumeID): \(error)")
        }
        let options = VolumeFileSystem.recommendedMountOptions(
            volumeID: volume.volumeID, readOnly: false, directReads: directReads)
        let served = try ServedFUSESession.start(fileSystem, at: path, options: options, volume: volume, logger: logger)
        sessions.withLock { $0[path] = ServedSession(served: served, volume: volume, fileSystem: fileSystem) }
        do {
            try sockets?.attach(volume, store: store, at: path)
        } catch {
            try? unmount(path: path)
            throw error
        }
    }

    public func unmount(path: String) throws(VolumeHostError) {
        sockets?.detach(path: path)
        guard let entry = sessions.withLock({ $0.removeValue(forKey: path) }) else { return }
        entry.served.stop(path: path, logger: logger)
    }

    public func isServing(path: String) -> Bool {
        sessions.withLock { $0[path] }?.served.isServing ?? false
    }

    public func statistics(of volume: VolumeDescriptor) -> VolumeStatistics? {
        guard let store = try? openStore(volume) else { return nil }
        let used = VolumeFileSystem.usage(store: store, volumeID: volume.volumeID)
        let storeUsage = store.usage
        let total = volume.capacityBytes > 0 ? min(volume.capacityBytes, storeUsage.capacity) : storeUsage.capacity
        let available = max(0, min(total - used.bytes, storeUsage.bytesAvailable))
        let usedInodes = used.files + used.directories
        // The store has no inode table to run out of; report a fixed headroom of free inodes.
        return VolumeStatistics(
            totalBytes: total, usedBytes: used.bytes, availableBytes: available,
            totalInodes: usedInodes + Self.reportedFreeInodes, usedInodes: usedInodes,
            availableInodes: Self.reportedFreeInodes)
    }

    public func purge(_ volume: VolumeDescriptor) throws(VolumeHostError) {
        let store = try openStore(volume)
        do {
            try VolumeFileSystem.purge(backend: EmbeddedBackend(store: store), volumeID: volume.volumeID)
        } catch {
            throw VolumeHostError(.failed, "cannot delete the objects of volume \(volume.volumeID): \(error)")
        }
    }

    public func resize(_ volume: VolumeDescriptor, capacityBytes: Int) throws(VolumeHostError) {
        let fileSystems = sessions.withLock { $0.values.filter { $0.volume.volumeID == volume.volumeID }.map(\.fileSystem) }
        try VolumeFileSystem.resize(fileSystems, of: volume, to: capacityBytes)
    }

    /// Unmounts every session; used at shutdown so no mount outlives the process that serves it.
    public func unmountAll() {
        for path in sessions.withLock({ Array($0.keys) }) { try? unmount(path: path) }
    }

    private func openStore(_ volume: VolumeDescriptor) throws(VolumeHostError) -> ObjectStore {
        do {
            return try registry.store(namespace: volume.cluster.namespace, name: volume.cluster.name)
        } catch {
            throw VolumeHostError(.failed, "cannot open the store of vineyard cluster \(volume.cluster): \(error)")
        }
    }
}
