// vineyard-csi: SharedMemoryStore
// ObjectStore+Objects.swift: metadata objects, readers, and deletion.

import Synchronization

extension ObjectStore {
    // MARK: - Metadata objects

    /// A fresh non-blob identifier (bit 63 clear) from this store's generator, for callers that
    /// must know an identifier before creating the object (vineyard's `signature`, or an `id`
    /// to embed in the metadata passed to ``createObject(_:name:)``).
    public func makeObjectID() -> ObjectID {
        state.withLock { $0.ids.next(blob: false) }
    }

    /// Stores a metadata object (a vineyard metadata tree with no bytes of its own; its members
    /// usually reference blobs and other objects by identifier).
    ///
    /// Members are stored as given (complete nested trees, as vineyard's clients send them); the
    /// store does not require them to exist.
    ///
    /// - Parameters:
    ///   - meta: the metadata. If ``ObjectMeta/id`` is set it must be an unused non-blob
    ///     identifier (for example from ``makeObjectID()``); otherwise one is assigned.
    ///   - name: a name to bind in the same atomic step.
    /// - Returns: the object's identifier.
    /// - Throws: ``StoreError/invalidArgument(_:)`` for a blob or already used identifier,
    ///   ``StoreError/invalidName(_:)``, ``StoreError/storeClosed``, or a log failure.
    @discardableResult
    public func createObject(_ meta: ObjectMeta, name: String? = nil) throws(StoreError) -> ObjectID {
        let key = try name.map { (name) throws(StoreError) in try ObjectStore.validatedName(name) }
        return try state.withLock { (state) throws(StoreError) -> ObjectID in
            guard !state.isClosed else { throw StoreError.storeClosed }
            var meta = meta
            let id: ObjectID
            if let given = meta.id {
                guard !given.isBlob, given != .invalid else {
                    throw StoreError.invalidArgument("\(given) is a blob identifier")
                }
                guard state.objects[given] == nil, state.pending[given] == nil else {
                    throw StoreError.invalidArgument("\(given) is already in use")
                }
                id = given
            } else {
                id = state.ids.next(blob: false)
            }
            meta.id = id
            let metaJSON = meta.json.serializedBytes()
            var operations: [LogOp] = [.putObject(id: id, location: nil, meta: metaJSON)]
            if let key { operations.append(.putName(key.string, id)) }
            try appendLocked(&state, operations)
            state.ids.observe(id)
            state.objects[id] = ObjectRecord(meta: meta, metaJSON: metaJSON)
            if let key { state.bind(key, to: id) }
            compactIfNeededLocked(&state)
            return id
        }
    }

    /// Changes an object's metadata atomically.
    ///
    /// - Parameters:
    ///   - id: a sealed object.
    ///   - body: edits the metadata; runs under the store's lock, so it must be quick and must
    ///     not call the store. Changes to ``ObjectMeta/id`` are ignored.
    /// - Throws: ``StoreError/notFound(_:)``, ``StoreError/storeClosed``, or a log failure.
    public func updateMeta(_ id: ObjectID, _ body: (inout ObjectMeta) -> Void) throws(StoreError) {
        try state.withLock { (state) throws(StoreError) in
            guard var meta = state.objects[id]?.meta else { throw StoreError.notFound(id) }
            body(&meta)
            meta.id = id
            let metaJSON = meta.json.serializedBytes()
            try appendLocked(&state, [.replaceMeta(id, meta: metaJSON)])
            state.objects[id]!.meta = meta
            state.objects[id]!.metaJSON = metaJSON
            compactIfNeededLocked(&state)
        }
    }

    /// Vineyard's `persist`: marks the object and, recursively, its non-blob members (both the
    /// nested copies in its tree and the stored member objects) as not transient.
    ///
    /// - Parameter id: a sealed object.
    /// - Throws: ``StoreError/notFound(_:)``, ``StoreError/storeClosed``, or a log failure.
    public func persist(_ id: ObjectID) throws(StoreError) {
        try state.withLock { (state) throws(StoreError) in
            guard let root = state.objects[id]?.meta else { throw StoreError.notFound(id) }
            var changed: [ObjectID: ObjectMeta] = [:]
            var queue: [ObjectMeta] = [root]
            while let next = queue.popLast() {
                guard let memberID = next.id, !memberID.isBlob, changed[memberID] == nil,
                    var stored = state.objects[memberID]?.meta
                else { continue }
                ObjectStore.markPersistent(&stored)
                changed[memberID] = stored
                queue.append(contentsOf: next.members.values)
            }
            guard !changed.isEmpty else { return }
            var encoded: [(ObjectID, ObjectMeta, [UInt8])] = []
            for (memberID, meta) in changed.sorted(by: { $0.key < $1.key }) {
                encoded.append((memberID, meta, meta.json.serializedBytes()))
            }
            try appendLocked(&state, encoded.map { .replaceMeta($0.0, meta: $0.2) })
            for (memberID, meta, metaJSON) in encoded {
                state.objects[memberID]!.meta = meta
                state.objects[memberID]!.metaJSON = metaJSON
            }
            compactIfNeededLocked(&state)
        }
    }

