// vineyard-csi: SharedMemoryStore
// StoreUsage.swift: usage figures of one store.

/// A consistent snapshot of a store's usage.
public struct StoreUsage: Sendable, Hashable {
    /// The arena size in bytes.
    public var capacity: Int
    /// Bytes allocated in the arena: sealed blobs, unsealed blobs' reservations, and deleted
    /// blobs still held by readers. Sizes are rounded up to the allocation granularity.
    public var bytesUsed: Int
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
