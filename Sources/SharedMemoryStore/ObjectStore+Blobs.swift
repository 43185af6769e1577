// vineyard-csi: SharedMemoryStore
// ObjectStore+Blobs.swift: creating, growing and sealing blobs.

import Synchronization

/// Where a new blob's bytes go.
public enum BlobPlacement: Sendable, Hashable {
    /// By size: a file of its own once the reservation reaches
    /// ``StoreConfiguration/blobFileThreshold`` (growth included), the arena below it or when
    /// the threshold is not set.
    case automatic
    /// Always the arena, however large the blob grows (for a caller that can only pass the
    /// arena's descriptor and an offset).
    case arena
    /// Always a file of its own, whatever its size (a file that will be served by FUSE
    /// passthrough while it is written).
    case ownFile
}

extension ObjectStore {
    /// Starts a new, unsealed blob.
    ///
    /// The blob gets its identifier (bit 63 set) now, so a socket server can report it before
    /// the client writes. It is invisible to ``object(_:)``, names and listings until
    /// ``seal(_:meta:name:)``; dropping the writer unsealed frees its memory.
    ///
    /// - Parameters:
    ///   - expectedSize: bytes to reserve up front. Writes within the reservation never move the
    ///     blob, so its ``BlobWriter/location`` can be handed to another process. Writing past it
    ///     grows the blob (see ``BlobWriter``).
    ///   - writtenElsewhere: whether another process writes the reserved bytes through its own
    ///     mapping of the arena (a vineyard client after `create_buffer`). Fresh memory is then
    ///     only reserved, not also mapped into this process's page tables, which would be work
    ///     for nobody: the writer's own page faults do the mapping that counts.
    ///   - placement: the arena or a file of its own (see ``BlobPlacement``); by size unless
    ///     given.
    /// - Returns: the writer.
    /// - Throws: ``StoreError/outOfMemory(requested:available:)`` if the reservation does not
    ///   fit; ``StoreError/invalidArgument(_:)`` for a negative size.
    public func createBlob(
        expectedSize: Int = 0, writtenElsewhere: Bool = false, placement: BlobPlacement = .automatic
    ) throws(StoreError) -> BlobWriter {
        guard expectedSize >= 0 else { throw .invalidArgument("expectedSize must not be negative") }
        if belongsInOwnFile(expectedSize, placement: placement) {
            let id = try state.withLock { (state) throws(StoreError) -> ObjectID in
                guard !state.isClosed else { throw StoreError.storeClosed }
                return state.ids.next(blob: true)
            }
            let file = try createFile(for: id, length: expectedSize, populate: !writtenElsewhere)
            return state.withLock { state in
                let writer = BlobWriter(store: self, id: id, storage: .file(file), placement: placement)
                state.pending[id] = PendingWriter(writer)
                return writer
            }
        }
        let extent: Extent? =
            expectedSize > 0 ? try allocateBacked(expectedSize, populate: !writtenElsewhere) : nil
        do throws(StoreError) {
            return try state.withLock { (state) throws(StoreError) -> BlobWriter in
                guard !state.isClosed else { throw StoreError.storeClosed }
                let writer = BlobWriter(
                    store: self, id: state.ids.next(blob: true), storage: extent.map { .arena($0) }, placement: placement)
                state.pending[writer.id] = PendingWriter(writer)
                return writer
            }
        } catch {
            if let extent { freeExtent(extent) }
            throw error
        }
    }

    /// Opens a read-only descriptor of a sealed blob's own file (the caller closes it): to
    /// register as a FUSE passthrough backing file, or to send a vineyard client as the buffer's
    /// store fd (`data_offset` 0). The store itself keeps no descriptor per blob.
    ///
    /// - Parameter id: a sealed blob whose ``BlobLocation/isOwnFile``.
    /// - Returns: a new descriptor; byte 0 of the file is byte 0 of the blob, and the file is
    ///   exactly the blob's size.
    /// - Throws: ``StoreError/notFound(_:)`` when there is no such sealed object,
    ///   ``StoreError/invalidArgument(_:)`` when its bytes are in the arena (or it has none), or
    ///   the failing `open`.
    public func openBlobFile(_ id: ObjectID) throws(StoreError) -> Int32 {
        try state.withLock { (state) throws(StoreError) -> Int32 in
            guard let record = state.objects[id] else { throw StoreError.notFound(id) }
            guard let file = record.storage?.file else {
                throw StoreError.invalidArgument("object \(id) has no file of its own")
            }
            return try file.open(writable: false)
        }
    }

