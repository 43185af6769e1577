// vineyard-csi: VolumeFS
// VolumeFileSystem+VineyardConfig.swift: the vineyard-config.yaml at the root of every volume.

import FUSEKit
import SharedMemoryStore

extension VolumeFileSystem {
    /// The name of vineyard's configuration file at the root of every volume. vineyard's clients
    /// read `/var/run/vineyard-config.yaml` (or `$VINEYARD_CONFIG`) when given no socket, so a
    /// task with the volume mounted at `/var/run` reaches the volume's socket with no arguments.
    public static let vineyardConfigFileName = "vineyard-config.yaml"

    /// The configuration's text: vineyard's format, the socket next to the file (a relative
    /// `IPCSocket` is resolved against the file's directory by the client).
    public static let vineyardConfigText = vineyardConfigText(rpcEndpoint: nil)

    /// The configuration's text in cluster mode: also `RPCEndpoint`, the node's vineyardd's
    /// (`host:port`), which vineyard's client connects as its RPC client next to the socket.
    public static func vineyardConfigText(rpcEndpoint: String?) -> String {
        var text = """
            # vineyard's client configuration for this volume (written by vineyard-csi; read-only).
            Vineyard:
              IPCSocket: \(socketFileName)

            """
        if let rpcEndpoint { text += "  RPCEndpoint: \(rpcEndpoint)\n" }
        return text
    }

    /// Makes sure the volume's root holds ``vineyardConfigFileName``, read-only (mode 0444),
    /// as the socket placeholder is made: an object of the volume bound to the name. Call it
    /// before serving the volume.
    ///
    /// - Throws: ``VolumeFSError`` when the store refuses the file.
    public static func ensureVineyardConfig(store: ObjectStore, volumeID: String) throws(VolumeFSError) {
        try validate(volumeID: volumeID)
        let naming = VolumeNaming(volumeID: volumeID)
        let name = naming.objectName(vineyardConfigFileName)
        let bytes = Array(vineyardConfigText.utf8)
        if let id = store.name(name), let meta = store.meta(id), meta.nbytes == bytes.count,
            meta.fields[NodeMetadata.volumeKey] == .string(volumeID), PosixAttributes(meta: meta, defaultPermissions: 0).permissions == 0o444
        {
            return
        }
        var meta = ObjectMeta(
            typename: NodeMetadata.fileTypename, nbytes: bytes.count, instanceID: store.configuration.instanceID,
            isTransient: false)
        PosixAttributes(permissions: 0o444, uid: 0, gid: 0, time: .now).encode(into: &meta.fields)
        meta.fields[NodeMetadata.volumeKey] = .string(volumeID)
        do {
            // Replaces whatever a user stored under that name before.
            let previous = store.name(name)
            let writer = try store.createBlob(expectedSize: bytes.count)
            try writer.append(bytes)
            _ = try store.seal(writer, meta: meta, name: name)
            if let previous { try? store.delete(previous) }
        } catch {
            throw VolumeFSError(
                code: .store, message: "cannot create \(vineyardConfigFileName) in volume \(volumeID)", storeError: error)
        }
        VolumeAccounting.live(store: store, volumeID: volumeID)?.reset(to: VolumeAccounting.scan(store: store, naming: naming))
    }
}
