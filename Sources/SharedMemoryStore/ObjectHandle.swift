// vineyard-csi: SharedMemoryStore
// ObjectHandle.swift: a reader's reference to a sealed object.

import Glibc
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
/// ``bytes`` or splice from the descriptor at the offset. A blob in its own file
/// (``BlobLocation/isOwnFile``) has no arena descriptor: ``openFile()`` gives a descriptor of
/// its file, whose byte 0 is the blob's byte 0 (a FUSE passthrough backing file, or a vineyard
/// client's store fd with offset 0). The handle keeps that file from being removed.
public final class ObjectHandle: Sendable {
    /// The object's identifier.
    public let id: ObjectID
    /// The object's metadata (with ``ObjectMeta/id`` set).
    public let meta: ObjectMeta
    /// Where the bytes are, for a blob (`nil` for a metadata object).
    public let location: BlobLocation?
    let store: ObjectStore
    /// The address of byte 0 (0 without bytes), an integer so the handle stays `Sendable`.
    private let baseAddress: UInt
    private let released = Atomic<Bool>(false)

    init(store: ObjectStore, id: ObjectID, meta: ObjectMeta, location: BlobLocation?, base: UnsafeMutableRawPointer?) {
        self.store = store
        self.id = id
        self.meta = meta
        self.location = location
        self.baseAddress = UInt(bitPattern: base)
    }

    deinit {
        release()
    }

    /// The blob's bytes in the shared mapping of the arena or of its own file (empty for a
    /// metadata object or an empty blob). Valid until ``release()``.
    public var bytes: UnsafeRawBufferPointer {
        guard let location, location.size > 0, baseAddress != 0 else {
            return UnsafeRawBufferPointer(start: nil, count: 0)
        }
        return UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: baseAddress), count: location.size)
    }

    /// The blob's size in bytes (0 for a metadata object).
    public var size: Int { location?.size ?? 0 }

    /// The arena's descriptor, or -1 when the object has no bytes in the arena (metadata
    /// objects, empty blobs, and blobs in their own files: see ``openFile()``). Owned by the
    /// store: do not close it.
    public var fileDescriptor: Int32 {
        size > 0 && !location!.isOwnFile ? store.arena.fileDescriptor : -1
    }

    /// The bytes' offset in the file behind them: the arena, or 0 in a file of their own (0
    /// when there are none).
    public var fileOffset: Int { size > 0 ? location!.offset : 0 }

    /// Whether the bytes are in a file of their own (see ``openFile()``).
    public var isOwnFile: Bool { location?.isOwnFile ?? false }

    /// Opens a read-only descriptor of the blob's own file (the caller closes it); see
    /// ``ObjectStore/openBlobFile(_:)``. Works after the object was deleted, as long as this
    /// handle is held.
    ///
    /// - Returns: a new descriptor; byte 0 is the blob's byte 0.
    /// - Throws: ``StoreError/invalidArgument(_:)`` when the bytes are in the arena (or there
    ///   are none) or the handle was released, or the failing `open`.
    public func openFile() throws(StoreError) -> Int32 {
        guard !released.load(ordering: .acquiring) else {
            throw StoreError.invalidArgument("the handle of \(id) was released")
        }
        guard let path = location?.file, size > 0 else {
            throw StoreError.invalidArgument("object \(id) has no file of its own")
        }
        return try Sys.open(path, O_RDONLY)
    }

    /// Gives up the hold. After this, ``bytes`` must not be used. Calling it again does nothing.
    public func release() {
        if released.exchange(true, ordering: .acquiringAndReleasing) { return }
        store.releaseReader(id)
    }
}
