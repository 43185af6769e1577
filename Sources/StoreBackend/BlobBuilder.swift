// vineyard-csi: StoreBackend
// BlobBuilder.swift: a blob being written, before it is sealed.

public import VineyardObjects

/// An unsealed blob: written in place, then sealed (immutable from then on) or discarded.
/// Nobody but its builder sees it before it is sealed.
public protocol BlobBuilder: AnyObject, Sendable {
    /// The blob's identifier (valid once sealed).
    var id: ObjectID { get }
    /// Bytes written so far (the blob's size once sealed).
    var size: Int { get }
    /// Copies `bytes` to `offset`, growing the blob as needed (within what the backend allows).
    func write(at offset: Int, _ bytes: UnsafeRawBufferPointer) throws(BackendError)
    /// Seals the blob with `meta` (stamps such as the owning volume; `nbytes` and the type are
    /// the backend's) and returns its identifier.
    func seal(meta: ObjectMeta?) throws(BackendError) -> ObjectID
    /// Gives the blob's memory back; it never becomes visible.
    func discard()
}
