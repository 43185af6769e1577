import Foundation
import FUSEKit
public import Logging
public import SharedMemoryStore
import Synchronization
import VolumeFS

/// Serves each staged volume as a FUSE file system over its cluster's embedded store.
///
/// One ``FUSESession`` per mounted path, each running libfuse's multithreaded loop on a thread
/// of its own; stores are opened once per vineyard cluster and shared by its volumes.
public final class FUSEVolumeHost: VolumeHost {
    private final class ServedSession: Sendable {
        let session: FUSESession
        let volume: VolumeDescriptor
        let fileSystem: VolumeFileSystem
        /// Signalled when the session loop returns.
        let finished = DispatchSemaphore(value: 0)

        init(session: FUSESession, volume: VolumeDescriptor, fileSystem: VolumeFileSystem) {
            self.session = session
            self.volume = volume
            self.fileSystem = fileSystem
        }
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

    public var isReady: Bool { access("/dev/fuse", R_OK | W_OK) == 0 }

    public func mount(_ volume: VolumeDescriptor, at path: String) throws(VolumeHostError) {
        guard access("/dev/fuse", F_OK) == 0 else {
            throw VolumeHostError(.unavailable, "/dev/fuse does not exist: load the fuse module and pass /dev/fuse to the driver")
        }
        guard access("/dev/fuse", R_OK | W_OK) == 0 else {
            throw VolumeHostError(.unavailable, "/dev/fuse is not readable and writable by this process (run the node plugin privileged)")
        }
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
        let session: FUSESession
        do {
            session = try FUSESession(fileSystem: fileSystem, mountPoint: path, options: options)
        } catch {
            let kind: VolumeHostError.Kind = error.errno == .notPermitted || error.errno == .permissionDenied ? .unavailable : .failed
            throw VolumeHostError(kind, "cannot mount volume \(volume.volumeID) at \(path): \(error)")
        }
        let served = ServedSession(session: session, volume: volume, fileSystem: fileSystem)
        let logger = self.logger
        let thread = Thread {
            do { try session.run() } catch {
                logger.error("FUSE session ended with an error", metadata: ["path": "\(path)", "error": "\(error)"])
            }
            served.finished.signal()
        }
        thread.name = "fuse \(volume.volumeID)"
        thread.start()
        sessions.withLock { $0[path] = served }
        do {
            try sockets?.attach(volume, store: store, at: path)
        } catch {
            try? unmount(path: path)
            throw error
        }
    }

    public func unmount(path: String) throws(VolumeHostError) {
        sockets?.detach(path: path)
        guard let served = sessions.withLock({ $0.removeValue(forKey: path) }) else { return }
        do {
            try served.session.unmount()
        } catch {
            logger.warning("FUSE unmount failed; detaching", metadata: ["path": "\(path)", "error": "\(error)"])
            umount2(path, Int32(MNT_DETACH))
            served.session.requestExit()
        }
        // Pods holding files open keep a lazily detached mount alive; abort the connection so
        // the loop returns and those files answer ENOTCONN instead of hanging.
        if served.finished.wait(timeout: .now() + 10) == .timedOut {
            logger.error("FUSE session loop did not stop within 10 s; aborting the connection", metadata: ["path": "\(path)"])
            try? served.session.abortConnection()
            _ = served.finished.wait(timeout: .now() + 10)
        }
    }

    public func isServing(path: String) -> Bool {
        sessions.withLock { $0[path] }.map { $0.session.isRunning && $0.session.isMounted } ?? false
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
            try VolumeFileSystem.purge(store: store, volumeID: volume.volumeID)
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
