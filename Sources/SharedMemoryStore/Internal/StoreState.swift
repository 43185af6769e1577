// vineyard-csi: SharedMemoryStore
// StoreState.swift: everything a store's lock protects.

/// A sealed object as the store tracks it.
struct ObjectRecord: Sendable {
    var meta: ObjectMeta
    /// `meta` as compact JSON, kept so compaction never re-serializes.
    var metaJSON: [UInt8]
    /// Where a blob's bytes are (`nil` for metadata objects).
    var location: BlobLocation?
    /// The allocation behind `location` (`nil` when the blob is empty or not a blob).
    var extent: Extent?
    /// Live ``ObjectHandle``s.
    var readers = 0
    /// Names bound to this object (usually none or one).
    var names: [NameKey] = []
}

/// A deleted blob whose memory readers still hold.
struct Zombie: Sendable {
    var extent: Extent
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
    var names = SortedMap<NameKey, ObjectID>()
    var log: MetadataLog
    var ids: IDGenerator
    var bootID: String
    /// Log size right after the last compaction.
    var compactedSize: Int
    var isClosed = false

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
