// vineyard-csi: SharedMemoryStore
// ObjectStore+Adoption.swift: taking over an unsealed blob of a process that ended.

import Synchronization

extension ObjectStore {
    /// Takes over the bytes of an unsealed blob that an earlier process of this store was
    /// writing when it stopped (exited or was killed).
    ///
    /// Unsealed blobs are never logged, so after ``open(_:)`` their memory is free but still
    /// holds their bytes until something else is allocated there. Call this right after opening,
    /// before writing anything, with the writer's reservation (``BlobWriter/location`` offset
    /// and ``BlobWriter/capacity``) and size as the earlier process last recorded them: the
    /// range is claimed again and a new writer (with a new identifier) continues where the old
    /// one stopped.
    ///
    /// - Parameters:
    ///   - offset: the reservation's offset in the arena.
    ///   - capacity: the reservation's length (0 for a blob that never reserved memory).
    ///   - size: bytes written so far; at most `capacity`.
    /// - Returns: an open writer of `size` bytes.
    /// - Throws: ``StoreError/invalidArgument(_:)`` when the range is not entirely free any more
    ///   (something was allocated there since), out of the arena, or inconsistent;
    ///   ``StoreError/storeClosed``.
    public func adoptUnsealedBlob(offset: Int, capacity: Int, size: Int) throws(StoreError) -> BlobWriter {
        guard offset >= 0, capacity >= 0, size >= 0, size <= capacity else {
            throw .invalidArgument("impossible unsealed blob: offset \(offset), capacity \(capacity), size \(size)")
        }
        guard capacity > 0 else {
            guard size == 0 else { throw .invalidArgument("a blob without memory cannot have \(size) bytes") }
            return try createBlob(expectedSize: 0)
        }
        let extent = Extent(offset: offset, length: capacity)
        return try state.withLock { (state) throws(StoreError) -> BlobWriter in
            guard !state.isClosed else { throw StoreError.storeClosed }
            if state.fileBytes > 0 || !state.orphans.isEmpty { try state.ensureRoom(capacity) }
            guard state.allocator.claim(extent) else {
                throw StoreError.invalidArgument("bytes \(offset)..<\(offset + capacity) are in use: the blob is lost")
            }
            let writer = BlobWriter(
                store: self, id: state.ids.next(blob: true), storage: .arena(extent), placement: .automatic)
            writer.state.withLock { $0.size = size }
            state.pending[writer.id] = PendingWriter(writer)
            return writer
        }
    }

    /// Takes over an unsealed blob in a file of its own that an earlier process of this store
    /// was writing when it stopped (was killed, exited, or closed the store before its writers
    /// went away; an explicit ``BlobWriter/discard()`` removes the file): the counterpart of
    /// ``adoptUnsealedBlob(offset:capacity:size:)``.
    ///
    /// ``open(_:)`` keeps the files of unsealed blobs it finds (they count as free memory) until
    /// capacity is needed for something else or ``removeOrphanedBlobFiles()`` is called, so call
    /// this right after opening, with the writer's ``BlobWriter/id`` and size as the earlier
    /// process last recorded them. The writer keeps its identifier and its file (a descriptor a
    /// client still holds stays valid) and continues where the old one stopped.
    ///
    /// - Parameters:
    ///   - id: the earlier writer's identifier.
    ///   - size: bytes written so far; at most the file's length.
    /// - Returns: an open writer of `size` bytes.
    /// - Throws: ``StoreError/invalidArgument(_:)`` when there is no such file any more (the
    ///   blob is lost) or `size` exceeds it; ``StoreError/outOfMemory(requested:available:)``
    ///   when the file no longer fits the capacity; ``StoreError/storeClosed``.
    public func adoptUnsealedBlob(id: ObjectID, size: Int) throws(StoreError) -> BlobWriter {
        guard size >= 0 else { throw .invalidArgument("negative size \(size)") }
        return try state.withLock { (state) throws(StoreError) -> BlobWriter in
            guard !state.isClosed else { throw StoreError.storeClosed }
            guard let orphan = state.orphans.removeValue(forKey: id) else {
                throw StoreError.invalidArgument("no unsealed blob file of \(id): the blob is lost")
            }
            do throws(StoreError) {
                guard size <= orphan.length else {
                    throw StoreError.invalidArgument("\(size) bytes claimed, the file of \(id) holds \(orphan.length)")
                }
                try state.ensureRoom(BlobFile.pageRounded(orphan.length))
                let file = try BlobFile.attach(path: orphan.path, hugePages: configuration.hugePages)
                state.fileBytes += file.accountedBytes
                state.fileCount += 1
                let writer = BlobWriter(store: self, id: id, storage: .file(file), placement: .ownFile)
                writer.state.withLock { $0.size = size }
                state.pending[id] = PendingWriter(writer)
                return writer
            } catch {
                if Sys.exists(orphan.path) { state.orphans[id] = orphan }
                throw error
            }
        }
    }

    /// Identifiers of the unsealed blobs whose files ``open(_:)`` kept for adoption and nobody
    /// adopted yet, ascending.
    public var orphanedBlobFiles: [ObjectID] {
        state.withLock { Array($0.orphans.keys) }.sorted()
    }

    /// Removes the files of unsealed blobs that nobody adopted (call it once restart
    /// hand-over is done; capacity pressure removes them too).
    ///
    /// - Returns: how many files were removed.
    @discardableResult
    public func removeOrphanedBlobFiles() -> Int {
        state.withLock { state in
            let count = state.orphans.count
            state.removeOrphans()
            return count
        }
    }
}
