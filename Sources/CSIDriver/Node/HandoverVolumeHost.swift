import FDHandover
import Foundation
import FUSEKit
public import Logging
public import SharedMemoryStore
import Synchronization
import VolumeFS

/// Where the node plugin keeps what its mounts need to outlive it.
public struct HandoverConfiguration: Sendable {
    /// Holds the descriptor holder's socket (`fdholder.sock`) and the mounts' inode tables
    /// (`inodes/`). Must survive the plugin (a host directory) and should be tmpfs (`/run`):
    /// nothing in it outlives a reboot, and neither do the mounts.
    public var directory: String
    /// Starts `vineyard-csi-fdholder` (this path) in its own session when no holder answers,
    /// for running without Kubernetes; in a cluster the holder is its own DaemonSet.
    public var holderExecutable: String?

    public init(directory: String, holderExecutable: String? = nil) {
        self.directory = directory
        self.holderExecutable = holderExecutable
    }

    public var holderSocket: String { "\(directory)/fdholder.sock" }
    public var inodeDirectory: String { "\(directory)/inodes" }
}

/// Serves volumes like ``FUSEVolumeHost``, but so that the mounts survive this process: a
/// restart, a crash or an upgrade of the node plugin never breaks a pod's volume.
///
/// - The `/dev/fuse` descriptor of every mount is also held by `vineyard-csi-fdholder`, so the
///   kernel keeps the connection while no plugin serves it; requests wait in its queue.
/// - Each mount's file system mirrors its inode table in a shared file
///   (``VolumeFileSystem/surviving(store:volumeID:quotaBytes:readOnly:stateFile:resume:inodeCapacity:)``),
///   so the next plugin answers for the same inode numbers and carries on half-written files.
/// - At start the host takes every held descriptor back: the file systems are opened first
///   (reclaiming the memory of half-written files before anything else allocates), then each
///   mount is served again by ``resume(_:at:)`` without a new INIT (``HandoverSession``), and
///   the kernel is asked to resend what the previous plugin read but never answered.
/// - ``handOverAll(timeout:)`` (SIGTERM) stops taking requests, finishes those in progress and
///   leaves the mounts to the next plugin.
public final class HandoverVolumeHost: VolumeHost {
    /// What the holder keeps beside each descriptor.
    struct HeldMount: Codable {
        var volume: VolumeDescriptor
        var mountPoint: String
        var stateFile: String
        var initRecord: FUSEInitRecord
    }

    private final class Served: Sendable {
        let session: HandoverSession
        let fileSystem: VolumeFileSystem
        let volume: VolumeDescriptor
        let finished = DispatchSemaphore(value: 0)

        init(session: HandoverSession, fileSystem: VolumeFileSystem, volume: VolumeDescriptor) {
            self.session = session
            self.fileSystem = fileSystem
            self.volume = volume
        }
    }

    /// A held mount whose file system is open, waiting for ``resume(_:at:)``.
    private struct Prepared: Sendable {
        var held: HeldMount
        var fileDescriptor: Int32
        var fileSystem: VolumeFileSystem
    }

    private let registry: StoreRegistry
    private let configuration: HandoverConfiguration
    private let logger: Logger
    /// Statistics, purge and readiness are the same as without handover.
    private let plain: FUSEVolumeHost
    private let sessions = Mutex<[String: Served]>([:])
    private let prepared = Mutex<[String: Prepared]>([:])
    private let holder = Mutex<FDHolderClient?>(nil)
    /// The vineyard socket of each served path; `nil` serves none.
    private let sockets: VolumeSockets?
    /// Read-only opens bypass the page cache (see ``VolumeFileSystem/directReads``).
    private let directReads: Bool

    /// Connects to the holder (starting one if configured) and opens the file system of every
    /// mount it holds, ready for ``resume(_:at:)``.
    /// - Parameter socketDirectory: where the host side of each volume's `vineyard.sock` is
    ///   bound (see ``VolumeSockets``); `nil` for volumes without a socket.
    public init(
        registry: StoreRegistry, configuration: HandoverConfiguration, logger: Logger, socketDirectory: String? = nil,
        directReads: Bool = false
    ) {
        self.registry = registry
        self.configuration = configuration
        self.logger = logger
        self.directReads = directReads
        self.plain = FUSEVolumeHost(registry: registry, logger: logger, directReads: directReads)
        self.sockets = socketDirectory.map { VolumeSockets(directory: $0, logger: logger) }
        try? FileManager.default.createDirectory(atPath: configuration.inodeDirectory, withIntermediateDirectories: true)
        guard let client = connectHolder() else { return }
        holder.withLock { $0 = client }
        let entries: [HeldDescriptor]
        do {
            entries = try client.list()
        } catch {
            logger.error("cannot list the descriptor holder's mounts", metadata: ["error": "\(error)"])
            return
        }
        for entry in entries { prepare(entry) }
        watchHolder()
    }

