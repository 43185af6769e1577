// vineyard-csi: StoreBackend
// EmbeddedBackend+Files.swift: files in the embedded store: blobs read in place, versions written in place.

import POSIXCore
import SharedMemoryStore

extension EmbeddedBackend {
    public var identity: ObjectIdentifier { ObjectIdentifier(store) }
    public var instanceID: UInt64 { store.configuration.instanceID }

    /// In place: one log record, no data copied.
    public func updateMeta(_ id: ObjectID, name: String, _ body: (inout ObjectMeta) -> Void) throws(BackendError) {
        do {
            try store.updateMeta(id, body)
        } catch {
            throw Self.failure(error)
        }
    }

    public func retire(_ id: ObjectID) throws(BackendError) {
        do {
            _ = try store.deleteIfUnnamed(id)
        } catch {
            throw Self.failure(error)
        }
    }

    public func renameName(from: String, to: String) throws(BackendError) -> ObjectID? {
        do {
            return try store.renameName(from: from, to: to)
        } catch {
            throw Self.failure(error)
        }
    }

    public func listDirectory(_ prefix: String, after: ListedName?, limit: Int) throws(BackendError) -> [ListedName] {
        let cursor: DirectoryEntry? = after.map {
            switch $0 {
            case .object(let name, let id): return .object(name: name, id: id)
            case .directory(let name): return .directory(name: name)
            }
        }
        return store.listDirectory(prefix, after: cursor, limit: limit).map {
            switch $0 {
            case .object(let name, let id): return .object(name: name, id: id)
            case .directory(let name): return .directory(name: name)
            }
        }
    }

    /// A blob's length, or the size of the `.npy` file a tensor or data frame reads as
    /// (``ObjectFileView``); other objects read as empty files.
    public func fileSize(of id: ObjectID, meta: ObjectMeta) -> Int {
        id.isBlob ? meta.nbytes : ObjectFileView(meta: meta)?.size ?? 0
    }

    public func openFile(_ id: ObjectID) throws(BackendError) -> (any SealedFile)? {
        guard let handle = store.object(id) else { return nil }
        return EmbeddedFile(store: store, handle: handle)
    }

    public func startVersion(from base: (any SealedFile)?, keeping: Int) throws(BackendError) -> any FileVersion {
        let kept = min(keeping, base?.size ?? 0)
        let bytes = try base.map { (base) throws(BackendError) in try base.read(at: 0, count: kept) } ?? .empty
        let version: EmbeddedVersion
        do {
            version = EmbeddedVersion(store: store, blob: try store.createBlob(expectedSize: kept))
        } catch {
            throw Self.failure(error)
        }
        do throws(BackendError) {
            switch bytes {
            case .mapped(let pieces, let keepAlive):
                var offset = 0
                for piece in pieces {
                    try version.write(at: offset, piece)
                    offset += piece.count
                }
                withExtendedLifetime(keepAlive) {}
            case .copied(let copied):
                try version.write(at: 0, copied)
            }
        } catch {
            version.discard()
            throw error
        }
        return version
    }

    public func adoptVersion(at extent: VersionExtent, size: Int) throws(BackendError) -> any FileVersion {
        do throws(StoreError) {
            let blob: BlobWriter
            if let id = extent.ownFile {
                blob = try store.adoptUnsealedBlob(id: id, size: size)
            } else {
                blob = try store.adoptUnsealedBlob(offset: extent.offset, capacity: extent.capacity, size: size)
            }
            return EmbeddedVersion(store: store, blob: blob)
        } catch {
            throw Self.failure(error)
        }
    }

    /// A new name is sealed and bound in one log record; a replaced one is swapped after the
    /// seal, which tells exactly what was replaced.
    public func publish(_ version: any FileVersion, meta: ObjectMeta, name: String) throws(BackendError) -> PublishedVersion {
        try publish(version, meta: meta, name: name, sharingNamesUnder: nil)
    }

