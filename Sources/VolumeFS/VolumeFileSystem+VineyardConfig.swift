// vineyard-csi: VolumeFS
// VolumeFileSystem+VineyardConfig.swift: the vineyard-config.yaml at the root of every volume.

import FUSEKit
import SharedMemoryStore
import StoreBackend

extension VolumeFileSystem {
    /// The name of vineyard's configuration file at the root of every volume. vineyard's clients
    /// read `/var/run/vineyard-config.yaml` (or `$VINEYARD_CONFIG`) when given no socket, so a
    /// task with the volume mounted at `/var/run` reaches the volume's socket with no arguments.
    public static let vineyardConfigFileName = "vineyard-config.yaml"

    /// The configuration's text: vineyard's format, the socket next to the file (a relative
    /// `IPCSocket` is resolved against the file's directory by the client).
    public static let vineyardConfigText = """
        # vineyard's client configuration for this volume (written by vineyard-csi; read-only).
        Vineyard:
          IPCSocket: \(socketFileName)

        """

    /// Makes sure the volume's root holds ``vineyardConfigFileName``, read-only (mode 0444),
    /// as the socket placeholder is made: an object of the volume bound to the name. Call it
    /// before serving the volume.
    ///
    /// - Throws: ``VolumeFSError`` when the store refuses the file.
    public static func ensureVineyardConfig(backend: any ObjectBackend, volumeID: String) throws(VolumeFSError) {
        try validate(volumeID: volumeID)
        let naming = VolumeNaming(volumeID: volumeID)
        let name = naming.objectName(vineyardConfigFileName)
        let bytes = Array(vineyardConfigText.utf8)
        let attributes = PosixAttributes(permissions: 0o444, uid: 0, gid: 0, time: .now)
        let meta = NodeMetadata.file(size: bytes.count, attributes: attributes, volumeID: volumeID, instanceID: backend.instanceID)
        do throws(BackendError) {
            if let id = try backend.lookUp(name), let current = try backend.meta(id),
                backend.fileSize(of: id, meta: current) == bytes.count,
                current.fields[NodeMetadata.volumeKey] == .string(volumeID),
                PosixAttributes(meta: current, defaultPermissions: 0).permissions == 0o444
            {
                return
            }
            // Replaces whatever a user stored under that name before.
            let version = try backend.startVersion(from: nil, keeping: 0)
            do throws(BackendError) {
                try version.write(at: 0, bytes)
                _ = try backend.publish(version, meta: meta, name: name)
            } catch {
                version.discard()
                throw error
            }
        } catch {
            throw VolumeFSError(
                code: .store, message: "cannot create \(vineyardConfigFileName) in volume \(volumeID)", backendError: error)
        }
        VolumeAccounting.live(backend: backend, volumeID: volumeID)?.recount()
    }

    /// ``ensureVineyardConfig(backend:volumeID:)`` in the embedded store.
    public static func ensureVineyardConfig(store: ObjectStore, volumeID: String) throws(VolumeFSError) {
        try ensureVineyardConfig(backend: EmbeddedBackend(store: store), volumeID: volumeID)
    }
}