    /// Gives a restarted holder every mount this process serves (checked every two seconds).
    private func watchHolder() {
        let thread = Thread { [weak self] in
            while let host = self {
                let connected = host.holder.withLock { $0?.isConnected ?? false }
                if !connected && !host.sessions.withLock({ $0.isEmpty }) {
                    try? host.withHolder { _ throws(FDHandoverError) in }
                }
                usleep(2_000_000)
            }
        }
        thread.name = "fdholder watch"
        thread.start()
    }

    /// Opens the file system of one held mount (taking its half-written files back).
    private func prepare(_ entry: HeldDescriptor) {
        let decoded = try? JSONDecoder().decode(HeldMount.self, from: Data(entry.data))
        guard let held = decoded, held.mountPoint == entry.key else {
            logger.error("dropping a held descriptor with unreadable data", metadata: ["key": "\(entry.key)"])
            close(entry.fileDescriptor)
            try? holder.withLock { try $0?.drop(key: entry.key) }
            return
        }
        do {
            let store = try openStore(held.volume)
            let (fileSystem, resumption) = try VolumeFileSystem.surviving(
                store: store, volumeID: held.volume.volumeID, quotaBytes: held.volume.capacityBytes, readOnly: false,
                stateFile: held.stateFile, resume: true)
            prepared.withLock {
                $0[held.mountPoint] = Prepared(held: held, fileDescriptor: entry.fileDescriptor, fileSystem: fileSystem)
            }
            logger.info(
                "took a held mount back",
                metadata: [
                    "volume": "\(held.volume.volumeID)", "path": "\(held.mountPoint)",
                    "inodes": "\(resumption?.inodes ?? 0)", "writers": "\(resumption?.writers ?? 0)",
                    "lostWriters": "\(resumption?.lostWriters ?? 0)",
                ])
        } catch {
            logger.error(
                "cannot reopen the file system of a held mount; it will be mounted again",
                metadata: ["path": "\(held.mountPoint)", "error": "\(error)"])
            close(entry.fileDescriptor)
        }
    }

    public var isReady: Bool { plain.isReady }

    // MARK: - Mounting

    public func mount(_ volume: VolumeDescriptor, at path: String) throws(VolumeHostError) {
        guard access("/dev/fuse", R_OK | W_OK) == 0 else {
            throw VolumeHostError(.unavailable, "/dev/fuse is missing or not readable and writable by this process")
        }
        discardPrepared(at: path)
        let store = try openStore(volume)
        try sockets?.prepare(volume, store: store)
        let stateFile = Self.stateFile(for: path, volumeID: volume.volumeID, in: configuration.inodeDirectory)
        let fileSystem: VolumeFileSystem
        do {
            (fileSystem, _) = try VolumeFileSystem.surviving(
                store: store, volumeID: volume.volumeID, quotaBytes: volume.capacityBytes, readOnly: false,
                stateFile: stateFile, resume: false)
        } catch {
            throw VolumeHostError(.failed, "cannot open the file system of volume \(volume.volumeID): \(error)")
        }
        let options = VolumeFileSystem.recommendedMountOptions(
            volumeID: volume.volumeID, readOnly: false, directReads: directReads)
        let session: HandoverSession
        do throws(FUSEError) {
            let fd = try FUSEDevice.mount(at: path, options: options)
            do throws(FUSEError) {
                session = try HandoverSession(fileSystem: fileSystem, fileDescriptor: fd, mountPoint: path, options: options)
            } catch {
                close(fd)
                try? FUSEDevice.unmount(path)
                throw error
            }
        } catch {
            fileSystem.removeStateFile()
            let kind: VolumeHostError.Kind = error.errno == .notPermitted || error.errno == .permissionDenied ? .unavailable : .failed
            throw VolumeHostError(kind, "cannot mount volume \(volume.volumeID) at \(path): \(error)")
        }
        let held = HeldMount(volume: volume, mountPoint: path, stateFile: stateFile, initRecord: session.initRecord)
        hold(held, fileDescriptor: session.fileDescriptor)
        serve(Served(session: session, fileSystem: fileSystem, volume: volume), at: path)
        do {
            try sockets?.attach(volume, store: store, at: path)
        } catch {
            try? unmount(path: path)
            throw error
        }
    }