    /// ``publish(_:meta:name:)``, binding also every name under `prefix` that shares the
    /// replaced version (a hard-linked file's other names) in the same log record.
    func publish(_ version: any FileVersion, meta: ObjectMeta, name: String, sharingNamesUnder prefix: String?)
        throws(BackendError) -> PublishedVersion
    {
        guard let blob = (version as? EmbeddedVersion)?.blob else {
            throw BackendError(errno: .invalid, underlying: StoreError.invalidArgument("a version of another backend"))
        }
        let id: ObjectID
        var replaced: ObjectID?
        do throws(StoreError) {
            if store.name(name) == nil {
                id = try store.seal(blob, meta: meta, name: name)
            } else {
                id = try store.seal(blob, meta: meta)
                do throws(StoreError) {
                    if let prefix {
                        replaced = try store.putName(name, id, withNamesSharingItsObjectUnder: prefix)
                    } else {
                        replaced = try store.putName(name, id)
                    }
                } catch {
                    try? store.delete(id)  // the old version stays
                    throw error
                }
            }
        } catch {
            throw Self.failure(error)
        }
        guard let replaced, replaced != id else { return PublishedVersion(id: id, replaced: nil, replacedMeta: nil) }
        let replacedMeta = store.meta(replaced)
        _ = try? store.deleteIfUnnamed(replaced)  // a snapshot or clone may still name it
        return PublishedVersion(id: id, replaced: replaced, replacedMeta: replacedMeta)
    }
}

/// A sealed object of the embedded store opened as a file: a blob's bytes in place, or the
/// `.npy` rendering of a tensor or data frame. The handle keeps the memory from being reused.
final class EmbeddedFile: SealedFile {
    let store: ObjectStore
    let handle: ObjectHandle
    let view: ObjectFileView?

    init(store: ObjectStore, handle: ObjectHandle) {
        self.store = store
        self.handle = handle
        self.view = handle.id.isBlob ? nil : ObjectFileView(meta: handle.meta)
    }

    var id: ObjectID { handle.id }
    var meta: ObjectMeta { handle.meta }
    var size: Int { view?.size ?? handle.size }

    func openOwnFile() throws(BackendError) -> Int32? {
        guard view == nil, handle.isOwnFile, handle.size > 0 else { return nil }
        do {
            return try handle.openFile()
        } catch {
            throw EmbeddedBackend.failure(error)
        }
    }

    func read(at offset: Int, count: Int) throws(BackendError) -> FileBytes {
        if let view { return view.read(store: store, offset: offset, size: count) }
        let bytes = handle.bytes
        guard offset < bytes.count else { return .empty }
        let end = offset + min(count, bytes.count - offset)
        return .mapped([UnsafeRawBufferPointer(rebasing: bytes[offset..<end])], keepAlive: handle)
    }
}

/// A version written in place in one growable blob of the embedded store.
final class EmbeddedVersion: FileVersion {
    let store: ObjectStore
    let blob: BlobWriter

    init(store: ObjectStore, blob: BlobWriter) {
        self.store = store
        self.blob = blob
    }

    var size: Int { blob.size }

    func write(at offset: Int, _ bytes: UnsafeRawBufferPointer) throws(BackendError) {
        do {
            try blob.write(at: offset, bytes)
        } catch {
            throw EmbeddedBackend.failure(error)
        }
    }

    func truncate(to size: Int) throws(BackendError) {
        do {
            try blob.truncate(to: size)
        } catch {
            throw EmbeddedBackend.failure(error)
        }
    }

    func read(at offset: Int, count: Int) throws(BackendError) -> [UInt8] {
        do {
            let size = blob.size
            return try blob.withUnsafeBytes { bytes in
                let end = min(size, bytes.count)
                guard offset < end else { return [] }
                return Array(bytes[offset..<offset + min(count, end - offset)])
            }
        } catch {
            throw EmbeddedBackend.failure(error)
        }
    }

    var extent: VersionExtent? {
        let location = blob.location
        return location.isOwnFile
            ? VersionExtent(ownFile: blob.id) : VersionExtent(offset: location.offset, capacity: blob.capacity)
    }

    func discard() {
        _ = blob.discard()
    }
}
