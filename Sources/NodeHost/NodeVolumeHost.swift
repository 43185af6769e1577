public import CSIDriver
import FUSEKit
import Glibc
public import Logging
public import SharedMemoryStore
import Synchronization
import VolumeFS

/// Serves volumes as mounted file systems on this node, for either backend: one FUSE session
/// per mounted path, each on a thread of its own, and each volume's `vineyard.sock`.
///
/// What differs between the embedded stores and vineyardds sits in a ``VolumeBackendProvider``
/// each; whether mounts outlive this process is the mounting strategy (``HandoverMounting``
/// when a handover directory is configured, plain libfuse mounts otherwise). vineyardd
/// volumes are always mounted plainly: they are mounted again after a restart.
///
/// Every method may block (mounting, waiting for a session to stop); callers run them on
/// dedicated threads.
public final class NodeVolumeHost: VolumeHost {
    private struct Served: Sendable {
        let session: any ServingSession
        let volume: VolumeDescriptor
        let fileSystem: BackendFileSystem
    }

    private let embedded: EmbeddedStoreProvider
    private let vineyardd: VineyarddProvider
    private let handover: HandoverMounting?
    private let plain = PlainMounting()
    /// The vineyard socket of each served path; `nil` serves none.
    private let sockets: VolumeSockets?
    private let sessions = Mutex<[String: Served]>([:])
    private let logger: Logger

    /// - Parameters:
    ///   - registry: opens the embedded store of each vineyard cluster on first use.
    ///   - selection: where each cluster's vineyardd socket is (cluster mode).
    ///   - directReads: serve read-only opens with `direct_io` (``VolumeFileSystem/directReads``).
    ///   - passthrough: let the kernel serve sealed files from the objects' own files where it
    ///     can (``VolumeFileSystem/fileServing``).
    ///   - socketDirectory: where the host side of each volume's `vineyard.sock` is bound
    ///     (see ``VolumeSockets``); `nil` serves none.
    ///   - handover: keep embedded mounts alive across restarts of this process (and take
    ///     back, now, those an earlier process left); `nil` mounts end with the process.
    public init(
        registry: StoreRegistry, selection: BackendSelection, directReads: Bool, passthrough: Bool = false,
        socketDirectory: String?, handover: HandoverConfiguration?, logger: Logger
    ) {
        let embedded = EmbeddedStoreProvider(registry: registry, directReads: directReads, passthrough: passthrough)
        self.embedded = embedded
        vineyardd = VineyarddProvider(selection: selection)
        self.handover = handover.map { HandoverMounting(configuration: $0, provider: embedded, logger: logger) }
        sockets = socketDirectory.map { VolumeSockets(directory: $0, logger: logger) }
        self.logger = logger
    }

    private func provider(for volume: VolumeDescriptor) -> any VolumeBackendProvider {
        volume.effectiveBackend == .vineyardd ? vineyardd : embedded
    }

    /// Handover applies to backends whose file systems survive this process.
    private func handover(for provider: any VolumeBackendProvider) -> HandoverMounting? {
        provider.survivesRestarts ? handover : nil
    }

    /// FUSE is usable and every vineyardd that serves a mounted volume answers.
    public var isReady: Bool {
        guard FUSEDeviceCheck.isUsable else { return false }
        let volumes = sessions.withLock { $0.values.map(\.volume) }
        return vineyardd.isReady(serving: volumes.filter { $0.effectiveBackend == .vineyardd })
    }

    // MARK: - Mounting

    public func mount(_ volume: VolumeDescriptor, at path: String) throws(VolumeHostError) {
        try FUSEDeviceCheck.require()
        let provider = provider(for: volume)
        let handover = handover(for: provider)
        handover?.discardPrepared(at: path)
        let survival = handover.map { SurvivalFile(path: $0.stateFile(for: path, volumeID: volume.volumeID), resume: false) }
        let fileSystem = try provider.open(volume, survival: survival, withSocket: sockets != nil)
        let session: any ServingSession
        do throws(VolumeHostError) {
            if let handover, let survival {
                session = try handover.start(fileSystem, volume: volume, at: path, stateFile: survival.path)
            } else {
                session = try plain.start(fileSystem, volume: volume, at: path, logger: logger)
            }
        } catch {
            fileSystem.removeStateFile()
            throw error
        }
        sessions.withLock { $0[path] = Served(session: session, volume: volume, fileSystem: fileSystem) }
        do {
            try attachSocket(volume, at: path, provider: provider)
        } catch {
            try? unmount(path: path)
            throw error
        }
        var metadata: Logger.Metadata = [
            "volume": "\(volume.volumeID)", "backend": "\(volume.effectiveBackend)", "path": "\(path)",
        ]
        if let files = Self.settledFileServing(fileSystem) { metadata["files"] = "\(files)" }
        logger.info("serving volume", metadata: metadata)
    }

