//
// vineyard-csi: VolumeFS
//
// VolumeFileSystem.swift: a volume's directory tree served over FUSE from an object store.

import FUSEKit
import Glibc
import SharedMemoryStore
import StoreBackend
import Synchronization

/// The file system of one volume: a directory tree whose regular files are vineyard objects
/// in an ``ObjectBackend``: the node's embedded store or a vineyard deployment's vineyardd.
///
/// ## Backends
/// Everything here is written once over the backend's operations. What differs is read from
/// its ``BackendCapabilities``: without ``BackendCapabilities/concurrentWriters`` (vineyardd) a
/// file has one writer at a time (`EBUSY` for the next); only with ``BackendCapabilities/restartAdoption`` can a mount outlive its process
/// (``surviving(store:volumeID:quotaBytes:readOnly:stateFile:resume:inodeCapacity:)``);
/// without ``BackendCapabilities/localMemory`` names may change on other nodes, so the usage
/// is counted again at every `statfs`. While a vineyardd is unreachable every request fails
/// with `ENOTCONN`; files opened before it restarted fail with `EIO`.
///
/// ## Naming
/// Every name of the volume lives under `"<volumeID>/"`, so volumes sharing a store never see
/// each other. A file `a/b.pkl` is the blob named `"<volumeID>/a/b.pkl"`; a directory `a/c` is a
/// metadata object (`vineyard-csi::Directory`) named `"<volumeID>/a/c/"`, and the root is
/// `"<volumeID>/"`. Names with further names below them are directories even without a marker,
/// so trees written by vineyard clients show up too. Owner, permissions and times are fields
/// of each object's metadata (``NodeMetadata``). Hard links are more names of one object
/// (VolumeFileSystem+Links.swift); FIFOs, sockets and device nodes are metadata objects.
///
/// ## Versions
/// Opening a file for writing does not change it: the first write (or truncation) starts a
/// new version, an unsealed blob holding a copy of the old bytes (none after `O_TRUNC`). All
/// handles of the inode share that version, and reads and `stat` in this mount see it. The
/// blob is sealed and bound to the file's name in one atomic step, replacing the previous
/// version (which is then deleted), when the writer closes its descriptor — the FLUSH of the
/// thread that wrote last, with no other handle holding unflushed writes — or otherwise at
/// the RELEASE of the last handle. A descriptor copy closed
/// elsewhere (a forked child's close-on-exec, the original after `dup2` in `cmd > file`) does
/// not publish a partial version. Other mounts (and vineyard clients) therefore only ever see
/// complete versions. A version whose write failed for lack of space is discarded at close,
/// which reports the error; if the driver dies, unsealed versions vanish with it and the
/// previous ones stay. `fsync` does not publish.
///
/// ## Reads
/// Reads reply straight from the backend's shared memory (``ReadReply/buffer(_:keepAlive:)``
/// with the mapping's owner as the keep-alive); the open inode holds the object's `SealedFile`,
/// so a file deleted or replaced while open keeps its bytes. Opens keep the page cache when it still holds the current object.
///
/// ## Consistency with other mounts
/// Lookups and attributes consult the store, and opens serve the object current at open, so
/// a file closed in one mount is visible to opens in every other mount; a kernel that cached
/// the previous attributes may report the old size for up to the one-second attribute
/// timeout. Renaming a directory moves every name below it
/// one by one under an exclusive lock of this mount; a crash in the middle leaves both
/// directories with part of the tree, never a lost file.
public final class VolumeFileSystem: FileSystem {
    /// The volume served.
    public let volumeID: String
    /// Most bytes the volume's files may hold; 0 for no limit other than the store's.
    /// Changes with ``resize(quotaBytes:)`` (volume expansion) while the volume is mounted.
    public var quotaBytes: Int { quota.load(ordering: .relaxed) }
    private let quota: Atomic<Int>
    /// Whether every change is refused with `EROFS`.
    public let readOnly: Bool
    /// Whether read-only opens bypass the page cache (`direct_io`): set at INIT when the mount
    /// asked for and got mappable direct I/O (``recommendedMountOptions(volumeID:readOnly:directReads:)``).
    /// A read then copies once, from the store into the reader's buffer, where a page-cache
    /// read of a file not yet cached copies twice (store to page cache to reader); every read
    /// is a request, though, so readers of small pieces pay a round trip each.
    public var directReads: Bool { directReadsAgreed.load(ordering: .relaxed) }
    private let directReadsAgreed = Atomic<Bool>(false)