    /// Seals a blob: it becomes immutable and, in one atomic step, visible to readers (and bound
    /// to `name`, if given).
    ///
    /// Unused reserved memory beyond the blob's size returns to the free list.
    ///
    /// - Parameters:
    ///   - writer: an unsealed writer of this store.
    ///   - meta: the object's metadata; `nil` means vineyard's blob metadata
    ///     (``ObjectMeta/blob(size:instanceID:)``). Its ``ObjectMeta/id`` is set to the blob's.
    ///   - name: a name to bind to the sealed blob in the same step, replacing any previous
    ///     binding of that name.
    /// - Returns: the blob's identifier (the writer's ``BlobWriter/id``).
    /// - Throws: ``StoreError/alreadySealed``, ``StoreError/writerDiscarded``,
    ///   ``StoreError/invalidName(_:)``, ``StoreError/storeClosed``, or a failure to write the
    ///   log (in which case the writer stays open and nothing changed).
    @discardableResult
    public func seal(_ writer: BlobWriter, meta: ObjectMeta? = nil, name: String? = nil) throws(StoreError) -> ObjectID
    {
        guard writer.store === self else { throw .invalidArgument("the writer belongs to another store") }
        let key = try name.map { (name) throws(StoreError) in try ObjectStore.validatedName(name) }
        return try writer.state.withLock { (writerState) throws(StoreError) -> ObjectID in
            try writerState.checkOpen()
            let id = writer.id
            let size = writerState.size
            var meta = meta ?? ObjectMeta.blob(size: size, instanceID: configuration.instanceID)
            meta.id = id
            let metaJSON = meta.json.serializedBytes()
            let location: BlobLocation
            if let file = writerState.file, size > 0 {
                location = BlobLocation(file: file.path, size: size)
                // On a disk-backed directory the bytes must be stable before the record is.
                if configuration.syncMode == .hostCrash { try file.flush(size) }
            } else {
                location = BlobLocation(arena: 0, offset: size > 0 ? writerState.extent!.offset : 0, size: size)
                if configuration.syncMode == .hostCrash && size > 0 {
                    try arena.flush(Extent(offset: location.offset, length: size))
                }
            }
            try state.withLock { (state) throws(StoreError) in
                var operations: [LogOp] = [.putObject(id: id, location: size > 0 ? location : nil, meta: metaJSON)]
                if let key { operations.append(.putName(key.string, id)) }
                try appendLocked(&state, operations)
                var storage: BlobStorage?
                if let reserved = writerState.extent {
                    let kept = state.allocator.shrink(reserved, to: size)
                    storage = kept.length > 0 ? .arena(kept) : nil
                } else if var file = writerState.file {
                    if size > 0 {
                        // After the record: a crash in between leaves a longer file, which
                        // recovery cuts to the recorded size.
                        let before = file.accountedBytes
                        file.truncate(to: size)
                        state.fileBytes -= before - file.accountedBytes
                        storage = .file(file)
                    } else {
                        state.free(.file(file))
                    }
                }
                state.pending[id] = nil
                state.objects[id] = ObjectRecord(meta: meta, metaJSON: metaJSON, location: location, storage: storage)
                if let key { state.bind(key, to: id) }
                compactIfNeededLocked(&state)
            }
            writerState.extent = nil
            writerState.file = nil
            writerState.status = .sealed
            return id
        }
    }

    // MARK: - Memory for writers

    /// Whether a blob reserving `length` bytes gets (or moves into) a file of its own.
    func belongsInOwnFile(_ length: Int, placement: BlobPlacement) -> Bool {
        switch placement {
        case .arena: return false
        case .ownFile: return true
        case .automatic:
            guard let threshold = configuration.blobFileThreshold else { return false }
            return length >= threshold
        }
    }

    /// Creates blob `id`'s own file with `length` bytes reserved, counting them against the
    /// capacity (outside the store's lock: populating a large file takes a while).
    func createFile(for id: ObjectID, length: Int, populate: Bool) throws(StoreError) -> BlobFile {
        let accounted = BlobFile.pageRounded(length)
        try state.withLock { (state) throws(StoreError) in
            guard !state.isClosed else { throw StoreError.storeClosed }
            try state.ensureRoom(accounted)
            state.fileBytes += accounted
            state.fileCount += 1
        }
        do throws(StoreError) {
            return try BlobFile.create(
                path: BlobFile.path(in: blobDirectory, for: id), length: length, populate: populate,
                hugePages: configuration.hugePages)
        } catch {
            let available = state.withLock { (state) -> Int in
                state.fileBytes -= accounted
                state.fileCount -= 1
                return state.allocator.capacity - state.bytesUsed
            }
            if case .outOfMemory = error { throw StoreError.outOfMemory(requested: length, available: available) }
            throw error
        }
    }

    /// Grows a writer's file to `length` bytes (counted against the capacity); on failure the
    /// file is as it was.
    func growFile(_ file: inout BlobFile, to length: Int, populate: Bool = true) throws(StoreError) {
        let added = BlobFile.pageRounded(length) - file.accountedBytes
        guard added > 0 else { return }
        try state.withLock { (state) throws(StoreError) in
            guard !state.isClosed else { throw StoreError.storeClosed }
            try state.ensureRoom(added)
            state.fileBytes += added
        }
        do throws(StoreError) {
            try file.grow(to: length, populate: populate, hugePages: configuration.hugePages)
        } catch {
            let available = state.withLock { (state) -> Int in
                state.fileBytes -= added
                return state.allocator.capacity - state.bytesUsed
            }
            if case .outOfMemory = error { throw StoreError.outOfMemory(requested: length, available: available) }
            throw error
        }
    }

