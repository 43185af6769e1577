// vineyard-csi: StoreBackend
// BackendCapabilities.swift: what one backend can do that another cannot.

/// The differences between backends, as flags the layers above consult instead of keeping
/// a copy of their code per backend.
///
/// What a backend gains later is one more flag and the operation behind it, not another file
/// system.
public struct BackendCapabilities: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32

    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    /// Several writers may hold unsealed blobs of one file at once, and a file's new version
    /// is one blob written in place. Without it (vineyardd) a file has one writer at a time.
    public static let concurrentWriters = BackendCapabilities(rawValue: 1 << 0)
    /// One object may be bound to names of several volumes (snapshots and clones by
    /// reference), and the backend can say which names an object has.
    public static let sharedNames = BackendCapabilities(rawValue: 1 << 1)
    /// Mounts survive the driver's restart: the backend's memory outlives the process and
    /// unsealed blobs can be adopted by the next one.
    public static let restartAdoption = BackendCapabilities(rawValue: 1 << 2)
    /// Blob bytes live in the driver's own shared memory, mapped once (reads reply with
    /// pointers into that mapping). Without it they live in the backend's arena, mapped
    /// through the backend's socket per connection, and are gone when the backend restarts.
    public static let localMemory = BackendCapabilities(rawValue: 1 << 3)
    /// Editing an object's metadata is one cheap in-place record. Without it (vineyardd,
    /// whose objects are immutable) an edit is a new object and a round trip to etcd, so the
    /// file system edits only on request (chmod, chown, utimens), not to keep a directory's
    /// times or a renamed file's change time.
    public static let inPlaceMetadata = BackendCapabilities(rawValue: 1 << 4)
    /// Large objects' bytes are a file of their own (byte 0 of the file is byte 0 of the
    /// object), which the kernel can serve directly through FUSE passthrough:
    /// ``SealedFile/openOwnFile()`` gives a descriptor of it.
    public static let ownFiles = BackendCapabilities(rawValue: 1 << 5)

    /// The embedded shared-memory store's.
    public static let embedded: BackendCapabilities = [
        .concurrentWriters, .sharedNames, .restartAdoption, .localMemory, .inPlaceMetadata,
    ]
    /// A vineyardd's.
    public static let vineyardd: BackendCapabilities = []
}
