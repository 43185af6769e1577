// vineyard-csi: SharedMemoryStore
// ObjectStore.swift: one vineyard object store in shared memory.

import Glibc
import Synchronization

/// A vineyard object store: blobs in a shared-memory arena, object metadata, and names.
///
/// ## Layout
/// A store is a directory (normally on tmpfs, see ``StoreConfiguration``) holding
/// - `arena-0`: the arena file, `ftruncate`d to the capacity and mapped `MAP_SHARED` once.
///   Blob bytes live here. Another process maps a blob from the arena's descriptor
///   (``ArenaInfo/fileDescriptor``, ``ObjectHandle/fileDescriptor``) and offset.
/// - `meta.log`: the metadata log (see ``MetadataLog`` in the sources): checksummed records,
///   one `write(2)` each, compacted by atomic rewrite.
/// - `lock`: an exclusive `flock`, so only one store instance uses the directory.
/// - `blobs/`: with ``StoreConfiguration/blobFileThreshold`` set, one file per large blob,
///   named by its identifier in hex, whose byte 0 is the blob's byte 0 (see ``BlobLocation``).
///
/// ## Objects
/// *Blobs* (identifiers with bit 63 set) are written through a ``BlobWriter`` from
/// ``createBlob(expectedSize:writtenElsewhere:)``: unsealed, private to the writer, growable. ``seal(_:meta:name:)``
/// makes a blob immutable and visible in one step. *Metadata objects* (bit 63 clear) are
/// vineyard metadata trees without bytes of their own, created with ``createObject(_:name:)``.
/// Names map strings (paths such as `vol-1/dir/file.pkl`) to objects and are kept sorted for
/// prefix and directory listings.
///
/// ## Readers
/// ``object(_:)`` returns an ``ObjectHandle``: a pointer and length into the mapping (no copy)
/// plus the descriptor and offset. The handle holds a reference count: a deleted blob's memory
/// is not reused until every handle on it is released, and the store (with its mapping) lives
/// as long as any handle or writer.
///
/// ## Memory
/// The allocator is best fit with coalescing over the whole arena and prefers *warm* memory:
/// free ranges that deleted blobs or pre-faulting left backed and mapped. Cold memory (never
/// used, or state unknown after a restart) is reserved with `fallocate` and populated with
/// `MADV_POPULATE_WRITE` before it is handed out — in 2 MiB chunks for small blobs, exactly for
/// large ones — which is both several times faster than faulting page by page and turns a full
/// tmpfs into ``StoreError/outOfMemory(requested:available:)`` instead of a `SIGBUS`. A blob that
/// another process writes through its own mapping (``createBlob(expectedSize:writtenElsewhere:)``)
/// is only reserved: that process's page faults map it where it is written, and populating this
/// process's page tables too would double the page-table work of every fresh page.
///
/// ## Durability
/// Every state change is one log record, written after the bytes it refers to and before the
/// change becomes visible in memory. After the process dies (even `kill -9`), ``open(_:)``
/// replays the log: sealed objects, names and metadata come back byte-identical; unsealed blobs
/// were never logged, so their memory is simply free. Blobs in files of their own are recorded
/// by identifier: their files are mapped again, and the files of unsealed ones are kept for
/// ``adoptUnsealedBlob(id:size:)`` until their room is needed. A log written during an earlier boot (per
/// `/proc/sys/kernel/random/boot_id`) makes the store start empty.
///
/// ## Threads
/// All methods may be called concurrently from any thread, including foreign (FUSE) threads.
/// State is guarded by one `Mutex`; a blob writer has its own,
/// taken before the store's. Copies of blob bytes happen outside the store's lock.
public final class ObjectStore: Sendable {
    /// The configuration the store was opened with (capacity rounded as used).
    public let configuration: StoreConfiguration
    /// What opening found.
    public let recovery: RecoveryReport
    let arena: Arena
    let state: Mutex<StoreState>
    private let lockFileDescriptor: Int32

