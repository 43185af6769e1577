// vineyard-csi: StoreBackend
// VineyarddBackend.swift: a vineyard deployment's vineyardd as a backend (cluster mode).

import Glibc
import POSIXCore
public import VineyardIPC

/// A vineyard deployment's vineyardd, reached through its IPC socket on this node: blobs live
/// in vineyardd's own shared memory (mapped through the socket, gone when it restarts), names
/// are known to every instance of the deployment, and an object has the names of one volume
/// only (no snapshots). While vineyardd is unreachable every operation fails with `ENOTCONN`;
/// the next one after it returns reconnects.
public final class VineyarddBackend: ObjectBackend {
    public let connection: VineyarddConnection
    /// Objects and blobs open for reading, and the deletions waiting for them.
    let readers = ReaderRegistry()

    public init(connection: VineyarddConnection) {
        self.connection = connection
    }

    public convenience init(socketPath: String) {
        self.init(connection: VineyarddConnection(socketPath: socketPath))
    }

    public var capabilities: BackendCapabilities { .vineyardd }

    public func createObject(_ meta: ObjectMeta, name: String?) throws(BackendError) -> ObjectID {
        try connection.with { (client) throws(VineyardClientError) in
            var tree = meta
            if tree.instanceID == 0 { tree.instanceID = client.server.instanceID }
            let id = try client.createData(tree.json)
            try client.persist(id)
            if let name { try client.putName(name, id) }
            return id
        }
    }

    public func metas(_ ids: [ObjectID]) throws(BackendError) -> [ObjectID: ObjectMeta] {
        guard !ids.isEmpty else { return [:] }
        let trees = try connection.with { (client) throws(VineyardClientError) in try client.metas(ids) }
        return trees.mapValues(Self.objectMeta)
    }

    /// The metadata of a tree vineyardd returned.
    static func objectMeta(_ tree: JSONValue) -> ObjectMeta {
        if let meta = try? ObjectMeta(json: tree) { return meta }
        // A tree vineyardd or one of its clients wrote in another shape (an instance id out
        // of range): its type and size still count.
        return ObjectMeta(
            typename: tree["typename"]?.stringValue ?? "", nbytes: Int(max(0, tree["nbytes"]?.int64Value ?? 0)))
    }

    public func delete(_ ids: [ObjectID], deep: Bool) throws(BackendError) {
        guard !ids.isEmpty else { return }
        try connection.with { (client) throws(VineyardClientError) in try client.delete(ids, deep: deep) }
    }

    public func bind(_ name: String, to id: ObjectID) throws(BackendError) -> ObjectID? {
        try connection.with { (client) throws(VineyardClientError) in
            let previous = try client.object(named: name)
            try client.putName(name, id)
            return previous
        }
    }

    public func lookUp(_ name: String) throws(BackendError) -> ObjectID? {
        try connection.with { (client) throws(VineyardClientError) in try client.object(named: name) }
    }

    public func unbind(_ name: String) throws(BackendError) {
        try connection.with { (client) throws(VineyardClientError) in try client.dropName(name) }
    }

    public func unbind(namesWithPrefix prefix: String) throws(BackendError) {
        try connection.with { (client) throws(VineyardClientError) in
            for (name, _) in try client.names(matching: IPCPattern.escapingGlob(prefix) + "*") { try client.dropName(name) }
        }
    }

    public func names(withPrefix prefix: String, limit: Int?) throws(BackendError) -> [(name: String, id: ObjectID)] {
        try connection.with { (client) throws(VineyardClientError) in
            try client.names(matching: IPCPattern.escapingGlob(prefix) + "*", limit: limit ?? 1 << 20)
        }
    }

    /// `nil`: vineyardd cannot look names up by object, and without snapshots an object has
    /// the names of one volume only.
    public func names(of id: ObjectID) throws(BackendError) -> [String]? {
        nil
    }

    /// `nil`: listing vineyardd's objects lists the whole deployment's.
    public func objects(stampedWith key: String, value: String) throws(BackendError) -> [ObjectID]? {
        nil
    }

    public func usage() throws(BackendError) -> BackendUsage {
        let status = try connection.status()
        return BackendUsage(
            capacity: Int(max(0, status["memory_limit"]?.int64Value ?? 0)),
            bytesUsed: Int(max(0, status["memory_usage"]?.int64Value ?? 0)))
    }
}
