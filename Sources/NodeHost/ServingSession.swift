import CSIDriver
import Dispatch
import FoundationEssentials
import Glibc
import FUSEKit
import Logging

/// One mount being served from a thread of its own, until stopped.
protocol ServingSession: AnyObject, Sendable {
    /// The loop runs and the mount is in place.
    var isServing: Bool { get }

    /// Unmounts and waits for the loop to return, so no mount or thread outlives the call,
    /// even when pods hold files open. Called on a dedicated thread: it may wait seconds.
    func stop(path: String, logger: Logger)
}

/// The end of a session loop, awaited by a blocking ``wait(seconds:)`` on the thread that
/// stops the session (never on the cooperative pool).
final class LoopCompletion: Sendable {
    private let done = DispatchSemaphore(value: 0)

    func finish() { done.signal() }

    /// - Returns: whether the loop ended within `seconds`.
    func wait(seconds: Double) -> Bool { done.wait(timeout: .now() + seconds) == .success }

    /// Runs `loop` on a new thread named `name`, logging how it ended.
    static func run(named name: String, path: String, logger: Logger, _ loop: @escaping @Sendable () throws -> Void)
        -> LoopCompletion
    {
        let completion = LoopCompletion()
        do {
            try DetachedThread.start(name: name) {
                do { try loop() } catch {
                    logger.error("FUSE session ended with an error", metadata: ["path": "\(path)", "error": "\(error)"])
                }
                completion.finish()
            }
        } catch {
            logger.error("cannot start the FUSE session's thread", metadata: ["path": "\(path)", "error": "\(error)"])
            completion.finish()
        }
        return completion
    }
}

/// Plain mounting: libfuse mounts and serves; the mount ends with this process.
struct PlainMounting: Sendable {
    func start(_ fileSystem: BackendFileSystem, volume: VolumeDescriptor, at path: String, logger: Logger)
        throws(VolumeHostError) -> any ServingSession
    {
        let session: FUSESession
        do {
            session = try FUSESession(fileSystem: fileSystem.fileSystem, mountPoint: path, options: fileSystem.mountOptions)
        } catch {
            throw VolumeHostError(Self.kind(of: error), "cannot mount volume \(volume.volumeID) at \(path): \(error)")
        }
        let completion = LoopCompletion.run(named: "fuse \(volume.volumeID)", path: path, logger: logger) {
            try session.run()
        }
        return PlainSession(session: session, completion: completion)
    }

    /// Mounting is not permitted to this process (no CAP_SYS_ADMIN): the node is unavailable,
    /// not the volume broken.
    static func kind(of error: FUSEError) -> VolumeHostError.Kind {
        error.errno == .notPermitted || error.errno == .permissionDenied ? .unavailable : .failed
    }
}

private final class PlainSession: ServingSession {
    let session: FUSESession
    let completion: LoopCompletion

    init(session: FUSESession, completion: LoopCompletion) {
        self.session = session
        self.completion = completion
    }

    var isServing: Bool { session.isRunning && session.isMounted }

    func stop(path: String, logger: Logger) {
        do {
            try session.unmount()
        } catch {
            logger.warning("FUSE unmount failed; detaching", metadata: ["path": "\(path)", "error": "\(error)"])
            try? FUSEDevice.unmount(path)
            session.requestExit()
        }
        // Pods holding files open keep a lazily detached mount alive; abort the connection so
        // the loop returns and those files answer ENOTCONN instead of hanging.
        if !completion.wait(seconds: 10) {
            logger.error("FUSE session loop did not stop within 10 s; aborting the connection", metadata: ["path": "\(path)"])
            try? session.abortConnection()
            _ = completion.wait(seconds: 10)
        }
    }
}

/// The checks made before mounting.
enum FUSEDeviceCheck {
    static var isUsable: Bool { access("/dev/fuse", R_OK | W_OK) == 0 }

    static func require() throws(VolumeHostError) {
        guard access("/dev/fuse", F_OK) == 0 else {
            throw VolumeHostError(.unavailable, "/dev/fuse does not exist: load the fuse module and pass /dev/fuse to the driver")
        }
        guard isUsable else {
            throw VolumeHostError(.unavailable, "/dev/fuse is not readable and writable by this process (run the node plugin privileged)")
        }
    }
}