    /// Allocations smaller than this are backed in aligned chunks of this size.
    static let backingChunk = 2 << 20
    static let arenaName = "arena-0"
    static let lockName = "lock"
    static let blobDirectoryName = "blobs"

    /// The directory of the blobs' own files.
    var blobDirectory: String { configuration.directory + "/" + ObjectStore.blobDirectoryName }

    private init(
        configuration: StoreConfiguration, recovery: RecoveryReport, arena: Arena, state: consuming StoreState,
        lockFileDescriptor: Int32
    ) {
        self.configuration = configuration
        self.recovery = recovery
        self.arena = arena
        self.state = Mutex(state)
        self.lockFileDescriptor = lockFileDescriptor
    }

    deinit {
        state.withLock { state in
            state.log.close()
            for id in Array(state.objects.keys) { state.objects[id]!.storage?.unmapFile() }
        }
        arena.unmapAndClose()
        Sys.close(lockFileDescriptor)
    }

    // MARK: - Opening

    /// Opens the store in `config.directory`, creating it or recovering its state.
    ///
    /// Recovery replays the metadata log (cutting off a torn final record), rebuilds the
    /// allocator from the sealed blobs, drops names whose object is gone, resizes the arena to
    /// the configured capacity, and rewrites the log compactly. A log from an earlier boot, or
    /// one whose arena file is missing, is removed and the store starts empty.
    ///
    /// - Parameter config: where and how big.
    /// - Returns: the open store.
    /// - Throws: ``StoreError/storeLocked(path:)`` if the directory is in use,
    ///   ``StoreError/corruptMetadata(path:reason:)`` if the log cannot be trusted,
    ///   ``StoreError/invalidConfiguration(_:)`` if recovered blobs do not fit the capacity, or
    ///   ``StoreError/system(operation:path:errno:)``.
    public static func open(_ config: StoreConfiguration) throws(StoreError) -> ObjectStore {
        var config = config
        guard config.capacity > 0 else { throw .invalidConfiguration("capacity must be positive") }
        guard config.prefault >= 0 else { throw .invalidConfiguration("prefault must not be negative") }
        config.capacity = ArenaAllocator.roundUp(config.capacity, to: backingChunk)
        config.prefault = min(config.prefault, config.capacity)
        while config.directory.count > 1 && config.directory.hasSuffix("/") { config.directory.removeLast() }
        let directory = config.directory
        guard directory.hasPrefix("/") else {
            throw .invalidConfiguration("the store directory must be an absolute path")
        }

        try Sys.makeDirectories(directory)
        let lockFD = try Sys.lockFile(directory + "/" + lockName)
        do throws(StoreError) {
            return try openLocked(config, lockFD: lockFD)
        } catch {
            Sys.close(lockFD)
            throw error
        }
    }

