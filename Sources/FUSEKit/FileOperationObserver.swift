//
// vineyard-csi: FUSEKit
//
// Telling a process-wide observer about every FUSE request answered, for metrics.

import Synchronization

/// The FUSE requests FUSEKit dispatches to a ``FileSystem`` and answers, named after the low-level
/// operation. `forget`, `release` and `releasedir` are not among them: the kernel does not wait
/// for their answer.
public enum FileOperation: String, CaseIterable, Sendable {
    case lookup, getattr, setattr, readlink, mknod, mkdir, unlink, rmdir, symlink, rename, link
    case create, open, read, write, flush, fsync, fallocate
    case opendir, readdir, readdirplus, fsyncdir, statfs, access
}

/// Receives one call per FUSE request answered by any session of this process.
///
/// Called on the libfuse worker thread that answered, after the reply was sent: it must be cheap
/// and must not block (no locks held for long, no I/O).
public protocol FileOperationObserver: Sendable {
    /// - Parameters:
    ///   - operation: the request.
    ///   - bytes: bytes transferred by a read or write (0 for other requests and for errors).
    ///   - duration: from the request's arrival at FUSEKit to its reply.
    ///   - error: the errno the request was answered with, nil on success.
    func fileOperationCompleted(_ operation: FileOperation, bytes: Int, duration: Duration, error: Errno?)
}

/// The observer of this process's FUSE requests: one for all sessions, installed by the
/// executable (the library has no metrics backend of its own).
public enum FileOperationObservation {
    private final class Installed: Sendable {
        let observer: any FileOperationObserver
        init(_ observer: any FileOperationObserver) { self.observer = observer }
    }

    /// Read on every request: a lock-free load, no lock shared by the serving threads.
    private static let installed = AtomicLazyReference<Installed>()

    /// Installs the observer of this process, once: the first one stays.
    ///
    /// - Returns: whether `observer` is the one installed.
    @discardableResult
    public static func install(_ observer: any FileOperationObserver) -> Bool {
        let candidate = Installed(observer)
        return installed.storeIfNil(candidate) === candidate
    }

    static var observer: (any FileOperationObserver)? { installed.load()?.observer }
}