    /// Allocates `size` bytes and makes sure all of it is backed (and, with `populate`, mapped
    /// here) before returning.
    func allocateBacked(_ size: Int, populate: Bool = true) throws(StoreError) -> Extent {
        let (placement, backOutsideLock) = try state.withLock {
            (state) throws(StoreError) -> (ArenaAllocator.Placement, Bool) in
            guard !state.isClosed else { throw StoreError.storeClosed }
            if state.fileBytes > 0 || !state.orphans.isEmpty { try state.ensureRoom(ArenaAllocator.roundUp(size)) }
            guard let placement = state.allocator.allocate(size) else {
                throw StoreError.outOfMemory(requested: size, available: state.allocator.bytesFree)
            }
            return (
                placement, try backLocked(&state, placement.extent, coldParts: placement.coldParts, populate: populate)
            )
        }
        if backOutsideLock {
            try backOutside(placement.extent, coldParts: placement.coldParts, requested: size, populate: populate)
        }
        return placement.extent
    }

    /// Grows an allocation in place if the following bytes are free, backing the new part.
    /// On failure the extension is undone (the original allocation is untouched).
    func extendBacked(_ extent: Extent, to length: Int) throws(StoreError) -> Extent? {
        let result = try state.withLock { (state) throws(StoreError) -> (Extent, [Extent], Bool)? in
            guard !state.isClosed else { throw StoreError.storeClosed }
            if state.fileBytes > 0 || !state.orphans.isEmpty {
                try state.ensureRoom(ArenaAllocator.roundUp(length) - extent.length)
            }
            guard let (grown, cold) = state.allocator.extend(extent, to: length) else { return nil }
            let added = Extent(offset: extent.end, length: grown.length - extent.length)
            return (grown, cold, try backLocked(&state, added, coldParts: cold))
        }
        guard let (grown, cold, backOutsideLock) = result else { return nil }
        if backOutsideLock {
            let added = Extent(offset: extent.end, length: grown.length - extent.length)
            try backOutside(added, coldParts: cold, requested: length)
        }
        return grown
    }

    /// Returns an allocation of a writer.
    func freeExtent(_ extent: Extent) {
        state.withLock { $0.allocator.free(extent, warm: true) }
    }

    /// Backs the cold parts of a fresh allocation. Small allocations are backed here, under the
    /// lock, a whole aligned chunk at a time (so neighbours allocated later are warm); large
    /// ones are left to the caller to back outside the lock (returns `true`), since nobody else
    /// can touch an allocation before it is returned. On failure `extent` is freed again.
    private func backLocked(
        _ state: inout StoreState, _ extent: Extent, coldParts: [Extent], populate: Bool = true
    ) throws(StoreError) -> Bool {
        guard !coldParts.isEmpty else { return false }
        if extent.length >= ObjectStore.backingChunk { return true }
        let chunk = ObjectStore.backingChunk
        let start = extent.offset / chunk * chunk
        let end = min(state.allocator.capacity, ArenaAllocator.roundUp(extent.end, to: chunk))
        do throws(StoreError) {
            try arena.back(Extent(offset: start, length: end - start), populate: populate)
        } catch {
            state.allocator.free(extent, warm: false)
            throw StoreError.outOfMemory(requested: extent.length, available: state.allocator.bytesFree)
        }
        state.allocator.markWarm(start..<end)
        return false
    }

    /// Backs cold parts outside the lock; on failure frees `extent` again.
    private func backOutside(
        _ extent: Extent, coldParts: [Extent], requested: Int, populate: Bool = true
    ) throws(StoreError) {
        do throws(StoreError) {
            for part in coldParts { try arena.back(part, populate: populate) }
        } catch {
            let available = state.withLock { (state) -> Int in
                state.allocator.free(extent, warm: false)
                return state.allocator.bytesFree
            }
            if case .outOfMemory = error { throw StoreError.outOfMemory(requested: requested, available: available) }
            throw error
        }
    }

    /// Discards an unsealed blob's allocation (writer side).
    ///
    /// After ``close()`` a blob's own file stays (unmapped): a process that closes its store
    /// and ends hands its unsealed files to the next one, as a killed one does, for
    /// ``adoptUnsealedBlob(id:size:)``.
    func discardPending(_ id: ObjectID, storage: BlobStorage?) {
        state.withLock { state in
            state.pending[id] = nil
            guard let storage else { return }
            if state.isClosed, case .file(var file) = storage {
                state.fileBytes -= file.accountedBytes
                state.fileCount -= 1
                file.unmap()
            } else {
                state.free(storage)
            }
        }
    }
}