    private static func openLocked(_ config: StoreConfiguration, lockFD: Int32) throws(StoreError) -> ObjectStore {
        let directory = config.directory
        let arenaPath = directory + "/" + arenaName
        let logPath = directory + "/" + MetadataLog.fileName
        let bootID = config.bootID ?? Sys.currentBootID()
        var report = RecoveryReport(
            objects: 0, names: 0, discardedTailBytes: 0, danglingNames: 0, wipedStaleStore: false, created: false)

        try Sys.unlinkIfPresent(directory + "/" + MetadataLog.temporaryName)
        var contents = try MetadataLog.read(path: logPath)
        if let existing = contents, existing.header.bootID != bootID || !Sys.exists(arenaPath) {
            contents = nil
            report.wipedStaleStore = true
        }
        let blobDirectory = directory + "/" + blobDirectoryName
        if contents == nil {
            // A fresh store: never reuse an arena file whose log is gone (its bytes mean nothing).
            try Sys.unlinkIfPresent(logPath)
            try Sys.unlinkIfPresent(arenaPath)
            for name in try Sys.fileNames(in: blobDirectory) { try Sys.unlinkIfPresent(blobDirectory + "/" + name) }
            report.created = !report.wipedStaleStore
        }
        try Sys.makeDirectories(blobDirectory)

        // Replay.
        var objects: [ObjectID: ObjectRecord] = [:]
        var names: [NameKey: ObjectID] = [:]
        var ids = IDGenerator(last: contents?.header.lastID ?? 0, instanceID: config.instanceID)
        if let contents {
            report.discardedTailBytes = contents.discardedTailBytes
            for operation in contents.operations {
                switch operation {
                case .header:
                    throw StoreError.corruptMetadata(path: logPath, reason: "a second header")
                case .putObject(let id, let location, let metaJSON):
                    let meta = try decodeMeta(metaJSON, path: logPath)
                    var record = ObjectRecord(meta: meta, metaJSON: metaJSON)
                    if let location, location.isOwnFile {
                        guard id.isBlob, location.offset == 0, location.size > 0 else {
                            throw StoreError.corruptMetadata(path: logPath, reason: "impossible location for \(id)")
                        }
                        record.location = BlobLocation(
                            file: BlobFile.path(in: blobDirectory, for: id), size: location.size)
                    } else if let location {
                        guard location.arena == 0, location.offset >= 0, location.size > 0 else {
                            throw StoreError.corruptMetadata(path: logPath, reason: "impossible location for \(id)")
                        }
                        record.location = location
                        record.storage = .arena(
                            Extent(offset: location.offset, length: ArenaAllocator.roundUp(location.size)))
                    } else if id.isBlob {
                        record.location = BlobLocation(arena: 0, offset: 0, size: 0)
                    }
                    objects[id] = record
                    ids.observe(id)
                case .deleteObject(let id):
                    objects[id] = nil
                case .putName(let name, let id):
                    names[NameKey(name)] = id
                case .deleteName(let name):
                    names[NameKey(name)] = nil
                case .replaceMeta(let id, let metaJSON):
                    guard objects[id] != nil else { continue }
                    objects[id]!.meta = try decodeMeta(metaJSON, path: logPath)
                    objects[id]!.metaJSON = metaJSON
                }
            }
        }
        var sortedNames = SortedMap<NameKey, ObjectID>()
        for (name, id) in names.sorted(by: { $0.key < $1.key }) {
            guard objects[id] != nil else {
                report.danglingNames += 1
                continue
            }
            sortedNames.updateValue(id, forKey: name)
            objects[id]!.names.append(name)
        }
        report.objects = objects.count
        report.names = sortedNames.count

        let extents = objects.values.compactMap(\.storage?.extent)
        if let highest = extents.map(\.end).max(), highest > config.capacity {
            throw StoreError.invalidConfiguration(
                "capacity \(config.capacity) is smaller than the recovered blobs, which reach byte \(highest)")
        }
        guard var allocator = ArenaAllocator(capacity: config.capacity, allocated: extents) else {
            throw StoreError.corruptMetadata(path: logPath, reason: "recovered blobs overlap or are misaligned")
        }
        let files = try recoverBlobFiles(
            &objects, in: blobDirectory, ids: &ids, hugePages: config.hugePages, logPath: logPath)

        let arena: Arena
        do throws(StoreError) {
            if allocator.bytesAllocated + files.bytes > config.capacity {
                throw StoreError.invalidConfiguration(
                    "capacity \(config.capacity) is smaller than the recovered blobs, which take "
                        + "\(allocator.bytesAllocated + files.bytes) bytes")
            }
            arena = try Arena.open(index: 0, path: arenaPath, size: config.capacity, hugePages: config.hugePages)
        } catch {
            for id in Array(objects.keys) { objects[id]!.storage?.unmapFile() }
            throw error
        }
        do throws(StoreError) {
            if config.prefault > 0 {
                let region = Extent(offset: 0, length: config.prefault)
                if (try? arena.back(region)) != nil {
                    allocator.markWarm(0..<config.prefault)
                }
            }
            let header = LogHeader(
                bootID: bootID, capacity: config.capacity, arenaCount: 1, lastID: ids.last,
                instanceID: config.instanceID)
            var state = StoreState(
                allocator: allocator, log: MetadataLog.placeholder, ids: ids, bootID: bootID, compactedSize: 0)
            state.objects = objects
            state.names = sortedNames
            state.fileBytes = files.bytes
            state.fileCount = files.count
            state.orphans = files.orphans
            state.log = try MetadataLog.writeSnapshot(
                directory: directory, header: header, operations: state.snapshotOperations(), syncMode: config.syncMode)
            state.compactedSize = state.log.size
            return ObjectStore(
                configuration: config, recovery: report, arena: arena, state: state, lockFileDescriptor: lockFD)
        } catch {
            arena.unmapAndClose()
            for id in Array(objects.keys) { objects[id]!.storage?.unmapFile() }
            throw error
        }
    }

