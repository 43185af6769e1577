//
// vineyard-csi: VolumeFS
//
// VolumeFileSystem+Socket.swift: what the volume's vineyard socket needs from the file system.

import FUSEKit
import SharedMemoryStore
import StoreBackend

extension VolumeFileSystem {
    /// The name of the vineyard socket at the root of every volume.
    public static let socketFileName = "vineyard.sock"

    /// The metadata field naming the volume an object belongs to; objects created through
    /// the volume's socket carry it too, so they are scoped (and purged) with the volume.
    public static let ownerMetadataKey = NodeMetadata.volumeKey

    /// The type name of the socket's placeholder object.
    static let socketPlaceholderTypename = "vineyard-csi::SocketPlaceholder"

    /// The prefix of every store name of a volume (`"<volumeID>/"`).
    public static func storeNamePrefix(volumeID: String) -> String {
        VolumeNaming(volumeID: volumeID).rootPrefix
    }

    /// The `source` field of the volume's mounts in mountinfo (the FUSE fsname).
    public static func mountSource(volumeID: String) -> String {
        "vineyard:" + volumeID
    }

    /// Makes sure the volume's root holds the entry `vineyard.sock` that the node plugin
    /// bind-mounts the real socket over: an object without bytes, which reads as an empty
    /// file until the socket covers it. While the socket is mounted over it the kernel itself
    /// refuses to remove, rename or replace it (`EBUSY`). Call it before serving the volume.
    ///
    /// - Throws: ``VolumeFSError`` when the backend refuses the object.
    public static func ensureSocketPlaceholder(backend: any ObjectBackend, volumeID: String) throws(VolumeFSError) {
        try validate(volumeID: volumeID)
        let naming = VolumeNaming(volumeID: volumeID)
        let name = naming.objectName(socketFileName)
        let attributes = PosixAttributes(permissions: 0o666, uid: 0, gid: 0, time: .now)
        var meta = ObjectMeta(typename: socketPlaceholderTypename, instanceID: backend.instanceID, isTransient: false)
        attributes.encode(into: &meta.fields)
        meta.fields[NodeMetadata.volumeKey] = .string(volumeID)
        do throws(BackendError) {
            let previous = try backend.lookUp(name)
            if let previous, try backend.meta(previous)?.typename == socketPlaceholderTypename { return }
            // Replaces whatever a user stored under that name before sockets existed.
            _ = try backend.createObject(meta, name: name)
            if let previous { try? backend.delete([previous], deep: true) }
        } catch {
            throw VolumeFSError(code: .store, message: "cannot create \(socketFileName) in volume \(volumeID)", backendError: error)
        }
        VolumeAccounting.live(backend: backend, volumeID: volumeID)?.recount()
    }

    /// ``ensureSocketPlaceholder(backend:volumeID:)`` in the embedded store.
    public static func ensureSocketPlaceholder(store: ObjectStore, volumeID: String) throws(VolumeFSError) {
        try ensureSocketPlaceholder(backend: EmbeddedBackend(store: store), volumeID: volumeID)
    }

    /// Recounts a volume's usage after its names changed behind the file system's back (through
    /// the volume's vineyard socket). O(names in the volume); does nothing unless a file
    /// system of the volume is live in this process.
    public static func refreshUsage(backend: any ObjectBackend, volumeID: String) {
        VolumeAccounting.live(backend: backend, volumeID: volumeID)?.recount()
    }

    /// ``refreshUsage(backend:volumeID:)`` in the embedded store.
    public static func refreshUsage(store: ObjectStore, volumeID: String) {
        refreshUsage(backend: EmbeddedBackend(store: store), volumeID: volumeID)
    }
}
