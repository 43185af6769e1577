// vineyard-csi: SharedMemoryStore
// StoreConfiguration.swift: how to open one store.

/// Where a store lives and how much shared memory it may use.
///
/// A store is a directory holding one arena file (`arena-0`, sized to ``capacity``, mapped
/// `MAP_SHARED`), the metadata log (`meta.log`) and a lock file. Put the directory on a tmpfs
/// (the default root is under `/dev/shm`) so that blob memory is shared memory: it survives a
/// crash of the driver process, other processes can map it by file descriptor, and a node
/// reboot clears it.
public struct StoreConfiguration: Sendable, Hashable {
    /// How metadata log records reach stable storage.
    public enum SyncMode: Sendable, Hashable {
        /// One `write(2)` per record, no `fsync`. The record is in the page cache as soon as the
        /// call returns, so it survives the death of the process (`kill -9`), which is all a
        /// tmpfs directory can survive anyway. The default.
        case processCrash
        /// Also `fdatasync(2)` after every record, for a directory on a disk that should
        /// survive a host crash. Costs a device flush per operation.
        case hostCrash
    }

    /// The store directory; created (mode 0700) if missing.
    public var directory: String
    /// The arena size in bytes: the most blob memory the store can hold. Rounded up to a
    /// multiple of 2 MiB. Defaults to 4 GiB.
    ///
    /// Reopening an existing store with a different capacity resizes the arena, provided every
    /// recovered blob still fits.
    public var capacity: Int
    /// Bytes at the start of the arena to pre-fault at open (reserve in tmpfs and populate the
    /// page tables with `MADV_POPULATE_WRITE`), so the first writes run at memory speed instead
    /// of page-fault speed. Clamped to ``capacity``. Defaults to 0: memory is faulted in as
    /// blobs are allocated (see ``ObjectStore`` for the allocator's warm-memory policy).
    public var prefault: Int
    /// The vineyard instance id written into generated object identifiers and default metadata.
    public var instanceID: UInt64
    /// Whether to `madvise(MADV_HUGEPAGE)` the arena. Effective only where the kernel allows
    /// transparent huge pages on the directory's tmpfs: a tmpfs mounted with `huge=advise` or
    /// `huge=within_size` (a plain `/dev/shm` mount has `huge=never`; `shmem_enabled` in sysfs
    /// governs only memfd and SysV memory, unless set to `force`). Where it works it is the
    /// biggest win for cold writes: on the development VM, a tmpfs mounted `huge=always` raised
    /// cold 64 MiB writes from ~1.9 GB/s to ~6 GB/s, and 1 MiB writes from ~1.8 to ~12 GB/s.
    public var hugePages: Bool
    /// How metadata log records are made durable; see ``SyncMode``.
    public var syncMode: SyncMode
    /// The metadata log is rewritten (compacted) once it exceeds this many bytes and twice the
    /// size of the last compacted state.
    public var compactionThreshold: Int
    /// Identifies the current boot of the host. A store whose log records a different boot
    /// identifier is wiped at open, so a reboot always yields an empty, clean store even when
    /// the directory is not on tmpfs. `nil` reads `/proc/sys/kernel/random/boot_id`.
    public var bootID: String?
    /// Blobs whose reservation reaches this many bytes get a file of their own,
    /// `<directory>/blobs/<identifier in hex>`, instead of a range of the arena; `nil` (the
    /// default) keeps every blob in the arena.
    ///
    /// A blob's own file starts at the blob's byte 0, which is what FUSE passthrough needs of a
    /// backing file (the kernel maps file offsets one to one) and what lets a vineyard client
    /// map exactly one buffer. Such files count against ``capacity`` like arena memory. A
    /// writer that grows past the threshold moves into a file once (one copy of what it holds);
    /// after that, growing extends the file and its mapping without copying. See
    /// ``BlobLocation`` for how to reach the bytes.
    ///
    /// 1 MiB is the recommended value (`vineyard-csi-bench store --blob-files` measures it): a
    /// file costs a handful of system calls to create, seal and delete, several times a whole
    /// arena cycle for blobs of a few hundred KiB, and its pages are always fresh where the
    /// arena reuses warm ones; from about 1 MiB the cost is per byte, which passthrough reads
    /// and shared mappings (no copy through the driver, no second page-cache copy) repay. Each
    /// sealed file is also one mapping of this process (`vm.max_map_count`, 65530 by default),
    /// so a larger threshold keeps their number bounded by capacity / threshold.
    public var blobFileThreshold: Int?

    /// The default root directory for stores opened through ``StoreRegistry``.
    public static let defaultRoot = "/dev/shm/vineyard-csi"
    /// The default capacity, 4 GiB.
    public static let defaultCapacity = 4 << 30

    /// Creates a configuration.
    ///
    /// - Parameters:
    ///   - directory: the store directory.
    ///   - capacity: the arena size in bytes.
    ///   - prefault: bytes to pre-fault at open.
    public init(directory: String, capacity: Int = StoreConfiguration.defaultCapacity, prefault: Int = 0) {
        self.directory = directory
        self.capacity = capacity
        self.prefault = prefault
        self.instanceID = 0
        self.hugePages = true
        self.syncMode = .processCrash
        self.compactionThreshold = 64 << 20
        self.bootID = nil
        self.blobFileThreshold = nil
    }
}
