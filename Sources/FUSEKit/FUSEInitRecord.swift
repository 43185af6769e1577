//
// vineyard-csi: FUSEKit
//

/// How a FUSE connection was initialised: the kernel's INIT request exactly as it arrived, and
/// what the server agreed to. With it, another process can serve the connection without a new
/// INIT (the kernel sends INIT once per mount), see ``HandoverSession``.
public struct FUSEInitRecord: Codable, Hashable, Sendable {
    /// The raw `FUSE_INIT` request: `struct fuse_in_header` then `struct fuse_init_in`.
    public var request: [UInt8]
    /// Capabilities enabled (``FUSECapabilities`` raw value).
    public var capabilities: UInt32
    public var maxWrite: UInt32
    /// 0: no `max_read` mount option.
    public var maxRead: UInt32
    public var maxReadahead: UInt32
    public var maxBackground: UInt32
    public var congestionThreshold: UInt32
    public var timeGranularity: UInt32
    /// Whether `FUSE_DIRECT_IO_ALLOW_MMAP` was agreed (absent in records of older versions,
    /// which never agreed to it).
    public var directIOMappable: Bool?
    /// Whether `FUSE_PASSTHROUGH` was agreed (absent in records of older versions, which never
    /// agreed to it). Backing ids belong to the connection and stay valid across hand-overs.
    public var passthrough: Bool?

    /// `FUSE_INIT` opcode.
    static let initOpcode: UInt32 = 26
    /// `FUSE_INIT_EXT`: `flags2` carries the upper 32 flag bits.
    static let initExtended: UInt32 = 1 << 30
    /// `FUSE_HAS_RESEND` (protocol 7.40): the kernel understands `FUSE_NOTIFY_RESEND`.
    static let hasResend: UInt64 = 1 << 39

    init(request: [UInt8], connection: ConnectionInfo, maxRead: UInt32) {
        self.request = request
        self.capabilities = connection.enabled.rawValue
        self.maxWrite = connection.maxWrite
        self.maxRead = maxRead
        self.maxReadahead = connection.maxReadahead
        self.maxBackground = connection.maxBackground
        self.congestionThreshold = connection.congestionThreshold
        self.timeGranularity = connection.timeGranularity
        self.directIOMappable = connection.directIOMappable
        self.passthrough = connection.backingFiles != nil
    }

    private func word(_ offset: Int) -> UInt32 {
        guard offset + 4 <= request.count else { return 0 }
        return UInt32(request[offset]) | UInt32(request[offset + 1]) << 8 | UInt32(request[offset + 2]) << 16
            | UInt32(request[offset + 3]) << 24
    }

    /// What the first session agreed to beyond libfuse.
    var grants: InitNegotiation.Grants {
        var grants: InitNegotiation.Grants = []
        if directIOMappable == true { grants.insert(.directIOMmap) }
        if passthrough == true { grants.insert(.passthrough) }
        return grants
    }

    /// Whether ``request`` looks like an INIT request (length and opcode).
    var isInitRequest: Bool {
        Self.isInitRequest(request)
    }

    static func isInitRequest(_ bytes: [UInt8]) -> Bool {
        func word(_ offset: Int) -> UInt32 {
            UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16
                | UInt32(bytes[offset + 3]) << 24
        }
        return bytes.count >= 56 && word(0) == UInt32(bytes.count) && word(4) == initOpcode
    }

    /// The kernel's protocol version (7.x).
    public var protocolMinor: UInt32 { word(44) }

    /// Every flag the kernel offered (`flags | flags2 << 32`).
    public var kernelFlags: UInt64 {
        let flags = word(52)
        guard flags & Self.initExtended != 0 else { return UInt64(flags) }
        return UInt64(flags) | UInt64(word(56)) << 32
    }

    /// Whether the kernel supports `FUSE_NOTIFY_RESEND` (Linux 6.9+).
    public var kernelSupportsResend: Bool {
        kernelFlags & Self.hasResend != 0
    }

    /// The options a resumed session needs so that libfuse ends up exactly where the first
    /// session's INIT left it: the agreed capabilities and limits on top of `base`.
    func resumeOptions(_ base: MountOptions) -> MountOptions {
        var options = base
        options.capabilities = FUSECapabilities(rawValue: capabilities)
        options.maxWrite = maxWrite
        options.maxRead = maxRead == 0 ? nil : maxRead
        options.maxReadahead = maxReadahead
        options.maxBackground = UInt16(clamping: maxBackground)
        options.congestionThreshold = UInt16(clamping: congestionThreshold)
        options.timeGranularity = timeGranularity
        options.readAheadKilobytes = nil
        return options
    }
}