    let backend: any ObjectBackend
    let naming: VolumeNaming
    let accounting: VolumeAccounting
    let table: Mutex<InodeTable<FileState>>
    /// Held shared by every operation that turns paths into store names, exclusively by
    /// directory renames (which change the names of a whole subtree).
    let namespace = ReadWriteLock()
    let files = HandleTable<OpenFile>()
    let directories = HandleTable<DirectoryHandle>()
    /// Inode numbers are never reused in a session; the generation tells sessions apart.
    let generation: UInt64
    let instanceID: UInt64
    /// The inode table's mirror in a shared file, when the mount outlives its process (see
    /// ``surviving(store:volumeID:quotaBytes:readOnly:stateFile:resume:)``).
    let slots: InodeSlots?
    /// Serialises taking over handles of an earlier process.
    let adoption = Mutex<Void>(())
    /// The inode serving each hard-linked file this mount has looked up, by link identity
    /// (see ``PosixAttributes/linkIdentity``), so that every name of it is one inode.
    let linkedInodes = Mutex<[UInt64: InodeNumber]>([:])
    /// Subdirectories counted per directory path, for directories' link counts (see
    /// VolumeFileSystem+DirectoryLinks.swift).
    let subdirectoryCounts = Mutex<[String: CountedSubdirectories]>([:])
    /// Files the kernel serves from the objects' own files (FUSE passthrough).
    let passthrough: PassthroughFiles

    /// Seconds the kernel may cache attributes (sizes, modes): how stale a change made through
    /// another mount may look.
    static let cacheTimeout = 1.0
    /// Seconds the kernel may cache a name → inode entry. Longer than the attribute timeout:
    /// inodes stand for paths and every open and getattr checks the store, so a stale entry
    /// (the file was removed or replaced elsewhere) still answers correctly, and re-opening a
    /// file costs no LOOKUP round trip. Negative entries are never cached.
    static let entryTimeout = 10.0
    /// `st_blksize`: the I/O size programs (stdio, cp) use for buffers.
    static let preferredIOSize: UInt32 = 128 << 10
    /// The longest path component.
    static let maximumComponentLength = 255
    /// The longest volume ID.
    static let maximumVolumeIDLength = 1024
    /// Inode number reported by readdir for entries the kernel has not looked up.
    static let unknownInode = InodeNumber(rawValue: 0xFFFF_FFFF)

    // MARK: - Creating

    /// Opens the file system of a volume in the embedded store (see
    /// ``init(backend:volumeID:quotaBytes:readOnly:)``).
    public convenience init(store: ObjectStore, volumeID: String, quotaBytes: Int, readOnly: Bool) throws(VolumeFSError) {
        try self.init(backend: EmbeddedBackend(store: store), volumeID: volumeID, quotaBytes: quotaBytes, readOnly: readOnly, slots: nil)
    }

    /// Opens the file system of a volume, creating the volume's root directory if missing.
    ///
    /// - Parameters:
    ///   - backend: the backend holding the volume.
    ///   - volumeID: the volume; its names are `"<volumeID>/…"`.
    ///   - quotaBytes: most bytes the volume's files may hold (0: only the backend's capacity
    ///     limits it). Writes beyond it fail with `ENOSPC`.
    ///   - readOnly: refuse every change with `EROFS` (mount with
    ///     ``recommendedMountOptions(volumeID:readOnly:directReads:capabilities:)`` too, so the kernel refuses first).
    /// - Throws: ``VolumeFSError`` with ``VolumeFSError/Code/invalidVolumeID``,
    ///   ``VolumeFSError/Code/invalidQuota``, or ``VolumeFSError/Code/store`` when the root
    ///   cannot be created.
    public convenience init(backend: any ObjectBackend, volumeID: String, quotaBytes: Int, readOnly: Bool) throws(VolumeFSError) {
        try self.init(backend: backend, volumeID: volumeID, quotaBytes: quotaBytes, readOnly: readOnly, slots: nil)
    }