    /// Who serves the mount's files, once the kernel's INIT (which follows the mount) settled it.
    private static func settledFileServing(_ fileSystem: BackendFileSystem) -> String? {
        for _ in 0..<100 {
            guard let serving = fileSystem.fileServing() else { return nil }
            if serving != FileServing.starting.description { return serving }
            usleep(10_000)
        }
        return fileSystem.fileServing()
    }

    public func fileServing(path: String) -> String? {
        sessions.withLock { $0[path] }?.fileSystem.fileServing()
    }

    /// Serves a mount an earlier plugin left, if it was handed over (embedded volumes only).
    public func resume(_ volume: VolumeDescriptor, at path: String) -> Bool {
        let provider = provider(for: volume)
        guard let handover = handover(for: provider), let resumed = handover.resume(volume, at: path) else { return false }
        sessions.withLock { $0[path] = Served(session: resumed.session, volume: volume, fileSystem: resumed.fileSystem) }
        // The earlier plugin's socket died with it: bind a new one over the placeholder. Pods
        // see it when their mount propagates from the host (HostToContainer); others keep the
        // dead one until they restart.
        if sockets != nil {
            try? FUSEDevice.unmount(path + "/" + VolumeFileSystem.socketFileName)
            do { try attachSocket(volume, at: path, provider: provider) } catch {
                logger.warning("cannot serve the vineyard socket again", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
        return true
    }

    private func attachSocket(_ volume: VolumeDescriptor, at path: String, provider: any VolumeBackendProvider)
        throws(VolumeHostError)
    {
        try sockets?.attach(volume, at: path) { scope, socketPath, advertisedPath throws(VolumeHostError) in
            try provider.socketServer(for: volume, scope: scope, socketPath: socketPath, advertisedPath: advertisedPath)
        }
    }

    public func unmount(path: String) throws(VolumeHostError) {
        sockets?.detach(path: path)
        handover?.discardPrepared(at: path)
        guard let served = sessions.withLock({ $0.removeValue(forKey: path) }) else { return }
        served.session.stop(path: path, logger: logger)
        served.fileSystem.removeStateFile()
    }

    public func isServing(path: String) -> Bool {
        sessions.withLock { $0[path] }?.session.isServing ?? false
    }

    // MARK: - Volumes

    public func statistics(of volume: VolumeDescriptor) -> VolumeStatistics? {
        let mountedCapacity = sessions.withLock { sessions in
            sessions.values.filter { $0.volume.volumeID == volume.volumeID }.map { $0.fileSystem.capacityBytes() }.max()
        }
        return provider(for: volume).statistics(of: volume, mountedCapacity: mountedCapacity)
    }

    public func purge(_ volume: VolumeDescriptor) throws(VolumeHostError) {
        try provider(for: volume).purge(volume)
    }

    public func resize(_ volume: VolumeDescriptor, capacityBytes: Int) throws(VolumeHostError) {
        let fileSystems = sessions.withLock { $0.values.filter { $0.volume.volumeID == volume.volumeID }.map(\.fileSystem) }
        for fileSystem in fileSystems { try fileSystem.resize(capacityBytes) }
    }

    // MARK: - Leaving

    /// At shutdown: hands embedded mounts over to the next plugin when configured, and
    /// unmounts every other mount, so none outlives the process that serves it.
    public func releaseMounts() {
        let handedOver: Set<String>
        if let handover {
            handedOver = Set(sessions.withLock { $0.filter { $0.value.volume.effectiveBackend != .vineyardd }.keys })
            handover.handOverAll()
            sessions.withLock { sessions in for path in handedOver { sessions[path] = nil } }
        } else {
            handedOver = []
        }
        for path in sessions.withLock({ Array($0.keys) }) where !handedOver.contains(path) { try? unmount(path: path) }
        vineyardd.close()
    }

    /// Held mounts no record claimed during recovery: released from the holder and detached.
    public func discardUnclaimed() {
        handover?.discardUnclaimed()
        // Every held mount has taken its writers back by now: blob files of unsealed blobs
        // nobody adopted are what a crash left behind.
        embedded.removeOrphanedBlobFiles()
    }
}
