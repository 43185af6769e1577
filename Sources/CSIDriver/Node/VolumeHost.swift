/// What the node plugin needs to know to serve a volume's files.
public struct VolumeDescriptor: Codable, Equatable, Sendable {
    public var volumeID: String
    public var cluster: ClusterReference
    /// The volume's quota in its store; 0 when the CO did not say (ephemeral volumes).
    public var capacityBytes: Int
    /// An ephemeral inline volume: its objects go when its one publication goes.
    public var ephemeral: Bool
    /// Which store serves it; `nil` in records written before cluster mode means embedded.
    public var backend: VolumeBackend?

    public init(volumeID: String, cluster: ClusterReference, capacityBytes: Int, ephemeral: Bool, backend: VolumeBackend? = nil) {
        self.volumeID = volumeID
        self.cluster = cluster
        self.capacityBytes = capacityBytes
        self.ephemeral = ephemeral
        self.backend = backend
    }

    /// The backend, with records from before cluster mode read as embedded.
    public var effectiveBackend: VolumeBackend { backend ?? .embedded }
}

/// Usage figures of one volume, as NodeGetVolumeStats reports them.
public struct VolumeStatistics: Equatable, Sendable {
    public var totalBytes: Int
    public var usedBytes: Int
    public var availableBytes: Int
    public var totalInodes: Int
    public var usedInodes: Int
    public var availableInodes: Int

    public init(totalBytes: Int, usedBytes: Int, availableBytes: Int, totalInodes: Int, usedInodes: Int, availableInodes: Int) {
        self.totalBytes = totalBytes
        self.usedBytes = usedBytes
        self.availableBytes = availableBytes
        self.totalInodes = totalInodes
        self.usedInodes = usedInodes
        self.availableInodes = availableInodes
    }
}

/// A failure to serve a volume, with what the CO should be told.
public struct VolumeHostError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        /// FUSE is missing or the process may not mount (no /dev/fuse, no CAP_SYS_ADMIN).
        case unavailable
        /// The store cannot hold the volume.
        case resourceExhausted
        /// Anything else.
        case failed
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// Serves volumes as mounted file systems on this node: one file-system session per staged
/// volume. The node service decides when; the host knows how.
public protocol VolumeHost: Sendable {
    /// Whether the host's backends (stores, FUSE) are usable; Probe reports it.
    var isReady: Bool { get }

    /// Mounts `volume`'s file system at `path` (an existing empty directory) and serves it.
    func mount(_ volume: VolumeDescriptor, at path: String) throws(VolumeHostError)

    /// Stops serving and unmounts the file system at `path`; nothing mounted there succeeds.
    func unmount(path: String) throws(VolumeHostError)

    /// Whether a live session of this process serves `path`.
    func isServing(path: String) -> Bool

    /// Usage of the volume, or nil when the host does not serve it.
    func statistics(of volume: VolumeDescriptor) -> VolumeStatistics?

    /// Removes every object of the volume from its store (deleted or ephemeral volumes).
    func purge(_ volume: VolumeDescriptor) throws(VolumeHostError)

    /// Applies a new capacity (quota) to every mounted file system of the volume (expansion).
    func resize(_ volume: VolumeDescriptor, capacityBytes: Int) throws(VolumeHostError)

    /// Serves again, as it is, a mount of `volume` at `path` that an earlier process of the
    /// plugin left behind (its pods keep their open files). `false`: nothing to resume; the
    /// caller mounts afresh.
    func resume(_ volume: VolumeDescriptor, at path: String) -> Bool

    /// Who serves the bytes of the files of the mount at `path` (the kernel from the objects'
    /// own files, or the driver and why), for NodeGetVolumeStats' condition message; `nil`
    /// when the backend has no choice.
    func fileServing(path: String) -> String?
}

extension VolumeHost {
    public func resume(_ volume: VolumeDescriptor, at path: String) -> Bool { false }
    public func fileServing(path: String) -> String? { nil }
}