    /// Maps the files of the recovered blobs that live in their own files, and sets the files
    /// of blobs that were never sealed aside as orphans (kept for adoption, see
    /// ``adoptUnsealedBlob(id:size:)``).
    ///
    /// Sealing cuts a file to the blob's size right after its log record, so a file found longer
    /// is cut now; a missing or shorter file means the directory was changed behind the store.
    private static func recoverBlobFiles(
        _ objects: inout [ObjectID: ObjectRecord], in blobDirectory: String, ids: inout IDGenerator, hugePages: Bool,
        logPath: String
    ) throws(StoreError) -> (bytes: Int, count: Int, orphans: [ObjectID: (path: String, length: Int)]) {
        var bytes = 0
        var count = 0
        var orphans: [ObjectID: (path: String, length: Int)] = [:]
        do throws(StoreError) {
            for (id, record) in objects {
                guard let location = record.location, location.isOwnFile, let path = location.file else { continue }
                guard Sys.exists(path) else {
                    throw StoreError.corruptMetadata(path: logPath, reason: "the file of \(id) is missing: \(path)")
                }
                var file = try BlobFile.attach(path: path, hugePages: hugePages)
                if file.length < location.size {
                    file.unmap()
                    throw StoreError.corruptMetadata(
                        path: logPath, reason: "the file of \(id) holds \(file.length) of its \(location.size) bytes")
                }
                if file.length > location.size { file.truncate(to: location.size) }
                objects[id]!.storage = .file(file)
                bytes += file.accountedBytes
                count += 1
            }
            for name in try Sys.fileNames(in: blobDirectory) {
                let path = blobDirectory + "/" + name
                guard let id = BlobFile.identifier(fileName: name) else {
                    try Sys.unlinkIfPresent(path)
                    continue
                }
                guard objects[id]?.storage?.file == nil else { continue }
                let fd = try Sys.open(path, O_RDONLY)
                let length = try? Sys.fileSize(fd, path: path)
                Sys.close(fd)
                orphans[id] = (path, length ?? 0)
                ids.observe(id)  // a new blob must not be given the name of an orphan's file
            }
        } catch {
            for id in Array(objects.keys) { objects[id]!.storage?.unmapFile() }
            throw error
        }
        return (bytes, count, orphans)
    }

    static func decodeMeta(_ bytes: [UInt8], path: String) throws(StoreError) -> ObjectMeta {
        let json: JSONValue
        do throws(JSONParseError) {
            json = try JSONValue(parsing: bytes)
        } catch {
            throw StoreError.corruptMetadata(path: path, reason: "metadata is not JSON: \(error)")
        }
        do throws(InvalidMetadata) {
            return try ObjectMeta(json: json)
        } catch {
            throw StoreError.corruptMetadata(path: path, reason: "\(error)")
        }
    }

