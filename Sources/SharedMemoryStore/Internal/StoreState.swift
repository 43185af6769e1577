// vineyard-csi: SharedMemoryStore
// StoreState.swift: everything a store's lock protects.

import Glibc

/// A sealed object as the store tracks it.
struct ObjectRecord: Sendable {
    var meta: ObjectMeta
    /// `meta` as compact JSON, kept so compaction never re-serializes.
    var metaJSON: [UInt8]
    /// Where a blob's bytes are (`nil` for metadata objects).
    var location: BlobLocation?
    /// The memory behind `location` (`nil` when the blob is empty or not a blob).
    var storage: BlobStorage?
    /// Live ``ObjectHandle``s.
    var readers = 0
    /// Names bound to this object (usually none or one).
    var names: [NameKey] = []
}

/// The memory of one blob: a range of the arena or a file of its own.
enum BlobStorage: Sendable {
    case arena(Extent)
    case file(BlobFile)

    var extent: Extent? {
        if case .arena(let extent) = self { return extent }
        return nil
    }

    var file: BlobFile? {
        if case .file(let file) = self { return file }
        return nil
    }

    /// The address of the blob's byte 0 in this process.
    func base(in arena: Arena) -> UnsafeMutableRawPointer? {
        switch self {
        case .arena(let extent): return arena.pointer(at: extent.offset)
        case .file(let file): return file.base
        }
    }

    /// Unmaps a file (when the store goes away; the file stays).
    mutating func unmapFile() {
        guard case .file(var file) = self else { return }
        file.unmap()
        self = .file(file)
    }
}

/// A deleted blob whose memory readers still hold.
struct Zombie: Sendable {
    var storage: BlobStorage
    var readers: Int
}

/// A weak reference to an unsealed blob's writer, so `delete` can discard it.
final class PendingWriter: Sendable {
    weak let writer: BlobWriter?

    init(_ writer: BlobWriter) {
        self.writer = writer
    }
}

/// The mutable state of an ``ObjectStore``, guarded by its mutex.
struct StoreState: Sendable {
    var allocator: ArenaAllocator
    var objects: [ObjectID: ObjectRecord] = [:]
    var zombies: [ObjectID: Zombie] = [:]
    var pending: [ObjectID: PendingWriter] = [:]
    /// Bytes of capacity taken by blob files (sealed, being written, or deleted but held).
    var fileBytes = 0
    /// Blob files.
    var fileCount = 0
    /// Files of blobs an earlier process was writing when it stopped, by identifier, with their
    /// lengths: not counted as used, kept for ``ObjectStore/adoptUnsealedBlob(id:size:)`` until
    /// capacity is needed or ``ObjectStore/removeOrphanedBlobFiles()`` is called.
    var orphans: [ObjectID: (path: String, length: Int)] = [:]
    var names = SortedMap<NameKey, ObjectID>()
    var log: MetadataLog
    var ids: IDGenerator
    var bootID: String
    /// Log size right after the last compaction.
    var compactedSize: Int
    var isClosed = false

    /// Bytes counted against the capacity: the arena's allocations and the blob files.
    var bytesUsed: Int { allocator.bytesAllocated + fileBytes }

    /// Frees a blob's memory: an arena range returns to the free list, a file is unmapped and
    /// removed.
    mutating func free(_ storage: BlobStorage) {
        switch storage {
        case .arena(let extent):
            allocator.free(extent, warm: true)
        case .file(var file):
            fileBytes -= file.accountedBytes
            fileCount -= 1
            file.remove()
        }
    }

    /// Makes room for `bytes` more of capacity or throws ``StoreError/outOfMemory(requested:available:)``.
    /// Files nobody adopted are removed first if the room is needed (they hold memory that
    /// counts as free).
    mutating func ensureRoom(_ bytes: Int) throws(StoreError) {
        let capacity = allocator.capacity
        if bytesUsed + bytes > capacity - orphans.values.reduce(0, { $0 + BlobFile.pageRounded($1.length) }) {
            removeOrphans()
        }
        guard bytesUsed + bytes <= capacity else {
            throw StoreError.outOfMemory(requested: bytes, available: capacity - bytesUsed)
        }
    }

    /// Removes the files nobody adopted.
    mutating func removeOrphans() {
        for (_, orphan) in orphans { _ = unlink(orphan.path) }
        orphans.removeAll()
    }

    /// Binds `name` to `id` (the object must exist); returns the previous binding.
    @discardableResult
    mutating func bind(_ name: NameKey, to id: ObjectID) -> ObjectID? {
        let previous = names.updateValue(id, forKey: name)
        if let previous {
            if previous == id { return previous }
            objects[previous]?.names.removeAll { $0 == name }
        }
        objects[id]?.names.append(name)
        return previous
    }

    /// Removes the binding of `name`; returns what it was bound to.
    @discardableResult
    mutating func unbind(_ name: NameKey) -> ObjectID? {
        guard let previous = names.removeValue(forKey: name) else { return nil }
        objects[previous]?.names.removeAll { $0 == name }
        return previous
    }

    /// The log operations that recreate the current state.
    func snapshotOperations() -> [LogOp] {
        var operations: [LogOp] = []
        operations.reserveCapacity(objects.count + names.count)
        for (id, record) in objects.sorted(by: { $0.key < $1.key }) {
            let location = (record.location?.size ?? 0) > 0 ? record.location : nil
            operations.append(.putObject(id: id, location: location, meta: record.metaJSON))
        }
        names.forEach(from: names.startIndex) { name, id in
            operations.append(.putName(name.string, id))
            return true
        }
        return operations
    }
}