    /// The designated initializer; with `slots`, the generation is the one recorded there.
    init(
        backend: any ObjectBackend, volumeID: String, quotaBytes: Int, readOnly: Bool, slots: InodeSlots?,
        backingSlots: BackingSlots? = nil
    ) throws(VolumeFSError) {
        try Self.validate(volumeID: volumeID)
        guard quotaBytes >= 0 else {
            throw VolumeFSError(code: .invalidQuota, message: "quota \(quotaBytes) is negative")
        }
        let naming = VolumeNaming(volumeID: volumeID)
        let instanceID = backend.instanceID
        if !readOnly {
            do throws(BackendError) {
                if try backend.lookUp(naming.rootPrefix) == nil {
                    let attributes = PosixAttributes(
                        permissions: NodeMetadata.defaultDirectoryPermissions, uid: 0, gid: 0, time: .now)
                    let meta = NodeMetadata.directory(attributes: attributes, volumeID: volumeID, instanceID: instanceID)
                    _ = try backend.createObject(meta, name: naming.rootPrefix)
                }
            } catch {
                throw VolumeFSError(code: .store, message: "cannot create the root of volume \(volumeID)", backendError: error)
            }
        }
        self.volumeID = volumeID
        self.quota = Atomic(quotaBytes)
        self.readOnly = readOnly
        self.backend = backend
        self.naming = naming
        self.instanceID = instanceID
        self.accounting = VolumeAccounting.shared(backend: backend, naming: naming)
        self.table = Mutex(InodeTable(root: Node(inode: .root, kind: .directory, parent: nil, name: FileName(""))))
        let now = Timespec.now
        self.slots = slots
        self.passthrough = PassthroughFiles(slots: backingSlots)
        if let slots, slots.generation != 0 {
            self.generation = slots.generation
        } else {
            self.generation = UInt64(bitPattern: now.seconds &* 1_000_000_000 &+ now.nanoseconds)
            slots?.generation = generation
        }
    }

    /// Sets the volume's quota (expansion); writes already made are never undone, so a smaller
    /// quota only stops the volume from growing.
    ///
    /// - Throws: ``VolumeFSError/Code/invalidQuota`` for a negative quota.
    public func resize(quotaBytes: Int) throws(VolumeFSError) {
        guard quotaBytes >= 0 else {
            throw VolumeFSError(code: .invalidQuota, message: "quota \(quotaBytes) is negative")
        }
        quota.store(quotaBytes, ordering: .relaxed)
    }

    /// The file system's current view of the volume's usage (shared with other file systems
    /// of the same volume in this process).
    public var usage: VolumeUsage {
        accounting.usage
    }

    /// Inodes the kernel currently references (and the root), for diagnostics.
    public var inodeCount: Int {
        table.withLock { $0.count }
    }

    // MARK: - Volume-level operations

    /// What a volume holds. O(1) while a file system of the volume is alive in this process,
    /// otherwise a scan of the volume's names (O(n)).
    ///
    /// - Parameters:
    ///   - store: the store holding the volume.
    ///   - volumeID: the volume.
    /// - Returns: bytes in files, files, and directories (not counting the root).
    public static func usage(store: ObjectStore, volumeID: String) -> VolumeUsage {
        let backend = EmbeddedBackend(store: store)
        if let live = VolumeAccounting.live(backend: backend, volumeID: volumeID) { return live.usage }
        return (try? VolumeAccounting.scan(backend: backend, naming: VolumeNaming(volumeID: volumeID)))
            ?? VolumeUsage(bytes: 0, files: 0, directories: 0)
    }

    /// Mount options for serving a volume: fsname `vineyard:<volumeID>`, type
    /// `fuse.vineyard`, `allow_other` (pods run as other users), `default_permissions` (the
    /// kernel checks modes), 1 MiB writes and read-ahead, atomic `O_TRUNC` (a truncating
    /// open starts the new version directly), readdirplus when the kernel sees fit, and `ro`
    /// for read-only volumes.
    ///
    /// - Parameters:
    ///   - volumeID: the volume.
    ///   - readOnly: mount read-only.
    ///   - directReads: serve read-only opens with `direct_io` (see ``directReads``), when
    ///     the kernel can still map such files `MAP_SHARED` (Linux 6.6+); otherwise reads stay
    ///     in the page cache.
    ///   - backend: the backend's capabilities: without ``BackendCapabilities/localMemory``
    ///     (vineyardd) no readdirplus, as attributes come from the backend one name at a time.
    ///   - passthrough: let the kernel serve sealed files from the objects' own files where
    ///     it can (``fileServing``; backends with ``BackendCapabilities/ownFiles`` only).
    /// - Returns: the options.
    public static func recommendedMountOptions(
        volumeID: String, readOnly: Bool, directReads: Bool = false, backend: BackendCapabilities = .embedded,
        passthrough: Bool = false
    ) -> MountOptions {
        var capabilities = FUSECapabilities.defaults
        capabilities.formUnion([.atomicOpenTruncate])
        if backend.contains(.localMemory) { capabilities.formUnion([.readDirectoryPlus, .readDirectoryPlusAuto]) }
        return MountOptions(
            fsName: "vineyard:" + volumeID,
            subtype: "vineyard",
            allowOther: true,
            defaultPermissions: true,
            readOnly: readOnly,
            maxWrite: 1 << 20,
            readAheadKilobytes: 1024,
            capabilities: capabilities,
            directIOMappable: directReads,
            passthrough: passthrough && backend.contains(.ownFiles)
        )
    }

