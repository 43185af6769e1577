//
// vineyard-csi: FUSEKit
//

internal import CFUSE

/// Connection capabilities (`FUSE_CAP_*`), negotiated in the INIT request.
///
/// ``MountOptions/capabilities`` lists what the session wants; at INIT FUSEKit sets
/// `conn->want` to exactly that set intersected with what the kernel offers (`conn->capable`),
/// replacing libfuse's own defaults, so nothing is enabled behind the file system's back.
public struct FUSECapabilities: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32

    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    /// Asynchronous (parallel, out-of-order) reads, needed for readahead parallelism.
    public static let asyncRead = FUSECapabilities(rawValue: UInt32(FUSE_CAP_ASYNC_READ))
    /// Remote POSIX locks (needs getlk/setlk, which FUSEKit does not implement).
    public static let posixLocks = FUSECapabilities(rawValue: UInt32(FUSE_CAP_POSIX_LOCKS))
    /// `open(O_TRUNC)` reaches open with the flag instead of a setattr(size: 0) before it.
    public static let atomicOpenTruncate = FUSECapabilities(rawValue: UInt32(FUSE_CAP_ATOMIC_O_TRUNC))
    /// Lookups of "." and ".." (for NFS export).
    public static let exportSupport = FUSECapabilities(rawValue: UInt32(FUSE_CAP_EXPORT_SUPPORT))
    /// The kernel does not apply the umask to create/mkdir modes.
    public static let dontMask = FUSECapabilities(rawValue: UInt32(FUSE_CAP_DONT_MASK))
    /// Read replies may be spliced into /dev/fuse (zero-copy ``ReadReply/fileDescriptor(fd:offset:length:keepAlive:)``).
    public static let spliceWrite = FUSECapabilities(rawValue: UInt32(FUSE_CAP_SPLICE_WRITE))
    /// Spliced pages may be moved instead of copied.
    public static let spliceMove = FUSECapabilities(rawValue: UInt32(FUSE_CAP_SPLICE_MOVE))
    /// Requests are spliced out of /dev/fuse. Without a `write_buf` handler this only adds a
    /// copy out of the pipe, so it is off by default.
    public static let spliceRead = FUSECapabilities(rawValue: UInt32(FUSE_CAP_SPLICE_READ))
    /// BSD `flock` locks (needs a flock handler, which FUSEKit does not implement).
    public static let flockLocks = FUSECapabilities(rawValue: UInt32(FUSE_CAP_FLOCK_LOCKS))
    /// ioctl on directories.
    public static let ioctlDirectory = FUSECapabilities(rawValue: UInt32(FUSE_CAP_IOCTL_DIR))
    /// The kernel drops cached pages when mtime or size change in fresh attributes.
    public static let autoInvalidateData = FUSECapabilities(rawValue: UInt32(FUSE_CAP_AUTO_INVAL_DATA))
    /// Use readdirplus (``FileSystem/readDirectoryPlus(inode:handle:offset:into:context:)``).
    public static let readDirectoryPlus = FUSECapabilities(rawValue: UInt32(FUSE_CAP_READDIRPLUS))
    /// Let the kernel choose between readdir and readdirplus.
    public static let readDirectoryPlusAuto = FUSECapabilities(rawValue: UInt32(FUSE_CAP_READDIRPLUS_AUTO))
    /// Asynchronous direct I/O.
    public static let asyncDirectIO = FUSECapabilities(rawValue: UInt32(FUSE_CAP_ASYNC_DIO))
    /// Writeback caching: the kernel buffers writes and owns mtime. Breaks seal-on-close and
    /// write error reporting, so never on by default.
    public static let writebackCache = FUSECapabilities(rawValue: UInt32(FUSE_CAP_WRITEBACK_CACHE))
    /// Zero-message opens (offered; enabled by replying ENOSYS to open).
    public static let noOpenSupport = FUSECapabilities(rawValue: UInt32(FUSE_CAP_NO_OPEN_SUPPORT))
    /// Parallel lookups and readdirs in one directory.
    public static let parallelDirectoryOperations = FUSECapabilities(rawValue: UInt32(FUSE_CAP_PARALLEL_DIROPS))
    /// POSIX ACLs via xattrs.
    public static let posixACL = FUSECapabilities(rawValue: UInt32(FUSE_CAP_POSIX_ACL))
    /// The file system clears suid/sgid itself on write/chown/truncate.
    public static let handleKillPriv = FUSECapabilities(rawValue: UInt32(FUSE_CAP_HANDLE_KILLPRIV))
    /// The kernel caches symlink targets.
    public static let cacheSymlinks = FUSECapabilities(rawValue: UInt32(FUSE_CAP_CACHE_SYMLINKS))
    /// Zero-message opendirs.
    public static let noOpendirSupport = FUSECapabilities(rawValue: UInt32(FUSE_CAP_NO_OPENDIR_SUPPORT))
    /// Cached pages are only dropped on explicit request.
    public static let explicitInvalidateData = FUSECapabilities(rawValue: UInt32(FUSE_CAP_EXPLICIT_INVAL_DATA))
    /// Dentries can be expired instead of invalidated.
    public static let expireOnly = FUSECapabilities(rawValue: UInt32(FUSE_CAP_EXPIRE_ONLY))

    /// What a ``MountOptions`` wants unless told otherwise: async reads, parallel directory
    /// operations, automatic cache invalidation on mtime/size change, async direct I/O, and
    /// splice for replies (``spliceWrite``, ``spliceMove``). No writeback cache, no readdirplus,
    /// no atomic O_TRUNC, no splice for requests.
    public static let defaults: FUSECapabilities = [
        .asyncRead, .parallelDirectoryOperations, .autoInvalidateData, .asyncDirectIO,
        .spliceWrite, .spliceMove,
    ]

    private static let names: [(FUSECapabilities, String)] = [
        (.asyncRead, "asyncRead"), (.posixLocks, "posixLocks"), (.atomicOpenTruncate, "atomicOpenTruncate"),
        (.exportSupport, "exportSupport"), (.dontMask, "dontMask"), (.spliceWrite, "spliceWrite"),
        (.spliceMove, "spliceMove"), (.spliceRead, "spliceRead"), (.flockLocks, "flockLocks"),
        (.ioctlDirectory, "ioctlDirectory"), (.autoInvalidateData, "autoInvalidateData"),
        (.readDirectoryPlus, "readDirectoryPlus"), (.readDirectoryPlusAuto, "readDirectoryPlusAuto"),
        (.asyncDirectIO, "asyncDirectIO"), (.writebackCache, "writebackCache"),
        (.noOpenSupport, "noOpenSupport"), (.parallelDirectoryOperations, "parallelDirectoryOperations"),
        (.posixACL, "posixACL"), (.handleKillPriv, "handleKillPriv"), (.cacheSymlinks, "cacheSymlinks"),
        (.noOpendirSupport, "noOpendirSupport"), (.explicitInvalidateData, "explicitInvalidateData"),
        (.expireOnly, "expireOnly"),
    ]

    public var description: String {
        var rest = self
        var parts: [String] = []
        for (cap, name) in Self.names where contains(cap) {
            parts.append(name)
            rest.remove(cap)
        }
        if !rest.isEmpty {
            parts.append("0x" + String(rest.rawValue, radix: 16))
        }
        return "[" + parts.joined(separator: ", ") + "]"
    }
}

