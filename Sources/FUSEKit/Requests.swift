//
// vineyard-csi: FUSEKit
//
// Values describing an incoming request.

import Glibc

/// Who issued a request (`struct fuse_ctx`). For writes from the page cache (writeback) the
/// fields are not meaningful.
public struct RequestContext: Hashable, Sendable {
    public var uid: UInt32
    public var gid: UInt32
    /// Thread id of the calling process (0 for kernel-internal requests).
    public var pid: Int32
    /// Umask of the caller. Already applied to create/mkdir modes unless `FUSE_CAP_DONT_MASK`.
    public var umask: UInt32

    public init(uid: UInt32 = 0, gid: UInt32 = 0, pid: Int32 = 0, umask: UInt32 = 0o022) {
        self.uid = uid
        self.gid = gid
        self.pid = pid
        self.umask = umask
    }
}

/// `open(2)` flags as seen by open and create.
public struct OpenFlags: OptionSet, Hashable, Sendable {
    public var rawValue: Int32

    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    /// The access mode bits.
    public enum AccessMode: Sendable, Hashable {
        case readOnly
        case writeOnly
        case readWrite
    }

    public var accessMode: AccessMode {
        switch rawValue & O_ACCMODE {
        case O_WRONLY: return .writeOnly
        case O_RDWR: return .readWrite
        default: return .readOnly
        }
    }

    /// Whether the file was opened for writing (write-only or read-write).
    public var isWritable: Bool {
        accessMode != .readOnly
    }

    /// Whether the file was opened for reading (read-only or read-write).
    public var isReadable: Bool {
        accessMode != .writeOnly
    }

    public static var writeOnly: OpenFlags { OpenFlags(rawValue: O_WRONLY) }
    public static var readWrite: OpenFlags { OpenFlags(rawValue: O_RDWR) }
    public static var create: OpenFlags { OpenFlags(rawValue: O_CREAT) }
    public static var exclusive: OpenFlags { OpenFlags(rawValue: O_EXCL) }
    /// Only seen by open when ``FUSECapabilities/atomicOpenTruncate`` is enabled; otherwise the
    /// kernel truncates with a setattr before open.
    public static var truncate: OpenFlags { OpenFlags(rawValue: O_TRUNC) }
    public static var append: OpenFlags { OpenFlags(rawValue: O_APPEND) }
    public static var nonBlocking: OpenFlags { OpenFlags(rawValue: O_NONBLOCK) }
    public static var sync: OpenFlags { OpenFlags(rawValue: O_SYNC) }
    public static var directIO: OpenFlags { OpenFlags(rawValue: 0o40000) }  // O_DIRECT on Linux
}

/// Flags of `renameat2(2)`, passed through unchanged.
public struct RenameFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32

    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    /// Fail with ``Errno/exists`` if the target exists (`RENAME_NOREPLACE`).
    public static let noReplace = RenameFlags(rawValue: 1 << 0)
    /// Atomically swap source and target; both must exist (`RENAME_EXCHANGE`).
    public static let exchange = RenameFlags(rawValue: 1 << 1)
    /// Leave a whiteout at the source (`RENAME_WHITEOUT`, overlayfs).
    public static let whiteout = RenameFlags(rawValue: 1 << 2)
}

/// The `mode` argument of `access(2)`; empty means an existence check (`F_OK`).
public struct AccessMask: OptionSet, Hashable, Sendable {
    public var rawValue: Int32

    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    public static let read = AccessMask(rawValue: 4)  // R_OK
    public static let write = AccessMask(rawValue: 2)  // W_OK
    public static let execute = AccessMask(rawValue: 1)  // X_OK
}

/// The changes a setattr request asks for; `nil` fields are left alone.
public struct SetAttributes: Hashable, Sendable {
    /// A new access or modification time.
    public enum TimeChange: Hashable, Sendable {
        /// The current time (`UTIME_NOW`); the file system picks the clock.
        case now
        /// An explicit time.
        case time(Timespec)
    }

    /// New permission bits (`chmod`), already reduced to `0o7777`.
    public var mode: UInt32?
    public var uid: UInt32?
    public var gid: UInt32?
    /// New size (`truncate`/`ftruncate`, and `open(O_TRUNC)` without atomic truncation).
    public var size: UInt64?
    public var accessTime: TimeChange?
    public var modificationTime: TimeChange?
    /// Explicit change time (only sent with `FUSE_SET_ATTR_CTIME`).
    public var changeTime: Timespec?
    /// The raw `to_set` mask (`FUSE_SET_ATTR_*`), for bits not modelled above.
    public var rawMask: Int32

    public init(
        mode: UInt32? = nil,
        uid: UInt32? = nil,
        gid: UInt32? = nil,
        size: UInt64? = nil,
        accessTime: TimeChange? = nil,
        modificationTime: TimeChange? = nil,
        changeTime: Timespec? = nil,
        rawMask: Int32 = 0
    ) {
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.accessTime = accessTime
        self.modificationTime = modificationTime
        self.changeTime = changeTime
        self.rawMask = rawMask
    }
}
