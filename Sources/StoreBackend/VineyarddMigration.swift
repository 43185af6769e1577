// vineyard-csi: StoreBackend
// VineyarddMigration.swift: objects of other vineyardd instances brought to this node's, as vineyard migrates them.

import Synchronization
public import VineyardIPC

/// The local copies this node's vineyardd made of other instances' objects, by original, for
/// the connection's current generation (a restarted vineyardd has none of them).
///
/// vineyardd remembers its migrations too and answers a second `migrate_object_request` for
/// the same original with the same copy; this saves the round trip (and the metadata sync
/// vineyardd does before it) on every open.
public final class MigratedCopies: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var copies: [ObjectID: ObjectID] = [:]
    }

    private let state = Mutex(State())
    /// A bound on memory; past it the table starts over (vineyardd still answers with its copies).
    static let maximumCount = 1 << 16

    public init() {}

    func copy(of original: ObjectID, generation: UInt64) -> ObjectID? {
        state.withLock { state in state.generation == generation ? state.copies[original] : nil }
    }

    func remember(_ copy: ObjectID, of original: ObjectID, generation: UInt64) {
        state.withLock { state in
            if state.generation != generation || state.copies.count >= Self.maximumCount {
                state.generation = generation
                state.copies = [:]
            }
            state.copies[original] = copy
        }
    }

    func forget(_ original: ObjectID) {
        _ = state.withLock { state in state.copies.removeValue(forKey: original) }
    }

    /// How many copies are known (diagnostics and tests).
    public var count: Int { state.withLock { $0.copies.count } }
}

extension VineyarddConnection {
    /// The file to read on this node: `file` itself when this instance holds all its bytes,
    /// otherwise the copy this node's vineyardd migrates from the instance that holds them,
    /// over vineyard's RPC between the instances (vineyardd looks the holder's `rpc_endpoint`
    /// up in the cluster's metadata, copies the blobs into its own memory and creates the
    /// copy's metadata with every field of the original's, the volume's stamp included).
    ///
    /// - Parameters:
    ///   - client: the connection's current client (the caller's, within ``with(_:)``).
    ///   - generation: the generation `client` belongs to.
    /// - Throws: ``VineyardFileError/remote(name:instanceID:localInstanceID:)`` when vineyardd
    ///   refuses the migration (RPC off, the holder unreachable); connection failures and lack
    ///   of memory here as ``VineyardFileError/client(_:)``.
    public func local(
        _ file: VineyardFile, name: String, client: VineyardClient, generation: UInt64
    ) throws(VineyardFileError) -> VineyardFile {
        let here = client.server.instanceID
        guard let foreign = file.chunks.first(where: { $0.instanceID != here }) else { return file }
        if let copy = migrated.copy(of: file.object, generation: generation) {
            if let found = try client.file(copy, name: name), found.chunks.allSatisfy({ $0.instanceID == here }) { return found }
            migrated.forget(file.object)  // deleted since: migrate again
        }
        let copy: ObjectID
        do throws(VineyardClientError) {
            // vineyardd 0.24 never answers a migration that runs out of memory: refuse it first.
            let status = try client.instanceStatus()
            let free = (status["memory_limit"]?.int64Value ?? 0) - (status["memory_usage"]?.int64Value ?? 0)
            guard free >= Int64(file.size) else {
                throw .refused(IPCError(.notEnoughMemory, "\(name): \(file.size) bytes to migrate, \(free) free in this node's vineyardd"))
            }
            // On a connection of its own: the copy takes as long as its bytes take over RPC, and
            // the file system's connection keeps serving meanwhile.
            let migrator = try VineyardClient.connect(socketPath: socketPath)
            defer { migrator.close() }
            copy = try migrator.migrate(file.object)
        } catch {
            // Out of memory here stays what it is (`ENOSPC`); other refusals mean the bytes
            // cannot come from their instance.
            guard case .refused(let refusal) = error, refusal.code != .notEnoughMemory else { throw .client(error) }
            throw .remote(name: name, instanceID: foreign.instanceID, localInstanceID: here)
        }
        guard let found = try client.file(copy, name: name), found.chunks.allSatisfy({ $0.instanceID == here }) else {
            throw .remote(name: name, instanceID: foreign.instanceID, localInstanceID: here)
        }
        migrated.remember(copy, of: file.object, generation: generation)
        return found
    }
}

extension VineyarddBackend {
    /// Deletes, with their members, the deployment's objects stamped `key: value` (a volume's
    /// stamp) that are left once the volume's names are gone: the copies vineyardd migrated to
    /// the nodes that read them (they carry the original's fields, the stamp among them) and
    /// objects put through the volume's socket without a name.
    ///
    /// Any instance may delete them: with etcd metadata the instance holding a copy frees its
    /// memory when the deletion reaches it.
    public func deleteObjects(stampedWith key: String, value: String) throws(BackendError) {
        try connection.with { (client) throws(VineyardClientError) in
            let stamped = try client.metas(typenameMatching: "*").compactMap { id, tree in
                tree[key]?.stringValue == value ? id : nil
            }
            if !stamped.isEmpty { try client.delete(stamped, deep: true) }
        }
    }
}

extension VineyarddBackend {
    /// The RPC endpoints (`host:port`) of every instance of the deployment, by instance id,
    /// comma-separated as vineyard's configuration lists them; `nil` when there are none.
    public func rpcEndpoints() throws(BackendError) -> String? {
        let meta = try connection.with { (client) throws(VineyardClientError) in try client.clusterMeta() }
        // Keyed `"i<instance id>"`.
        let endpoints = (meta.objectValue ?? [:])
            .compactMap { key, instance -> (UInt64, String)? in
                guard key.hasPrefix("i"), let id = UInt64(key.dropFirst()), let endpoint = instance["rpc_endpoint"]?.stringValue
                else { return nil }
                return (id, endpoint)
            }
            .sorted { $0.0 < $1.0 }.map(\.1)
        return endpoints.isEmpty ? nil : endpoints.joined(separator: ",")
    }
}
