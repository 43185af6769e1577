// vineyard-csi: StoreBackend
// ObjectBackend+Links.swift: publishing a hard-linked file's new version under all its names.

public import VineyardObjects

extension ObjectBackend {
    /// ``publish(_:meta:name:)``, binding the new version also to every other name under
    /// `prefix` that names the version it replaces: the names of a hard-linked file move to
    /// its new version together. The embedded store does it in one log record, so no reader
    /// and no restart sees the names disagree; a backend that cannot list an object's names
    /// (without ``BackendCapabilities/sharedNames``) has no hard links and binds `name` alone.
    public func publish(
        _ version: any FileVersion, meta: ObjectMeta, name: String, withNamesSharingItsObjectUnder prefix: String
    ) throws(BackendError) -> PublishedVersion {
        guard let embedded = self as? EmbeddedBackend else { return try publish(version, meta: meta, name: name) }
        return try embedded.publish(version, meta: meta, name: name, sharingNamesUnder: prefix)
    }
}