    // MARK: - Store-wide operations

    /// The arena: its file, descriptor and size.
    public var arenaInfo: ArenaInfo {
        ArenaInfo(index: arena.index, path: arena.path, fileDescriptor: arena.fileDescriptor, size: arena.size)
    }

    /// Whether the kernel accepted `MADV_HUGEPAGE` for the arena mapping.
    public var hugePagesAdvised: Bool { arena.hugePagesAdvised }

    /// Current capacity, bytes used, object count and related figures, taken atomically.
    public var usage: StoreUsage {
        state.withLock { state in
            StoreUsage(
                capacity: state.allocator.capacity, bytesUsed: state.bytesUsed, blobFileBytes: state.fileBytes,
                blobFileCount: state.fileCount,
                objectCount: state.objects.count, nameCount: state.names.count, unsealedCount: state.pending.count,
                warmFreeBytes: state.allocator.warmFreeBytes)
        }
    }

    /// Rewrites the metadata log as a compact snapshot of the live state (it also happens
    /// automatically; see ``StoreConfiguration/compactionThreshold``).
    ///
    /// - Throws: ``StoreError/storeClosed`` or the failing system call; the old log stays valid.
    public func compact() throws(StoreError) {
        try state.withLock { (state) throws(StoreError) in
            guard !state.isClosed else { throw StoreError.storeClosed }
            try compactLocked(&state)
        }
    }

    /// Returns the memory of free ranges to the host (`FALLOC_FL_PUNCH_HOLE`), which makes them
    /// cold: later allocations there pay for faulting again. Use under memory pressure
    /// (vineyard's `memory_trim_request`).
    ///
    /// - Returns: bytes released.
    @discardableResult
    public func trim() -> Int {
        state.withLock { state in
            let released = state.allocator.coolFreeMemory(pageSize: Sys.pageSize)
            for extent in released { arena.release(extent) }
            return released.reduce(0) { $0 + $1.length }
        }
    }

    /// Stops accepting changes: later mutations throw ``StoreError/storeClosed``. Reads and
    /// existing handles keep working. The directory lock, the mapping and the descriptors are
    /// released when the last reference to the store (including handles and writers) goes away.
    public func close() {
        state.withLock { $0.isClosed = true }
    }

    // MARK: - Internals shared by the extensions

    /// Rewrites the log as a snapshot of `state` (header, objects, names) and switches to it.
    func compactLocked(_ state: inout StoreState) throws(StoreError) {
        let header = LogHeader(
            bootID: state.bootID, capacity: state.allocator.capacity, arenaCount: 1, lastID: state.ids.last,
            instanceID: configuration.instanceID)
        let log = try MetadataLog.writeSnapshot(
            directory: configuration.directory, header: header, operations: state.snapshotOperations(),
            syncMode: configuration.syncMode)
        state.log.close()
        state.log = log
        state.compactedSize = log.size
    }

    /// Appends one record (all of `operations`, atomically) unless the store is closed. Call it
    /// before changing the in-memory state, so a failed append leaves everything as it was.
    func appendLocked(_ state: inout StoreState, _ operations: [LogOp]) throws(StoreError) {
        guard !state.isClosed else { throw StoreError.storeClosed }
        try state.log.append(operations)
    }

    /// Compacts the log once it exceeds the threshold and twice its compacted size. Called
    /// after a change is committed; a failure is not the caller's (its record is already in
    /// the log), so it is ignored here and retried after a later append.
    func compactIfNeededLocked(_ state: inout StoreState) {
        if state.log.size > max(configuration.compactionThreshold, 2 * state.compactedSize) {
            try? compactLocked(&state)
        }
    }
}

extension MetadataLog {
    /// A log value that owns no descriptor, used only while a state is being assembled.
    static var placeholder: MetadataLog {
        MetadataLog(path: "", fileDescriptor: -1, size: 0, syncMode: .processCrash)
    }
}
