import Foundation
import FUSEKit
import Logging

/// A FUSE session serving one mount point from a thread of its own, until unmounted.
///
/// Shared by the volume hosts of both backends: starting libfuse's loop, and stopping it so
/// that no mount or thread outlives the call, even when pods hold files open.
final class ServedFUSESession: Sendable {
    let session: FUSESession
    /// Signalled when the session loop returns.
    private let finished = DispatchSemaphore(value: 0)

    private init(session: FUSESession) {
        self.session = session
    }

    /// Mounts `fileSystem` at `path` and starts serving it.
    static func start(
        _ fileSystem: any FileSystem, at path: String, options: MountOptions, volume: VolumeDescriptor, logger: Logger
    ) throws(VolumeHostError) -> ServedFUSESession {
        let session: FUSESession
        do {
            session = try FUSESession(fileSystem: fileSystem, mountPoint: path, options: options)
        } catch {
            let kind: VolumeHostError.Kind = error.errno == .notPermitted || error.errno == .permissionDenied ? .unavailable : .failed
            throw VolumeHostError(kind, "cannot mount volume \(volume.volumeID) at \(path): \(error)")
        }
        let served = ServedFUSESession(session: session)
        let thread = Thread {
            do { try session.run() } catch {
                logger.error("FUSE session ended with an error", metadata: ["path": "\(path)", "error": "\(error)"])
            }
            served.finished.signal()
        }
        thread.name = "fuse \(volume.volumeID)"
        thread.start()
        return served
    }

    var isServing: Bool { session.isRunning && session.isMounted }

    /// Unmounts and waits for the loop to return.
    func stop(path: String, logger: Logger) {
        do {
            try session.unmount()
        } catch {
            logger.warning("FUSE unmount failed; detaching", metadata: ["path": "\(path)", "error": "\(error)"])
            umount2(path, Int32(MNT_DETACH))
            session.requestExit()
        }
        // Pods holding files open keep a lazily detached mount alive; abort the connection so
        // the loop returns and those files answer ENOTCONN instead of hanging.
        if finished.wait(timeout: .now() + 10) == .timedOut {
            logger.error("FUSE session loop did not stop within 10 s; aborting the connection", metadata: ["path": "\(path)"])
            try? session.abortConnection()
            _ = finished.wait(timeout: .now() + 10)
        }
    }
}

/// The checks both hosts make before mounting.
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
