// vineyard-csi: SharedMemoryStore
// StoreUsage.swift: usage figures of one store.

/// A consistent snapshot of a store's usage.
public struct StoreUsage: Sendable, Hashable {
    /// The store's capacity in bytes (the arena size), shared by the arena and the blob files.
    public var capacity: Int
    /// Bytes used in the arena and in blob files: sealed blobs, unsealed blobs' reservations,
    /// and deleted blobs still held by readers. Sizes are rounded up to the allocation
    /// granularity (64 bytes in the arena, pages for files).
    public var bytesUsed: Int
    /// The part of ``bytesUsed`` in blobs' own files.
    public var blobFileBytes: Int
    /// Blobs' own files (sealed, being written, or deleted but still held).
    public var blobFileCount: Int
    /// Sealed objects (blobs and metadata objects).
    public var objectCount: Int
    /// Bound names.
    public var nameCount: Int
    /// Unsealed blobs being written.
    public var unsealedCount: Int
    /// Free bytes that are already backed by memory and mapped (writes there run at memory
    /// speed).
    public var warmFreeBytes: Int

    /// `capacity - bytesUsed`.
    public var bytesAvailable: Int { capacity - bytesUsed }
}
