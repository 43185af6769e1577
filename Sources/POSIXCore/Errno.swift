//
// vineyard-csi: POSIXCore
//
// Errno.swift: the error numbers of system calls, typed.

import Glibc

/// A POSIX error number: what a failed system call left in `errno`, and what a FUSE file system
/// answers the kernel with.
///
/// ``syscall(_:)`` throws it; FUSEKit's file system methods throw it and reply it with
/// `fuse_reply_err`. This file is the only place that names the C constants.
public struct Errno: Error, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The raw, positive error number (for example `ENOENT`).
    public var rawValue: Int32

    /// Wraps a raw error number.
    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    /// Wraps a raw error number.
    public init(_ rawValue: Int32) {
        self.rawValue = rawValue
    }

    /// The calling thread's current `errno`.
    public static var current: Errno {
        Errno(rawValue: Glibc.errno)
    }

    /// `strerror` text followed by the C name's number, e.g. `No such file or directory (2)`.
    public var description: String {
        "\(String(cString: strerror(rawValue))) (\(rawValue))"
    }

    // MARK: - Common errors

    /// No such file or directory. The corresponding C error is `ENOENT`.
    public static var noEntry: Errno { Errno(rawValue: ENOENT) }
    /// File exists. The corresponding C error is `EEXIST`.
    public static var exists: Errno { Errno(rawValue: EEXIST) }
    /// Directory not empty. The corresponding C error is `ENOTEMPTY`.
    public static var notEmpty: Errno { Errno(rawValue: ENOTEMPTY) }
    /// Read-only file system. The corresponding C error is `EROFS`.
    public static var readOnlyFileSystem: Errno { Errno(rawValue: EROFS) }
    /// No space left on device. The corresponding C error is `ENOSPC`.
    public static var noSpace: Errno { Errno(rawValue: ENOSPC) }
    /// File name too long. The corresponding C error is `ENAMETOOLONG`.
    public static var nameTooLong: Errno { Errno(rawValue: ENAMETOOLONG) }
    /// Invalid argument. The corresponding C error is `EINVAL`.
    public static var invalid: Errno { Errno(rawValue: EINVAL) }
    /// Not a directory. The corresponding C error is `ENOTDIR`.
    public static var notDirectory: Errno { Errno(rawValue: ENOTDIR) }
    /// Is a directory. The corresponding C error is `EISDIR`.
    public static var isDirectory: Errno { Errno(rawValue: EISDIR) }
    /// Permission denied. The corresponding C error is `EACCES`.
    public static var permissionDenied: Errno { Errno(rawValue: EACCES) }
    /// Operation not permitted. The corresponding C error is `EPERM`.
    public static var notPermitted: Errno { Errno(rawValue: EPERM) }
    /// Input/output error. The corresponding C error is `EIO`.
    public static var io: Errno { Errno(rawValue: EIO) }
    /// Operation not supported. The corresponding C error is `EOPNOTSUPP` (`ENOTSUP`).
    public static var notSupported: Errno { Errno(rawValue: EOPNOTSUPP) }
    /// Function not implemented. The corresponding C error is `ENOSYS`.
    ///
    /// For some requests (flush, fsync, access, create, ...) the kernel remembers `ENOSYS` and
    /// stops sending them, which is what the default implementations rely on.
    public static var notImplemented: Errno { Errno(rawValue: ENOSYS) }
    /// Bad file descriptor (unknown file handle). The corresponding C error is `EBADF`.
    public static var badFileDescriptor: Errno { Errno(rawValue: EBADF) }
    /// Cross-device link. The corresponding C error is `EXDEV`.
    public static var crossDevice: Errno { Errno(rawValue: EXDEV) }
    /// File too large. The corresponding C error is `EFBIG`.
    public static var fileTooLarge: Errno { Errno(rawValue: EFBIG) }
    /// Cannot allocate memory. The corresponding C error is `ENOMEM`.
    public static var noMemory: Errno { Errno(rawValue: ENOMEM) }
    /// Device or resource busy. The corresponding C error is `EBUSY`.
    public static var busy: Errno { Errno(rawValue: EBUSY) }
    /// Resource temporarily unavailable. The corresponding C error is `EAGAIN`.
    public static var tryAgain: Errno { Errno(rawValue: EAGAIN) }
    /// Interrupted. The corresponding C error is `EINTR`.
    public static var interrupted: Errno { Errno(rawValue: EINTR) }
    /// Too many links. The corresponding C error is `EMLINK`.
    public static var tooManyLinks: Errno { Errno(rawValue: EMLINK) }
    /// No data available (e.g. missing extended attribute). The corresponding C error is `ENODATA`.
    public static var noData: Errno { Errno(rawValue: ENODATA) }
    /// Result too large for the buffer. The corresponding C error is `ERANGE`.
    public static var range: Errno { Errno(rawValue: ERANGE) }
    /// Stale file handle. The corresponding C error is `ESTALE`.
    public static var stale: Errno { Errno(rawValue: ESTALE) }
    /// Too many levels of symbolic links. The corresponding C error is `ELOOP`.
    public static var loop: Errno { Errno(rawValue: ELOOP) }
    /// Text file busy (e.g. writing a sealed object). The corresponding C error is `ETXTBSY`.
    public static var textFileBusy: Errno { Errno(rawValue: ETXTBSY) }
    /// Broken pipe: the reading end of a pipe or socket is closed (with `SIGPIPE` ignored, see
    /// ``ProcessSignals``). The corresponding C error is `EPIPE`.
    public static var brokenPipe: Errno { Errno(rawValue: EPIPE) }
    /// Connection reset by peer. The corresponding C error is `ECONNRESET`.
    public static var connectionReset: Errno { Errno(rawValue: ECONNRESET) }
    /// Connection refused. The corresponding C error is `ECONNREFUSED`.
    public static var connectionRefused: Errno { Errno(rawValue: ECONNREFUSED) }
    /// Software caused connection abort (a client gave up before `accept` returned). The
    /// corresponding C error is `ECONNABORTED`.
    public static var connectionAborted: Errno { Errno(rawValue: ECONNABORTED) }
    /// Too many open files in this process. The corresponding C error is `EMFILE`.
    public static var tooManyOpenFiles: Errno { Errno(rawValue: EMFILE) }
    /// Too many open files in the system. The corresponding C error is `ENFILE`.
    public static var tooManyOpenFilesInSystem: Errno { Errno(rawValue: ENFILE) }
    /// No buffer space available. The corresponding C error is `ENOBUFS`.
    public static var noBufferSpace: Errno { Errno(rawValue: ENOBUFS) }
    /// Cannot send after transport endpoint shutdown (a closed store). The corresponding C error
    /// is `ESHUTDOWN`.
    public static var shutDown: Errno { Errno(rawValue: ESHUTDOWN) }
    /// Object is remote (its bytes live on another node's vineyardd). The corresponding C error
    /// is `EREMOTE`.
    public static var remote: Errno { Errno(rawValue: EREMOTE) }
    /// Bad address. The corresponding C error is `EFAULT`.
    public static var badAddress: Errno { Errno(rawValue: EFAULT) }
    /// Transport endpoint is not connected. The corresponding C error is `ENOTCONN`.
    public static var notConnected: Errno { Errno(rawValue: ENOTCONN) }
    /// Protocol error (a peer sent something unexpected). The corresponding C error is `EPROTO`.
    public static var protocolError: Errno { Errno(rawValue: EPROTO) }
    /// Message too long. The corresponding C error is `EMSGSIZE`.
    public static var messageTooLong: Errno { Errno(rawValue: EMSGSIZE) }
}