    static func validate(volumeID: String) throws(VolumeFSError) {
        let bytes = volumeID.utf8
        guard !bytes.isEmpty, bytes.count <= maximumVolumeIDLength, volumeID != ".", volumeID != "..",
            !bytes.contains(UInt8(ascii: "/")), !bytes.contains(0)
        else {
            throw VolumeFSError(
                code: .invalidVolumeID,
                message:
                    "volume ID \(volumeID.debugDescription) must be 1-\(maximumVolumeIDLength) bytes without '/' or NUL"
            )
        }
    }

    // MARK: - Lifecycle

    public func initialize(connection: ConnectionInfo) {
        directReadsAgreed.store(connection.directIOMappable, ordering: .relaxed)
        connectPassthrough(connection)
    }

    /// Publishes what is still being written: the kernel drops pending RELEASE requests at
    /// unmount, so versions whose descriptors were closed would otherwise be lost.
    public func destroy() {
        for handle in files.handles {
            release(inode: .root, handle: handle, flags: OpenFlags(rawValue: 0))
        }
        for handle in directories.handles {
            _ = directories.remove(handle)
        }
    }

    // MARK: - Shared helpers

    /// What a path of the volume names in the store.
    enum Resolved {
        case file(ObjectID, ObjectMeta)
        case symbolicLink(ObjectID, ObjectMeta)
        /// A FIFO, socket or device node.
        case special(ObjectID, ObjectMeta)
        /// A directory; the marker object is absent for a directory that exists only because
        /// names below it do.
        case directory(ObjectID?, ObjectMeta?)

        var kind: NodeKind {
            switch self {
            case .file: return .file
            case .symbolicLink: return .symbolicLink
            case .special(_, let meta): return .special(NodeMetadata.specialType(meta))
            case .directory: return .directory
            }
        }

        /// The object of a file, link or special file (not of a directory).
        var object: (id: ObjectID, meta: ObjectMeta)? {
            switch self {
            case .file(let id, let meta), .symbolicLink(let id, let meta), .special(let id, let meta):
                return (id, meta)
            case .directory:
                return nil
            }
        }
    }

    /// Looks a path up in the backend: a file or link name first, then a directory marker,
    /// then names below it.
    func resolve(_ path: String) throws(Errno) -> Resolved? {
        do throws(BackendError) {
            if !path.isEmpty, let id = try backend.lookUp(naming.objectName(path)), let meta = try backend.meta(id) {
                switch NodeMetadata.kind(of: id, meta: meta) {
                case .file: return .file(id, meta)
                case .symbolicLink: return .symbolicLink(id, meta)
                case .special: return .special(id, meta)
                case .directory, nil: break
                }
            }
            let directory = naming.directoryName(path)
            if let id = try backend.lookUp(directory) {
                return .directory(id, try backend.meta(id))
            }
            if path.isEmpty { return .directory(nil, nil) }
            if try !backend.names(withPrefix: directory, limit: 1).isEmpty {
                return .directory(nil, nil)
            }
            return nil
        } catch {
            throw error.errno
        }
    }

    /// The node of an inode number.
    func node(_ inode: InodeNumber) throws(Errno) -> Node {
        guard let node = table.withLock({ $0.node(inode) }) else { throw .noEntry }
        return node
    }

    /// The node of a directory inode.
    func directoryNode(_ inode: InodeNumber) throws(Errno) -> Node {
        let node = try node(inode)
        guard node.kind == .directory else { throw .notDirectory }
        return node
    }

    /// The path of an attached node; `ENOENT` if it was removed.
    func path(of node: Node) throws(Errno) -> String {
        guard let path = table.withLock({ $0.path(of: node) }) else { throw .noEntry }
        return path
    }

    /// Checks a name from the kernel (or a caller): not empty, no `/` or NUL, at most 255
    /// bytes; `.` and `..` only where `allowDots`.
    static func validatedName(_ name: String, allowDots: Bool = false) throws(Errno) -> FileName {
        let bytes = name.utf8
        guard !bytes.isEmpty, !bytes.contains(UInt8(ascii: "/")), !bytes.contains(0) else { throw .invalid }
        guard bytes.count <= maximumComponentLength else { throw .nameTooLong }
        if !allowDots && (name == "." || name == "..") { throw .invalid }
        return FileName(name)
    }

    /// `ENAMETOOLONG` when a store name would exceed the store's limit.
    static func checkLength(_ storeName: String) throws(Errno) {
        guard VolumeNaming.fits(storeName) else { throw .nameTooLong }
    }

