// vineyard-csi: StoreBackend
// ObjectBackend+Links.swift: moving every name of a hard-linked file to its new version.

import SharedMemoryStore
public import VineyardObjects

extension ObjectBackend {
    /// Binds `name` to `id` together with every other name under `prefix` bound to the same
    /// object as `name`: the names of a hard-linked file move to its new version together.
    /// The embedded store does it in one log record, so no reader and no restart sees the
    /// names disagree; a backend that cannot list an object's names
    /// (``BackendCapabilities/sharedNames``) has no hard links and binds `name` alone.
    ///
    /// - Returns: the object `name` was bound to before, if any (it is not deleted).
    @discardableResult
    public func bind(_ name: String, to id: ObjectID, withNamesSharingItsObjectUnder prefix: String)
        throws(BackendError) -> ObjectID?
    {
        guard let embedded = self as? EmbeddedBackend else { return try bind(name, to: id) }
        do {
            return try embedded.store.putName(name, id, withNamesSharingItsObjectUnder: prefix)
        } catch {
            throw EmbeddedBackend.failure(error)
        }
    }
}