/// What the kernel and FUSEKit agreed on at INIT, passed to ``FileSystem/initialize(connection:)``.
public struct ConnectionInfo: Hashable, Sendable {
    /// FUSE kernel protocol version (e.g. 7.38).
    public var protocolMajor: UInt32
    public var protocolMinor: UInt32
    /// Everything the kernel offered.
    public var offered: FUSECapabilities
    /// What is enabled.
    public var enabled: FUSECapabilities
    /// Largest write request in bytes.
    public var maxWrite: UInt32
    /// Largest read request in bytes (0: kernel limit, which is `max_pages` pages).
    public var maxRead: UInt32
    public var maxReadahead: UInt32
    public var maxBackground: UInt32
    public var congestionThreshold: UInt32
    public var timeGranularity: UInt32
    /// Files opened with `direct_io` can be mapped `MAP_SHARED` (`FUSE_DIRECT_IO_ALLOW_MMAP`
    /// agreed); without it such an `mmap` fails with `ENODEV`.
    public var directIOMappable: Bool
    /// Where opens can be served by the kernel from backing files (`FUSE_PASSTHROUGH`
    /// agreed, see ``MountOptions/passthrough``); `nil` when they cannot. Agreement does not
    /// prove the privilege to register files: ``BackingFiles/probe()`` does.
    public var backingFiles: BackingFiles?

    public init(
        protocolMajor: UInt32, protocolMinor: UInt32, offered: FUSECapabilities, enabled: FUSECapabilities,
        maxWrite: UInt32, maxRead: UInt32, maxReadahead: UInt32, maxBackground: UInt32,
        congestionThreshold: UInt32, timeGranularity: UInt32, directIOMappable: Bool = false,
        backingFiles: BackingFiles? = nil
    ) {
        self.directIOMappable = directIOMappable
        self.backingFiles = backingFiles
        self.protocolMajor = protocolMajor
        self.protocolMinor = protocolMinor
        self.offered = offered
        self.enabled = enabled
        self.maxWrite = maxWrite
        self.maxRead = maxRead
        self.maxReadahead = maxReadahead
        self.maxBackground = maxBackground
        self.congestionThreshold = congestionThreshold
        self.timeGranularity = timeGranularity
    }
}