    /// Serves a mount an earlier plugin left, if the holder had it: same connection, same
    /// inodes, no INIT; then asks the kernel to resend what the earlier plugin never answered.
    public func resume(_ volume: VolumeDescriptor, at path: String) -> Bool {
        guard let ready = prepared.withLock({ $0.removeValue(forKey: path) }) else { return false }
        guard ready.held.volume.volumeID == volume.volumeID,
            FUSEDevice.fuseMountExists(at: path)
        else {
            close(ready.fileDescriptor)
            try? holder.withLock { try $0?.drop(key: path) }
            return false
        }
        let options = VolumeFileSystem.recommendedMountOptions(
            volumeID: volume.volumeID, readOnly: false, directReads: directReads)
        let session: HandoverSession
        do {
            session = try HandoverSession(
                fileSystem: ready.fileSystem, fileDescriptor: ready.fileDescriptor, mountPoint: path, options: options,
                resuming: ready.held.initRecord)
        } catch {
            logger.error("cannot resume a held mount", metadata: ["path": "\(path)", "error": "\(error)"])
            close(ready.fileDescriptor)
            try? holder.withLock { try $0?.drop(key: path) }
            return false
        }
        serve(Served(session: session, fileSystem: ready.fileSystem, volume: volume), at: path)
        // The earlier plugin's socket died with it: bind a new one over the placeholder. Pods
        // see it when their mount propagates from the host (HostToContainer); others keep the
        // dead one until they restart.
        if let sockets, let store = try? openStore(volume) {
            umount2(path + "/" + VolumeFileSystem.socketFileName, Int32(MNT_DETACH))
            do { try sockets.attach(volume, store: store, at: path) } catch {
                logger.warning("cannot serve the vineyard socket again", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
        if session.initRecord.kernelSupportsResend {
            do { try session.requestResend() } catch {
                logger.warning("FUSE_NOTIFY_RESEND failed", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
        return true
    }

    private func serve(_ served: Served, at path: String) {
        let logger = self.logger
        let thread = Thread {
            do { try served.session.run() } catch {
                logger.error("FUSE session ended with an error", metadata: ["path": "\(path)", "error": "\(error)"])
            }
            served.finished.signal()
        }
        thread.name = "fuse \(served.volume.volumeID)"
        thread.start()
        sessions.withLock { $0[path] = served }
    }

    public func unmount(path: String) throws(VolumeHostError) {
        sockets?.detach(path: path)
        discardPrepared(at: path)
        guard let served = sessions.withLock({ $0.removeValue(forKey: path) }) else { return }
        release(key: path)
        do {
            try served.session.unmount()
        } catch {
            logger.warning("FUSE unmount failed; detaching", metadata: ["path": "\(path)", "error": "\(error)"])
            umount2(path, Int32(MNT_DETACH))
        }
        if served.finished.wait(timeout: .now() + 10) == .timedOut {
            logger.error("FUSE session did not stop within 10 s; aborting the connection", metadata: ["path": "\(path)"])
            try? served.session.abortConnection()
            if served.finished.wait(timeout: .now() + 10) == .timedOut { served.session.stop(timeout: 1) }
        }
        served.fileSystem.removeStateFile()
    }

    public func isServing(path: String) -> Bool {
        sessions.withLock { $0[path] }.map { $0.session.isRunning && $0.session.isMounted } ?? false
    }

    public func statistics(of volume: VolumeDescriptor) -> VolumeStatistics? {
        plain.statistics(of: volume)
    }

    public func purge(_ volume: VolumeDescriptor) throws(VolumeHostError) {
        try plain.purge(volume)
    }

    public func resize(_ volume: VolumeDescriptor, capacityBytes: Int) throws(VolumeHostError) {
        let fileSystems = sessions.withLock { $0.values.filter { $0.volume.volumeID == volume.volumeID }.map(\.fileSystem) }
        try VolumeFileSystem.resize(fileSystems, of: volume, to: capacityBytes)
    }

    // MARK: - Leaving

    /// Stops serving every mount and leaves them to the next plugin (SIGTERM): no new requests
    /// are taken, those in progress are answered, mounts and held descriptors stay.
    ///
    /// - Returns: whether every session stopped within `timeout` seconds.
    @discardableResult
    public func handOverAll(timeout: Double = 10) -> Bool {
        let all = sessions.withLock { sessions in
            defer { sessions = [:] }
            return Array(sessions.values)
        }
        var stopped = true
        for served in all where !served.session.handOver(timeout: timeout) { stopped = false }
        logger.info("handed mounts over", metadata: ["mounts": "\(all.count)", "clean": "\(stopped)"])
        return stopped
    }

    /// Held mounts that ``resume(_:at:)`` did not claim (their stage or publish record is gone):
    /// released from the holder and detached.
    public func discardUnclaimed() {
        for path in prepared.withLock({ Array($0.keys) }) {
            logger.warning("a held mount has no record any more; unmounting it", metadata: ["path": "\(path)"])
            discardPrepared(at: path)
            umount2(path, Int32(MNT_DETACH))
        }
    }

    private func discardPrepared(at path: String) {
        guard let ready = prepared.withLock({ $0.removeValue(forKey: path) }) else { return }
        close(ready.fileDescriptor)
        release(key: path)
        ready.fileSystem.removeStateFile()
    }

    // MARK: - The holder

    /// Gives the holder a duplicate of the mount's descriptor; without a holder the mount works
    /// but does not survive this process.
    private func hold(_ held: HeldMount, fileDescriptor: Int32) {
        guard let data = try? JSONEncoder().encode(held) else { return }
        let bytes = [UInt8](data)
        do {
            try withHolder { client throws(FDHandoverError) in
                try client.put(key: held.mountPoint, data: bytes, fileDescriptor: fileDescriptor)
            }
        } catch {
            logger.warning(
                "the descriptor holder did not take the mount; it will not survive a restart of this plugin",
                metadata: ["path": "\(held.mountPoint)", "error": "\(error)"])
        }
    }

    private func release(key: String) {
        do {
            try withHolder { client throws(FDHandoverError) in try client.drop(key: key) }
        } catch {
            logger.warning("the descriptor holder did not drop a mount", metadata: ["path": "\(key)", "error": "\(error)"])
        }
    }

    /// Runs `body` with the holder, reconnecting once (and giving a new holder every mount this
    /// process serves) when the connection broke.
    private func withHolder(_ body: (FDHolderClient) throws(FDHandoverError) -> Void) throws(FDHandoverError) {
        if let client = holder.withLock({ $0 }) {
            do {
                try body(client)
                return
            } catch {
                holder.withLock { $0 = nil }
            }
        }
        guard let client = connectHolder() else {
            throw FDHandoverError("no descriptor holder at \(configuration.holderSocket)", errno: ECONNREFUSED)
        }
        holder.withLock { $0 = client }
        for (path, served) in sessions.withLock({ $0 }) {
            let held = HeldMount(
                volume: served.volume, mountPoint: path,
                stateFile: Self.stateFile(for: path, volumeID: served.volume.volumeID, in: configuration.inodeDirectory),
                initRecord: served.session.initRecord)
            if let data = try? JSONEncoder().encode(held) {
                try? client.put(key: path, data: [UInt8](data), fileDescriptor: served.session.fileDescriptor)
            }
        }
        try body(client)
    }

    private func connectHolder() -> FDHolderClient? {
        let socket = configuration.holderSocket
        if let client = try? FDHolderClient(socketPath: socket) { return client }
        guard let executable = configuration.holderExecutable else {
            logger.warning("no descriptor holder answers; mounts will not survive a restart", metadata: ["socket": "\(socket)"])
            return nil
        }
        do {
            try Self.spawnHolder(executable, socket: socket)
        } catch {
            logger.error("cannot start the descriptor holder", metadata: ["executable": "\(executable)", "error": "\(error)"])
            return nil
        }
        for _ in 0..<200 {
            if let client = try? FDHolderClient(socketPath: socket) {
                logger.info("started the descriptor holder", metadata: ["socket": "\(socket)"])
                return client
            }
            usleep(10_000)
        }
        logger.error("the descriptor holder did not start listening", metadata: ["socket": "\(socket)"])
        return nil
    }

    /// Starts the holder in a session of its own (it must outlive this process and its
    /// process group), with stdin/stdout on /dev/null and stderr inherited.
    static func spawnHolder(_ executable: String, socket: String) throws(FDHandoverError) {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(0x80))  // POSIX_SPAWN_SETSID
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        let argv = [executable, "--socket", socket]
        var cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) }
        cArguments.append(nil)
        defer { for argument in cArguments { free(argument) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, cArguments, environ)
        guard result == 0 else { throw FDHandoverError("posix_spawn \(executable)", errno: result) }
        // Reap it if it exits while we live (another holder already listening).
        let child = pid
        Thread {
            var status: Int32 = 0
            waitpid(child, &status, 0)
        }.start()
    }

    // MARK: - Helpers

    /// The inode-table file of the mount at `path`.
    static func stateFile(for path: String, volumeID: String, in directory: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in path.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return "\(directory)/\(volumeID)-\(String(hash, radix: 16)).inodes"
    }

    private func openStore(_ volume: VolumeDescriptor) throws(VolumeHostError) -> ObjectStore {
        do {
            return try registry.store(namespace: volume.cluster.namespace, name: volume.cluster.name)
        } catch {
            throw VolumeHostError(.failed, "cannot open the store of vineyard cluster \(volume.cluster): \(error)")
        }
    }
}
