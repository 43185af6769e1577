import CSIDriver
import FDHandover
import FoundationEssentials
import Glibc
import FUSEKit
import Logging
import POSIXCore
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

/// Mounting so that mounts survive this process: a restart, a crash or an upgrade of the node
/// plugin never breaks a pod's volume.
///
/// - The `/dev/fuse` descriptor of every mount is also held by `vineyard-csi-fdholder`, so the
///   kernel keeps the connection while no plugin serves it; requests wait in its queue.
/// - Each mount's file system mirrors its inode table in a shared file
///   (``VolumeFileSystem/surviving(store:volumeID:quotaBytes:readOnly:stateFile:resume:inodeCapacity:)``),
///   so the next plugin answers for the same inode numbers and carries on half-written files.
/// - At start every held descriptor is taken back: the file systems are opened first
///   (reclaiming the memory of half-written files before anything else allocates), then each
///   mount is served again by ``resume(_:at:logger:)`` without a new INIT (``HandoverSession``),
///   and the kernel is asked to resend what the previous plugin read but never answered.
/// - ``handOverAll(timeout:)`` (SIGTERM) stops taking requests, finishes those in progress and
///   leaves the mounts to the next plugin.
final class HandoverMounting: Sendable {
    /// What the holder keeps beside each descriptor.
    struct HeldMount: Codable {
        var volume: VolumeDescriptor
        var mountPoint: String
        var stateFile: String
        var initRecord: FUSEInitRecord
    }

    /// A held mount whose file system is open, waiting for ``resume(_:at:logger:)``.
    private struct Prepared: Sendable {
        var held: HeldMount
        var fileDescriptor: Int32
        var fileSystem: BackendFileSystem
    }

    let configuration: HandoverConfiguration
    private let logger: Logger
    private let holder: FDHolderLink
    /// What this process serves, given to a holder that restarted.
    private let served = Mutex<[String: HandoverServed]>([:])
    private let prepared = Mutex<[String: Prepared]>([:])

    /// Connects to the holder (starting one if configured) and opens the file system of every
    /// mount it holds, ready for ``resume(_:at:logger:)``.
    init(configuration: HandoverConfiguration, provider: EmbeddedStoreProvider, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        try? FileManager.default.createDirectory(atPath: configuration.inodeDirectory, withIntermediateDirectories: true)
        holder = FDHolderLink(socket: configuration.holderSocket, executable: configuration.holderExecutable, logger: logger)
        // Without a holder now, mounts are not handed over: nothing to take back or watch.
        guard holder.isConnected else { return }
        for entry in holder.list() { prepare(entry, provider: provider) }
        watchHolder()
    }

    /// The inode-table file of the mount at `path`.
    func stateFile(for path: String, volumeID: String) -> String {
        // Unpadded hex: the names earlier plugins gave the files they hand over.
        "\(configuration.inodeDirectory)/\(volumeID)-\(String(PathHash(path).value, radix: 16)).inodes"
    }

    // MARK: - Serving

    /// Mounts `fileSystem` at `path` through a descriptor the holder also keeps, and serves it.
    func start(_ fileSystem: BackendFileSystem, volume: VolumeDescriptor, at path: String, stateFile: String)
        throws(VolumeHostError) -> any ServingSession
    {
        let session: HandoverSession
        do throws(FUSEError) {
            let fd = try FUSEDevice.mount(at: path, options: fileSystem.mountOptions)
            do throws(FUSEError) {
                session = try HandoverSession(
                    fileSystem: fileSystem.fileSystem, fileDescriptor: fd, mountPoint: path, options: fileSystem.mountOptions)
            } catch {
                close(fd)
                try? FUSEDevice.unmount(path)
                throw error
            }
        } catch {
            throw VolumeHostError(PlainMounting.kind(of: error), "cannot mount volume \(volume.volumeID) at \(path): \(error)")
        }
        let held = HeldMount(volume: volume, mountPoint: path, stateFile: stateFile, initRecord: session.initRecord)
        hold(held, fileDescriptor: session.fileDescriptor)
        return serve(session, held: held)
    }

