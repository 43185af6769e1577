// vineyard-csi: StoreBackend
// EmbeddedBackend.swift: the node's embedded shared-memory store as a backend.

import Glibc
import POSIXCore
public import SharedMemoryStore

/// The node's embedded ``ObjectStore``: blobs in the driver's own shared memory, which
/// outlives the process (``BackendCapabilities/restartAdoption``); names shared by
/// snapshots and clones (``BackendCapabilities/sharedNames``).
public final class EmbeddedBackend: ObjectBackend {
    public let store: ObjectStore

    public init(store: ObjectStore) {
        self.store = store
    }

    public var capabilities: BackendCapabilities {
        store.configuration.blobFileThreshold == nil ? .embedded : BackendCapabilities.embedded.union(.ownFiles)
    }

    /// The error of a store failure (`EIO` once the store is closed).
    static func failure(_ error: StoreError) -> BackendError {
        if case .storeClosed = error { return BackendError(errno: .io, underlying: error) }
        return BackendError(errno: error.errno, underlying: error)
    }

    public func createObject(_ meta: ObjectMeta, name: String?) throws(BackendError) -> ObjectID {
        do {
            return try store.createObject(meta, name: name)
        } catch {
            throw Self.failure(error)
        }
    }

    public func metas(_ ids: [ObjectID]) throws(BackendError) -> [ObjectID: ObjectMeta] {
        var metas: [ObjectID: ObjectMeta] = [:]
        for id in ids {
            if let meta = store.meta(id) { metas[id] = meta }
        }
        return metas
    }

    /// Deletes each object. Members are never deleted with their object here: another
    /// object (a snapshot's) may share them; unnamed ones are found by their volume's stamp.
    public func delete(_ ids: [ObjectID], deep: Bool) throws(BackendError) {
        var failure: StoreError?
        for id in ids {
            do {
                try store.delete(id)
            } catch {
                if case .notFound = error { continue }  // bound to several names, already gone
                if failure == nil { failure = error }
            }
        }
        if let failure { throw Self.failure(failure) }
    }

    public func bind(_ name: String, to id: ObjectID) throws(BackendError) -> ObjectID? {
        do {
            return try store.putName(name, id)
        } catch {
            throw Self.failure(error)
        }
    }

    public func lookUp(_ name: String) throws(BackendError) -> ObjectID? {
        store.name(name)
    }

    public func unbind(_ name: String) throws(BackendError) {
        do {
            _ = try store.deleteName(name)
        } catch {
            if case .nameNotFound = error { return }
            throw Self.failure(error)
        }
    }

    public func unbind(namesWithPrefix prefix: String) throws(BackendError) {
        do {
            _ = try store.removeNames(withPrefix: prefix)
        } catch {
            throw Self.failure(error)
        }
    }

    public func names(withPrefix prefix: String, limit: Int?) throws(BackendError) -> [(name: String, id: ObjectID)] {
        store.names(withPrefix: prefix, limit: limit).map { (name: $0.0, id: $0.1) }
    }

    public func names(of id: ObjectID) throws(BackendError) -> [String]? {
        store.names(of: id)
    }

    public func objects(stampedWith key: String, value: String) throws(BackendError) -> [ObjectID]? {
        store.objects { $0.fields[key]?.stringValue == value }.compactMap(\.id)
    }

    public func usage() throws(BackendError) -> BackendUsage {
        let usage = store.usage
        return BackendUsage(capacity: usage.capacity, bytesUsed: usage.bytesUsed)
    }
}
