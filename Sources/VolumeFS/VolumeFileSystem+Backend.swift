//
// vineyard-csi: VolumeFS
//
// VolumeFileSystem+Backend.swift: a volume's names and objects as a whole, in any backend.

import SharedMemoryStore
public import StoreBackend

extension VolumeFileSystem {
    /// Deletes every name of a volume and the objects nothing else names: everything named
    /// `"<volumeID>/…"`, and objects written for the volume that lost their name in a crash
    /// (where the backend can find them by the volume's stamp). Objects a snapshot or clone
    /// still names stay. Unmount first.
    ///
    /// - Parameters:
    ///   - backend: the backend holding the volume.
    ///   - volumeID: the volume.
    /// - Throws: ``VolumeFSError`` with ``VolumeFSError/Code/invalidVolumeID``, or
    ///   ``VolumeFSError/Code/store`` for the first step that failed (the others are still
    ///   attempted).
    public static func purge(backend: any ObjectBackend, volumeID: String) throws(VolumeFSError) {
        try validate(volumeID: volumeID)
        let naming = VolumeNaming(volumeID: volumeID)
        var failure: BackendError?
        func attempt<R>(_ body: () throws(BackendError) -> R) -> R? {
            do {
                return try body()
            } catch {
                if failure == nil { failure = error }
                return nil
            }
        }
        let named = attempt { () throws(BackendError) in try backend.names(withPrefix: naming.rootPrefix, limit: nil) } ?? []
        attempt { () throws(BackendError) in try backend.unbind(namesWithPrefix: naming.rootPrefix) }
        let stamped = attempt { () throws(BackendError) in
            try backend.objects(stampedWith: NodeMetadata.volumeKey, value: volumeID)
        } ?? nil
        var seen: Set<ObjectID> = []
        var unnamed: [ObjectID] = []
        for id in named.map(\.id) + (stamped ?? []) where seen.insert(id).inserted {
            if let names = attempt({ () throws(BackendError) in try backend.names(of: id) }) ?? nil, !names.isEmpty {
                continue
            }
            unnamed.append(id)
        }
        // Members go with their objects only where the backend cannot find the volume's own by
        // its stamp: elsewhere a member may be shared with a snapshot's object.
        attempt { () throws(BackendError) in try backend.delete(unnamed, deep: stamped == nil) }
        VolumeAccounting.live(backend: backend, volumeID: volumeID)?.recount()
        if let failure {
            throw VolumeFSError(code: .store, message: "cannot delete all objects of volume \(volumeID)", backendError: failure)
        }
    }

    /// How many names a volume has in a backend (files, directory markers, objects named
    /// through its socket) and the bytes of the objects they name, each object counted once:
    /// two backend calls however many names there are.
    ///
    /// - Parameters:
    ///   - backend: the backend holding the volume.
    ///   - volumeID: the volume.
    /// - Throws: the backend's failure (`ENOTCONN` while a vineyardd is unreachable).
    public static func namedContents(backend: any ObjectBackend, volumeID: String) throws(BackendError)
        -> (names: Int, bytes: Int)
    {
        let names = try backend.names(withPrefix: VolumeNaming(volumeID: volumeID).rootPrefix, limit: nil)
        let metas = try backend.metas(Array(Set(names.map(\.id))))
        return (names.count, metas.values.reduce(0) { $0 + max(0, $1.nbytes) })
    }
}
