// vineyard-csi: SharedMemoryStore
// ObjectStore+Adoption.swift: taking over an unsealed blob of a process that ended.

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
            guard state.allocator.claim(extent) else {
                throw StoreError.invalidArgument("bytes \(offset)..<\(offset + capacity) are in use: the blob is lost")
            }
            let writer = BlobWriter(store: self, id: state.ids.next(blob: true), extent: extent)
            writer.state.withLock { $0.size = size }
            state.pending[writer.id] = PendingWriter(writer)
            return writer
        }
    }
}
