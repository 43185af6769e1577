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
    case create, open, read, write, flush, fsync
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
    private static let installed = Mutex<(any FileOperationObserver)?>(nil)

    /// Replaces the observer; nil stops observing.
    public static func install(_ observer: (any FileOperationObserver)?) {
        installed.withLock { $0 = observer }
    }

    static var observer: (any FileOperationObserver)? { installed.withLock { $0 } }
}
