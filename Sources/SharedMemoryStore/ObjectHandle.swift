// vineyard-csi: SharedMemoryStore
// ObjectHandle.swift: a reader's reference to a sealed object.

import Synchronization

/// A reader's hold on a sealed object: its metadata and, for a blob, its bytes in place.
///
/// ``bytes`` points into the store's shared mapping; nothing is copied. The handle counts as a
/// reference: while it is alive (until ``release()`` or deinitialization) the blob's memory is
/// not reused, even if the object is deleted or its name is removed or rebound. The handle
/// also keeps its ``ObjectStore`` — and so the mapping and the descriptor — alive.
///
/// To pass the bytes to another process, send ``fileDescriptor`` (for example with
/// `SCM_RIGHTS`) with ``fileOffset`` and ``size``; to answer a FUSE read, reply from
/// ``bytes`` or splice from the descriptor at the offset.
public final class ObjectHandle: Sendable {
    /// The object's identifier.
    public let id: ObjectID
    /// The object's metadata (with ``ObjectMeta/id`` set).
    public let meta: ObjectMeta
    /// Where the bytes are, for a blob (`nil` for a metadata object).
    public let location: BlobLocation?
    let store: ObjectStore
    private let released = Atomic<Bool>(false)

    init(store: ObjectStore, id: ObjectID, meta: ObjectMeta, location: BlobLocation?) {
        self.store = store
        self.id = id
        self.meta = meta
        self.location = location
    }

    deinit {
        release()
    }

    /// The blob's bytes in the shared mapping (empty for a metadata object or an empty blob).
    /// Valid until ``release()``.
    public var bytes: UnsafeRawBufferPointer {
        guard let location, location.size > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: store.arena.pointer(at: location.offset), count: location.size)
    }

    /// The blob's size in bytes (0 for a metadata object).
    public var size: Int { location?.size ?? 0 }

    /// The arena's descriptor, or -1 when the object has no bytes in the arena (metadata
    /// objects and empty blobs). Owned by the store: do not close it.
    public var fileDescriptor: Int32 {
        size > 0 ? store.arena.fileDescriptor : -1
    }

    /// The bytes' offset in the arena file (0 when there are none).
    public var fileOffset: Int { size > 0 ? location!.offset : 0 }

    /// Gives up the hold. After this, ``bytes`` must not be used. Calling it again does nothing.
    public func release() {
        if released.exchange(true, ordering: .acquiringAndReleasing) { return }
        store.releaseReader(id)
    }
}