    private static func markPersistent(_ meta: inout ObjectMeta) {
        if !(meta.id?.isBlob ?? false) { meta.isTransient = false }
        for key in Array(meta.members.keys) {
            markPersistent(&meta.members[key]!)
        }
    }

    // MARK: - Readers

    /// Opens a sealed object for reading.
    ///
    /// - Parameter id: the identifier.
    /// - Returns: a handle that keeps the object's memory alive, or `nil` if there is no sealed
    ///   object with this identifier (unsealed blobs are invisible).
    public func object(_ id: ObjectID) -> ObjectHandle? {
        state.withLock { state in
            guard let record = state.objects[id] else { return nil }
            state.objects[id]!.readers += 1
            return ObjectHandle(
                store: self, id: id, meta: record.meta, location: record.location,
                base: record.storage?.base(in: arena))
        }
    }

    /// Resolves a name and opens the object in one atomic step, so a concurrent rebinding or
    /// deletion yields either the old object or the new one, never a missing one in between.
    ///
    /// - Parameter name: the name.
    /// - Returns: a handle, or `nil` if the name is not bound.
    public func object(named name: String) -> ObjectHandle? {
        let key = NameKey(name)
        return state.withLock { state in
            guard let id = state.names[key], let record = state.objects[id] else { return nil }
            state.objects[id]!.readers += 1
            return ObjectHandle(
                store: self, id: id, meta: record.meta, location: record.location,
                base: record.storage?.base(in: arena))
        }
    }

    /// A sealed object's metadata, without taking a reference.
    ///
    /// - Parameter id: the identifier.
    /// - Returns: the metadata, or `nil`.
    public func meta(_ id: ObjectID) -> ObjectMeta? {
        state.withLock { $0.objects[id]?.meta }
    }

    /// Whether a sealed object or an unsealed blob has this identifier (vineyard's `exists`).
    public func exists(_ id: ObjectID) -> Bool {
        state.withLock { $0.objects[id] != nil || $0.pending[id] != nil }
    }

    /// Whether a sealed object has this identifier.
    public func isSealed(_ id: ObjectID) -> Bool {
        state.withLock { $0.objects[id] != nil }
    }

    /// Identifiers of all sealed objects, ascending.
    public func objectIDs() -> [ObjectID] {
        state.withLock { Array($0.objects.keys) }.sorted()
    }

    /// Metadata of sealed objects that satisfy a predicate, in ascending identifier order (for
    /// vineyard's `list_data`, which matches on ``ObjectMeta/typename``).
    ///
    /// - Parameters:
    ///   - limit: the most to return.
    ///   - predicate: runs outside the store's lock on a snapshot.
    /// - Returns: the matching metadata.
    public func objects(limit: Int? = nil, where predicate: (ObjectMeta) -> Bool) -> [ObjectMeta] {
        let snapshot = state.withLock { state in state.objects.values.map(\.meta) }
        var result: [ObjectMeta] = []
        for meta in snapshot.sorted(by: { $0.id! < $1.id! }) where predicate(meta) {
            if let limit, result.count >= limit { break }
            result.append(meta)
        }
        return result
    }

    func releaseReader(_ id: ObjectID) {
        state.withLock { state in
            if state.objects[id] != nil {
                state.objects[id]!.readers -= 1
                return
            }
            guard var zombie = state.zombies[id] else { return }
            zombie.readers -= 1
            if zombie.readers == 0 {
                state.zombies[id] = nil
                state.free(zombie.storage)
            } else {
                state.zombies[id] = zombie
            }
        }
    }

    // MARK: - Deletion

    /// Deletes an object: a sealed object (with every name bound to it, in one atomic step) or
    /// an unsealed blob (its writer is discarded).
    ///
    /// A deleted blob's memory is reused only after every ``ObjectHandle`` on it is released
    /// (a blob's own file is removed then; a process that opened or mapped it keeps its bytes).
    /// Deletion is shallow: members of a metadata object are separate objects.
    ///
    /// - Parameter id: the identifier.
    /// - Throws: ``StoreError/notFound(_:)``, ``StoreError/storeClosed``, or a log failure.
    public func delete(_ id: ObjectID) throws(StoreError) {
        for _ in 0..<2 {
            let pendingWriter = try state.withLock { (state) throws(StoreError) -> PendingWriter? in
                if let record = state.objects[id] {
                    var operations: [LogOp] = record.names.map { .deleteName($0.string) }
                    operations.append(.deleteObject(id))
                    try appendLocked(&state, operations)
                    for name in record.names { state.names.removeValue(forKey: name) }
                    state.objects[id] = nil
                    if let storage = record.storage {
                        if record.readers > 0 {
                            state.zombies[id] = Zombie(storage: storage, readers: record.readers)
                        } else {
                            state.free(storage)
                        }
                    }
                    compactIfNeededLocked(&state)
                    return nil
                }
                if let pending = state.pending[id] { return pending }
                throw StoreError.notFound(id)
            }
            guard let pendingWriter else { return }
            // The writer's lock comes before the store's, so discard outside the store's lock.
            guard let writer = pendingWriter.writer else { return }  // being deinitialized: it frees itself
            if writer.discard() { return }
            // It was sealed (or discarded) meanwhile: go round once more for the sealed object.
        }
    }
}
