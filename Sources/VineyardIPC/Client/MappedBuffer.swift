// vineyard-csi: VineyardIPC
// MappedBuffer.swift: a blob's bytes in a vineyardd's shared memory, as this process maps them.

public import VineyardObjects

/// A blob's bytes in the mapping of a vineyardd's store file: no copy. The mapping lives as
/// long as any buffer refers to it (``owner``), even after the client's connection is gone, so
/// a pointer handed to the kernel (a FUSE read reply) never dangles.
public struct MappedBuffer: @unchecked Sendable {
    public let id: ObjectID
    /// Writable only between ``VineyardClient/createBuffer(size:)`` and ``VineyardClient/seal(_:)``.
    public let mutableBytes: UnsafeMutableRawBufferPointer
    /// Keeps the mapping alive; pass it along with the bytes (`nil` for empty blobs).
    public let owner: AnyObject?

    init(id: ObjectID, start: UnsafeMutableRawPointer?, count: Int, owner: AnyObject?) {
        self.id = id
        self.mutableBytes = UnsafeMutableRawBufferPointer(start: start, count: count)
        self.owner = owner
    }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(mutableBytes) }
}
