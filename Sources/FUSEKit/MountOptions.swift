//
// vineyard-csi: FUSEKit
//

/// How a ``FUSESession`` mounts and what it negotiates with the kernel.
public struct MountOptions: Hashable, Sendable {
    /// Mount source shown in /proc/mounts (`-o fsname=`); libfuse's default is "fuse".
    public var fsName: String?
    /// File system subtype; the type becomes `fuse.<subtype>` (`-o subtype=`).
    public var subtype: String?
    /// Let users other than the mounting one access the mount (`-o allow_other`). Pods need it.
    public var allowOther: Bool
    /// Let the kernel check permissions from the mode bits (`-o default_permissions`).
    public var defaultPermissions: Bool
    /// Mount read-only (`-o ro`): the kernel answers writes with `EROFS` itself.
    public var readOnly: Bool
    /// Largest read request in bytes (`-o max_read=` plus `conn->max_read`); `nil` leaves the
    /// kernel's limit (`max_pages` pages, 1 MiB with libfuse 3.14's buffers).
    public var maxRead: UInt32?
    /// Largest write request in bytes (`conn->max_write`); libfuse derives `max_pages` from it.
    /// Clamped to what libfuse's buffer allows (1 MiB on 4 KiB pages).
    public var maxWrite: UInt32
    /// Upper bound for readahead in bytes (`conn->max_readahead`); the kernel's value (the
    /// device's read_ahead_kb) is the default and can only be lowered here.
    public var maxReadahead: UInt32?
    /// Read-ahead window in KiB set right after INIT (`/sys/class/bdi/<dev>/read_ahead_kb`, needs
    /// root); `nil` keeps the kernel's 128 KiB. Sequential reads arrive in requests of this size
    /// (up to `max_pages`, 1 MiB), so 1024 roughly doubles streaming read throughput.
    public var readAheadKilobytes: Int?
    /// Maximum pending background requests (readahead, async direct I/O).
    public var maxBackground: UInt16?
    /// Background requests above which the kernel considers the connection congested.
    public var congestionThreshold: UInt16?
    /// Timestamp granularity in nanoseconds (a power of 10, 1 = full resolution).
    public var timeGranularity: UInt32
    /// Capabilities to enable when the kernel offers them; see ``FUSECapabilities/defaults``.
    public var capabilities: FUSECapabilities
    /// Use one cloned /dev/fuse descriptor per worker thread.
    public var cloneFD: Bool
    /// Worker threads kept while idle; `nil` keeps every worker (as many as the session's
    /// maximum), so a burst of requests never pays for thread creation twice.
    public var maxIdleThreads: Int?
    /// Ask libfuse to move spliced pages (`FUSE_BUF_SPLICE_MOVE`) for descriptor read replies.
    public var spliceMoveReplies: Bool
    /// Agree to `FUSE_DIRECT_IO_ALLOW_MMAP` when the kernel offers it (Linux 6.6+), so files
    /// opened with `direct_io` can still be mapped `MAP_SHARED`. libfuse 3.14 cannot agree to
    /// it, so the session answers INIT itself (see ``ConnectionInfo/directIOMappable``).
    public var directIOMappable: Bool
    /// Agree to `FUSE_PASSTHROUGH` when the kernel offers it (Linux 6.9+), so opens can be
    /// served by the kernel from backing files (``ConnectionInfo/backingFiles``,
    /// ``OpenReply/passthrough``). libfuse 3.14 cannot agree to it, so the session answers INIT
    /// itself. Not asked for together with ``FUSECapabilities/writebackCache``.
    public var passthrough: Bool
    /// libfuse debug output on stderr (`-d`).
    public var debug: Bool
    /// More `-o` options passed verbatim (e.g. `"auto_unmount"`, `"noatime"`). Commas inside an
    /// element split it into several options.
    public var extraOptions: [String]

    public init(
        fsName: String? = nil,
        subtype: String? = nil,
        allowOther: Bool = false,
        defaultPermissions: Bool = false,
        readOnly: Bool = false,
        maxRead: UInt32? = nil,
        maxWrite: UInt32 = 1 << 20,
        maxReadahead: UInt32? = nil,
        readAheadKilobytes: Int? = nil,
        maxBackground: UInt16? = nil,
        congestionThreshold: UInt16? = nil,
        timeGranularity: UInt32 = 1,
        capabilities: FUSECapabilities = .defaults,
        cloneFD: Bool = true,
        maxIdleThreads: Int? = nil,
        spliceMoveReplies: Bool = false,
        directIOMappable: Bool = false,
        passthrough: Bool = false,
        debug: Bool = false,
        extraOptions: [String] = []
    ) {
        self.fsName = fsName
        self.subtype = subtype
        self.allowOther = allowOther
        self.defaultPermissions = defaultPermissions
        self.readOnly = readOnly
        self.maxRead = maxRead
        self.maxWrite = maxWrite
        self.maxReadahead = maxReadahead
        self.readAheadKilobytes = readAheadKilobytes
        self.maxBackground = maxBackground
        self.congestionThreshold = congestionThreshold
        self.timeGranularity = timeGranularity
        self.capabilities = capabilities
        self.cloneFD = cloneFD
        self.maxIdleThreads = maxIdleThreads
        self.spliceMoveReplies = spliceMoveReplies
        self.directIOMappable = directIOMappable
        self.passthrough = passthrough
        self.debug = debug
        self.extraOptions = extraOptions
    }

    /// The `-o` options in the order they are passed to `fuse_session_new`, values escaped for
    /// libfuse's option parser (`,` and `\` are backslash-escaped).
    public var mountOptionStrings: [String] {
        var options: [String] = []
        if let fsName { options.append("fsname=" + Self.escape(fsName)) }
        if let subtype { options.append("subtype=" + Self.escape(subtype)) }
        if allowOther { options.append("allow_other") }
        if defaultPermissions { options.append("default_permissions") }
        options.append(readOnly ? "ro" : "rw")
        if let maxRead, maxRead > 0 { options.append("max_read=\(maxRead)") }
        options.append(contentsOf: extraOptions)
        return options
    }

    /// The argument vector for `fuse_session_new`: a program name, then `-o` options, then `-d`.
    var arguments: [String] {
        var args = ["fusekit"]
        for option in mountOptionStrings {
            args.append("-o")
            args.append(option)
        }
        if debug { args.append("-d") }
        return args
    }

    static func escape(_ value: String) -> String {
        var out = ""
        for ch in value {
            if ch == "," || ch == "\\" { out.append("\\") }
            out.append(ch)
        }
        return out
    }
}