    /// Runs a backend call; its failure becomes the errno of the request (`ENOSPC` when out
    /// of memory, `ENOTCONN` while a vineyardd is unreachable, …).
    func call<R>(_ body: () throws(BackendError) -> R) throws(Errno) -> R {
        do {
            return try body()
        } catch {
            throw error.errno
        }
    }

    /// Attributes in FUSE's form.
    func attributes(
        of node: Node, posix: PosixAttributes, size: Int, linkCount: UInt32, device: UInt64 = 0
    ) -> FileAttributes {
        FileAttributes(
            inode: node.inode,
            mode: node.kind.fileType.mode(permissions: posix.permissions),
            linkCount: linkCount,
            uid: posix.uid,
            gid: posix.gid,
            rdev: device,
            size: UInt64(max(0, size)),
            blockSize: Self.preferredIOSize,
            accessTime: posix.accessTime,
            modificationTime: posix.modificationTime,
            changeTime: posix.changeTime
        )
    }

    /// Attributes of a resolved store entry for `node`.
    func attributes(of node: Node, resolved: Resolved) -> FileAttributes {
        switch resolved {
        case .file(let id, let meta):
            let posix = PosixAttributes(meta: meta, defaultPermissions: NodeMetadata.defaultFilePermissions)
            return attributes(
                of: node, posix: posix, size: backend.fileSize(of: id, meta: meta), linkCount: linkCount(of: id, meta: meta))
        case .symbolicLink(let id, let meta):
            let posix = PosixAttributes(meta: meta, defaultPermissions: 0o777)
            let target = meta.fields[NodeMetadata.targetKey]?.stringValue ?? ""
            return attributes(of: node, posix: posix, size: target.utf8.count, linkCount: linkCount(of: id, meta: meta))
        case .special(let id, let meta):
            let posix = PosixAttributes(meta: meta, defaultPermissions: NodeMetadata.defaultFilePermissions)
            return attributes(
                of: node, posix: posix, size: 0, linkCount: linkCount(of: id, meta: meta),
                device: NodeMetadata.device(meta))
        case .directory(_, let meta):
            let posix =
                meta.map {
                    PosixAttributes(meta: $0, defaultPermissions: NodeMetadata.defaultDirectoryPermissions)
                } ?? PosixAttributes(permissions: NodeMetadata.defaultDirectoryPermissions, uid: 0, gid: 0, time: .zero)
            let linkCount = table.withLock({ $0.path(of: node) }).map { directoryLinkCount(path: $0) } ?? 2
            return attributes(of: node, posix: posix, size: 0, linkCount: linkCount)
        }
    }

    /// Attributes of a file with a version being written.
    func attributes(of node: Node, writer: PendingVersion, attached: Bool) -> FileAttributes {
        var linkCount: UInt32 = attached ? 1 : 0
        if attached, writer.attributes.linkIdentity != nil, let path = table.withLock({ $0.path(of: node) }),
            let object = (try? resolve(path))??.object
        {
            linkCount = self.linkCount(of: object.id, meta: object.meta)
        }
        return attributes(of: node, posix: writer.attributes, size: writer.size, linkCount: linkCount)
    }

    func entry(_ attributes: FileAttributes) -> EntryReply {
        EntryReply(
            attributes: attributes, generation: generation, entryTimeout: Self.entryTimeout,
            attributeTimeout: Self.cacheTimeout)
    }

    /// The attributes of the directory at `path`, which must still exist in the store (another
    /// mount may have removed it): `nil` for a directory without a marker object.
    ///
    /// - Throws: `ENOENT` when there is no directory at `path`.
    func existingDirectory(_ path: String) throws(Errno) -> PosixAttributes? {
        guard case .directory(_, let meta) = try resolve(path) else { throw .noEntry }
        return meta.map { PosixAttributes(meta: $0, defaultPermissions: NodeMetadata.defaultDirectoryPermissions) }
    }

    /// Owner and mode for a new node: the caller's uid and gid, except that a set-group-ID
    /// parent passes on its group (and, to directories, the bit itself).
    func newAttributes(
        parent: PosixAttributes?, mode: UInt32, kind: NodeKind, context: RequestContext, now: Timespec
    ) -> PosixAttributes {
        var attributes = PosixAttributes(permissions: mode, uid: context.uid, gid: context.gid, time: now)
        if let parent, parent.permissions & UInt32(S_ISGID) != 0 {
            attributes.gid = parent.gid
            if kind == .directory { attributes.permissions |= UInt32(S_ISGID) }
        }
        return attributes
    }
}