    /// Serves a mount an earlier plugin left, if the holder had it: same connection, same
    /// inodes, no INIT; then asks the kernel to resend what the earlier plugin never answered.
    func resume(_ volume: VolumeDescriptor, at path: String) -> (session: any ServingSession, fileSystem: BackendFileSystem)? {
        guard let ready = prepared.withLock({ $0.removeValue(forKey: path) }) else { return nil }
        guard ready.held.volume.volumeID == volume.volumeID, FUSEDevice.fuseMountExists(at: path) else {
            close(ready.fileDescriptor)
            release(key: path)
            return nil
        }
        let session: HandoverSession
        do {
            session = try HandoverSession(
                fileSystem: ready.fileSystem.fileSystem, fileDescriptor: ready.fileDescriptor, mountPoint: path,
                options: ready.fileSystem.mountOptions, resuming: ready.held.initRecord)
        } catch {
            logger.error("cannot resume a held mount", metadata: ["path": "\(path)", "error": "\(error)"])
            close(ready.fileDescriptor)
            release(key: path)
            return nil
        }
        let serving = serve(session, held: ready.held)
        if session.initRecord.kernelSupportsResend {
            do { try session.requestResend() } catch {
                logger.warning("FUSE_NOTIFY_RESEND failed", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
        return (serving, ready.fileSystem)
    }

    private func serve(_ session: HandoverSession, held: HeldMount) -> HandoverServed {
        let path = held.mountPoint
        let completion = LoopCompletion.run(named: "fuse \(held.volume.volumeID)", path: path, logger: logger) {
            try session.run()
        }
        let serving = HandoverServed(session: session, held: held, completion: completion, owner: self)
        served.withLock { $0[path] = serving }
        return serving
    }

    // MARK: - Leaving

    /// Stops serving every mount and leaves them to the next plugin (SIGTERM): no new requests
    /// are taken, those in progress are answered, mounts and held descriptors stay.
    ///
    /// - Returns: whether every session stopped within `timeout` seconds.
    @discardableResult
    func handOverAll(timeout: Double = 10) -> Bool {
        let all = served.withLock { served in
            defer { served = [:] }
            return Array(served.values)
        }
        var stopped = true
        for serving in all where !serving.session.handOver(timeout: timeout) { stopped = false }
        logger.info("handed mounts over", metadata: ["mounts": "\(all.count)", "clean": "\(stopped)"])
        return stopped
    }

    /// Held mounts that ``resume(_:at:logger:)`` did not claim (their stage or publish record
    /// is gone): released from the holder and detached.
    func discardUnclaimed() {
        for path in prepared.withLock({ Array($0.keys) }) {
            logger.warning("a held mount has no record any more; unmounting it", metadata: ["path": "\(path)"])
            discardPrepared(at: path)
            try? FUSEDevice.unmount(path)
        }
    }

    func discardPrepared(at path: String) {
        guard let ready = prepared.withLock({ $0.removeValue(forKey: path) }) else { return }
        close(ready.fileDescriptor)
        release(key: path)
        ready.fileSystem.removeStateFile()
    }

    /// Forgets a mount that stops for good: the holder drops its descriptor.
    fileprivate func stopped(_ path: String) {
        served.withLock { _ = $0.removeValue(forKey: path) }
        release(key: path)
    }

    // MARK: - The holder

    /// Opens the file system of one held mount (taking its half-written files back).
    private func prepare(_ entry: HeldDescriptor, provider: EmbeddedStoreProvider) {
        let decoded = try? JSONDecoder().decode(HeldMount.self, from: Data(entry.data))
        guard let held = decoded, held.mountPoint == entry.key else {
            logger.error("dropping a held descriptor with unreadable data", metadata: ["key": "\(entry.key)"])
            close(entry.fileDescriptor)
            release(key: entry.key)
            return
        }
        do {
            let fileSystem = try provider.open(
                held.volume, survival: SurvivalFile(path: held.stateFile, resume: true), withSocket: false)
            prepared.withLock {
                $0[held.mountPoint] = Prepared(held: held, fileDescriptor: entry.fileDescriptor, fileSystem: fileSystem)
            }
            logger.info(
                "took a held mount back",
                metadata: fileSystem.resumed.merging(["volume": "\(held.volume.volumeID)", "path": "\(held.mountPoint)"]) { $1 })
        } catch {
            logger.error(
                "cannot reopen the file system of a held mount; it will be mounted again",
                metadata: ["path": "\(held.mountPoint)", "error": "\(error)"])
            close(entry.fileDescriptor)
        }
    }

    /// Gives a restarted holder every mount this process serves (checked every two seconds).
    private func watchHolder() {
        try? DetachedThread.start(name: "fdholder watch") { [weak self] in
            while let mounting = self {
                if !mounting.holder.isConnected && !mounting.served.withLock({ $0.isEmpty }) {
                    try? mounting.withHolder { _ throws(FDHandoverError) in }
                }
                usleep(2_000_000)
            }
        }
    }

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

    /// Runs `body` with the holder; a reconnected holder first gets every mount served here.
    private func withHolder(_ body: (FDHolderClient) throws(FDHandoverError) -> Void) throws(FDHandoverError) {
        try holder.withHolder(
            refill: { client in
                for serving in served.withLock({ Array($0.values) }) {
                    if let data = try? JSONEncoder().encode(serving.held) {
                        try? client.put(key: serving.held.mountPoint, data: [UInt8](data), fileDescriptor: serving.session.fileDescriptor)
                    }
                }
            }, body)
    }
}

/// A mount served through a descriptor the holder keeps too.
final class HandoverServed: ServingSession {
    let session: HandoverSession
    let held: HandoverMounting.HeldMount
    private let completion: LoopCompletion
    private weak let owner: HandoverMounting?

    init(session: HandoverSession, held: HandoverMounting.HeldMount, completion: LoopCompletion, owner: HandoverMounting) {
        self.session = session
        self.held = held
        self.completion = completion
        self.owner = owner
    }

    var isServing: Bool { session.isRunning && session.isMounted }

    func stop(path: String, logger: Logger) {
        owner?.stopped(path)
        do {
            try session.unmount()
        } catch {
            logger.warning("FUSE unmount failed; detaching", metadata: ["path": "\(path)", "error": "\(error)"])
            try? FUSEDevice.unmount(path)
        }
        if !completion.wait(seconds: 10) {
            logger.error("FUSE session did not stop within 10 s; aborting the connection", metadata: ["path": "\(path)"])
            try? session.abortConnection()
            if !completion.wait(seconds: 10) { session.stop(timeout: 1) }
        }
    }
}
