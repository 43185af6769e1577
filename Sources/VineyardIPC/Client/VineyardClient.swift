// vineyard-csi: VineyardIPC
// VineyardClient.swift: a client of a real vineyardd over its IPC socket (the codec's other side).

import Glibc
import POSIXCore
public import VineyardObjects
import Synchronization

/// A connection to a vineyardd's IPC socket: the client side of the protocol that
/// `VineyardSocketServer` serves, built on the same codec (``IPCRequest``, ``IPCFrame``).
///
/// Buffers are zero-copy: the store file vineyardd passes with `SCM_RIGHTS` is mapped once per
/// connection (see ``StoreMappings``) and ``createBuffer(size:)`` / ``buffers(_:unsafe:)`` hand
/// out ``MappedBuffer``s into it, which keep their mapping alive while they exist.
///
/// Calls are serialized (the protocol is strictly request/reply on one socket); use one client
/// per thread for parallel traffic. A socket failure marks the client disconnected: every later
/// call fails with ``VineyardClientError/disconnected(_:)`` and the owner connects anew — a
/// restarted vineyardd has a new store file, so old mappings must never be reused.
public final class VineyardClient: @unchecked Sendable {
    private struct State {
        var channel: IPCChannel?
        var mappings = StoreMappings()
    }

    /// The path this client connected to.
    public let socketPath: String
    /// What vineyardd said about itself at registration (its instance id tags every object).
    public let server: IPCServerInfo
    /// Guards ``state``. (`Mutex<State>` cannot lend its value `inout` to the non-sendable
    /// closures the calls run, so the lock and the value are kept side by side.)
    private let lock = Mutex(())
    private var state: State

    private init(socketPath: String, server: IPCServerInfo, channel: IPCChannel) {
        self.socketPath = socketPath
        self.server = server
        self.state = State(channel: channel)
    }

    deinit {
        close()
    }

    /// Connects and registers as vineyard's 0.24 client does (`store_type` 1: a vineyardd
    /// without it answers `store_match: false`).
    ///
    /// - Throws: ``VineyardClientError/unreachable(path:_:)`` when nothing listens at the path.
    public static func connect(socketPath: String) throws(VineyardClientError) -> VineyardClient {
        let channel: IPCChannel
        do {
            channel = try IPCChannel.connect(path: socketPath)
        } catch {
            throw .unreachable(path: socketPath, error)
        }
        let reply = try call(.register(version: "0.24.2", storeType: 1, sessionID: 0), on: channel)
        guard let instance = reply["instance_id"]?.uint64Value, let socket = reply["ipc_socket"]?.stringValue else {
            throw .protocolViolation("register_reply lacks instance_id or ipc_socket")
        }
        guard reply["store_match"]?.boolValue ?? true else {
            throw .protocolViolation("vineyardd at \(socketPath) reports a mismatched store type")
        }
        let info = IPCServerInfo(
            instanceID: instance, ipcSocket: socket, rpcEndpoint: reply["rpc_endpoint"]?.stringValue ?? "0.0.0.0:0",
            version: reply["version"]?.stringValue ?? "0.0.0")
        return VineyardClient(socketPath: socketPath, server: info, channel: channel)
    }

    /// Whether the connection is still usable (no socket failure seen, not closed).
    public var isConnected: Bool { lock.withLock { _ in state.channel != nil } }

    /// Says goodbye (`exit_request`, which has no reply), closes the socket and unmaps the
    /// store files.
    public func close() {
        lock.withLock { _ in
            if let channel = state.channel {
                try? channel.send(IPCRequest.exit.json)
                channel.close()
            }
            state.channel = nil
            state.mappings.removeAll()
        }
    }

    // MARK: - Blobs

    /// A new unsealed blob of `size` bytes in vineyardd's shared memory, and where to write it.
    ///
    /// - Throws: ``VineyardClientError/refused(_:)`` with ``IPCStatusCode/notEnoughMemory`` when
    ///   vineyardd is full.
    public func createBuffer(size: Int) throws(VineyardClientError) -> MappedBuffer {
        try withChannel { (channel, mappings) throws(VineyardClientError) in
            let reply = try Self.call(.createBuffer(size: size), on: channel)
            guard let created = reply["created"] else { throw .protocolViolation("create_buffer_reply lacks \"created\"") }
            let payload = try Self.payload(created)
            let fd = Int32(truncatingIfNeeded: reply["fd"]?.int64Value ?? -1)
            if fd >= 0 { try Self.receiveStoreFile(fd, mapSize: payload.mapSize, on: channel, into: &mappings) }
            return try mappings.buffer(of: payload)
        }
    }

    /// Makes a blob immutable and readable by others.
    public func seal(_ blob: ObjectID) throws(VineyardClientError) {
        _ = try simpleCall(.seal(blob))
    }

    /// Drops an unsealed blob (a write that will not complete).
    public func dropBuffer(_ blob: ObjectID) throws(VineyardClientError) {
        _ = try simpleCall(.dropBuffer(blob))
    }

    /// The bytes of blobs, mapped: no copy. Blobs vineyardd does not have are left out (as it
    /// leaves them out of its reply); unsealed blobs need `unsafe`.
    public func buffers(_ blobs: [ObjectID], unsafe: Bool = false) throws(VineyardClientError)
        -> [ObjectID: MappedBuffer]
    {
        try withChannel { (channel, mappings) throws(VineyardClientError) in
            let reply = try Self.call(.getBuffers(ids: blobs, unsafe: unsafe), on: channel)
            let payloads: [IPCPayload]
            if let list = reply["payloads"]?.arrayValue {
                payloads = try list.map { (json) throws(VineyardClientError) in try Self.payload(json) }
            } else {
                let count = Int(reply["num"]?.int64Value ?? 0)
                var indexed: [IPCPayload] = []
                for index in 0..<max(count, 0) {
                    guard let json = reply[String(index)] else { throw .protocolViolation("get_buffers_reply lacks \"\(index)\"") }
                    indexed.append(try Self.payload(json))
                }
                payloads = indexed
            }
            // Descriptors follow the frame in the order `fds` lists them; each pairs with the
            // first payload naming that store file.
            let announced = (reply["fds"]?.arrayValue ?? []).compactMap { $0.int64Value }.map { Int32(truncatingIfNeeded: $0) }
            for fd in announced {
                guard let first = payloads.first(where: { $0.storeFD == fd }) else {
                    throw .protocolViolation("get_buffers_reply announces store file \(fd) no payload uses")
                }
                try Self.receiveStoreFile(fd, mapSize: first.mapSize, on: channel, into: &mappings)
            }
            var result: [ObjectID: MappedBuffer] = [:]
            for payload in payloads { result[payload.objectID] = try mappings.buffer(of: payload) }
            return result
        }
    }

    // MARK: - Metadata

    /// Creates an object from a metadata tree (members referenced by their `id`). The tree must
    /// carry `typename` and this instance's `instance_id`.
    ///
    /// - Returns: the new object's id.
    public func createData(_ tree: JSONValue) throws(VineyardClientError) -> ObjectID {
        let reply = try simpleCall(.createData(content: tree))
        guard let id = reply["id"]?.uint64Value else { throw .protocolViolation("create_data_reply lacks \"id\"") }
        return ObjectID(id)
    }

    /// An object's metadata tree, members expanded; `nil` when vineyardd has no such object
    /// (including unsealed blobs, which have no metadata yet).
    public func meta(_ object: ObjectID) throws(VineyardClientError) -> JSONValue? {
        try metas([object]).values.first
    }

    /// Metadata trees of several objects in one round trip; unknown ones are left out.
    public func metas(_ objects: [ObjectID]) throws(VineyardClientError) -> [ObjectID: JSONValue] {
        // Without `sync_remote`: vineyardd answers from the metadata it already has (etcd
        // updates it in the background) instead of a round trip to etcd on every lookup.
        guard case .object(var request) = IPCRequest.getData(ids: objects, wait: false).json else {
            preconditionFailure("a request is a JSON object")
        }
        request["sync_remote"] = false
        let reply = try withChannel { (channel, _) throws(VineyardClientError) in try Self.call(json: .object(request), on: channel) }
        var trees: [ObjectID: JSONValue] = [:]
        for (key, tree) in reply["content"]?.objectValue ?? [:] {
            if let id = ObjectID(key) { trees[id] = tree }
        }
        return trees
    }

    /// Asks vineyardd for a copy of `object` in its own memory (`migrate_object_request`): an
    /// object of another instance is copied over vineyard's RPC between the instances (once:
    /// vineyardd answers later requests for the same original with the same copy), a local
    /// one answers with itself.
    ///
    /// - Returns: the id of the local object.
    public func migrate(_ object: ObjectID) throws(VineyardClientError) -> ObjectID {
        let reply = try simpleCall(.migrateObject(object))
        guard let id = reply["object_id"]?.uint64Value else { throw .protocolViolation("migrate_object_reply lacks \"object_id\"") }
        return ObjectID(id)
    }

    /// Metadata trees of the deployment's objects whose typename matches a glob, at most `limit`
    /// (`list_data_request`: every instance's persisted objects, with etcd metadata).
    public func metas(typenameMatching pattern: String, limit: Int = 1 << 20) throws(VineyardClientError) -> [ObjectID: JSONValue] {
        let reply = try simpleCall(.listData(IPCPattern(pattern: pattern, isRegex: false, limit: limit)))
        var trees: [ObjectID: JSONValue] = [:]
        for (key, tree) in reply["content"]?.objectValue ?? [:] {
            if let id = ObjectID(key) { trees[id] = tree }
        }
        return trees
    }

    /// Whether vineyardd knows the object (sealed or not).
    public func exists(_ object: ObjectID) throws(VineyardClientError) -> Bool {
        try simpleCall(.exists(object))["exists"]?.boolValue ?? false
    }

    /// Makes an object and its members persistent: with etcd metadata, visible to every
    /// instance of the deployment. Blobs cannot be persisted (vineyardd's rule).
    public func persist(_ object: ObjectID) throws(VineyardClientError) {
        _ = try simpleCall(.persist(object))
    }

    /// Deletes objects; `deep` also deletes their members and blobs.
    public func delete(_ objects: [ObjectID], deep: Bool = true) throws(VineyardClientError) {
        _ = try simpleCall(.delData(IPCDeletion(ids: objects, deep: deep, force: false, wantsFeedback: false)))
    }

    // MARK: - Names

    /// Names a persisted object (an existing name is overwritten, as vineyardd does).
    public func putName(_ name: String, _ object: ObjectID) throws(VineyardClientError) {
        _ = try simpleCall(.putName(name, object))
    }

    /// The object a name refers to; `nil` when the name is unknown.
    public func object(named name: String) throws(VineyardClientError) -> ObjectID? {
        do throws(VineyardClientError) {
            let reply = try simpleCall(.getName(name, wait: false))
            guard let id = reply["object_id"]?.uint64Value else { throw .protocolViolation("get_name_reply lacks \"object_id\"") }
            return ObjectID(id)
        } catch {
            if case .refused(let refusal) = error, refusal.code == .objectNotExists { return nil }
            throw error
        }
    }

    /// Removes a name (vineyardd answers OK for unknown names too).
    public func dropName(_ name: String) throws(VineyardClientError) {
        _ = try simpleCall(.dropName(name))
    }

    /// Names matching a glob, sorted by name, at most `limit`.
    public func names(matching pattern: String, limit: Int = 1 << 20) throws(VineyardClientError) -> [(name: String, id: ObjectID)] {
        let reply = try simpleCall(.listName(IPCPattern(pattern: pattern, isRegex: false, limit: limit)))
        let names = reply["names"]?.objectValue ?? [:]
        return names.compactMap { entry in entry.value.uint64Value.map { (entry.key, ObjectID($0)) } }.sorted { $0.name < $1.name }
    }

    // MARK: - Status

    /// `cluster_meta_reply`'s `meta`: every instance of the deployment (`"i<id>"`: its
    /// `instance_id`, `hostname`, `rpc_endpoint`, …).
    public func clusterMeta() throws(VineyardClientError) -> JSONValue {
        try simpleCall(.clusterMeta)["meta"] ?? .null
    }

    /// `instance_status_reply`'s `meta`: memory limit and usage, connections, deployment kind.
    public func instanceStatus() throws(VineyardClientError) -> JSONValue {
        try simpleCall(.instanceStatus)["meta"] ?? .null
    }

    // MARK: - Plumbing

    private func simpleCall(_ request: IPCRequest) throws(VineyardClientError) -> JSONValue {
        try withChannel { (channel, _) throws(VineyardClientError) in try Self.call(request, on: channel) }
    }

    /// Runs `body` with the channel under the lock; a connection failure closes the client.
    private func withChannel<R>(
        _ body: (IPCChannel, inout StoreMappings) throws(VineyardClientError) -> R
    ) throws(VineyardClientError) -> R {
        let result: Result<R, VineyardClientError> = lock.withLock { _ in
            guard let channel = state.channel else {
                return .failure(.disconnected(.socket(IPCSocketError("vineyardd connection", errno: .notConnected))))
            }
            do throws(VineyardClientError) {
                return .success(try body(channel, &state.mappings))
            } catch {
                if error.isOutage || { if case .protocolViolation = error { return true } else { return false } }() {
                    // The stream may be out of step (a descriptor or frame half-read): never reuse it.
                    channel.close()
                    state.channel = nil
                    state.mappings.removeAll()
                }
                return .failure(error)
            }
        }
        return try result.get()
    }

    private static func call(_ request: IPCRequest, on channel: IPCChannel) throws(VineyardClientError) -> JSONValue {
        try call(json: request.json, on: channel)
    }

    private static func call(json request: JSONValue, on channel: IPCChannel) throws(VineyardClientError) -> JSONValue {
        let result: Result<JSONValue, IPCError>
        do {
            result = try channel.call(json: request)
        } catch {
            throw .disconnected(error)
        }
        switch result {
        case .success(let json): return json
        case .failure(let error): throw .refused(error)
        }
    }

    private static func payload(_ json: JSONValue) throws(VineyardClientError) -> IPCPayload {
        do {
            return try IPCPayload(json: json)
        } catch {
            throw .protocolViolation("\(error)")
        }
    }

    private static func receiveStoreFile(
        _ storeFD: Int32, mapSize: Int, on channel: IPCChannel, into mappings: inout StoreMappings
    ) throws(VineyardClientError) {
        let descriptor: Int32
        do {
            descriptor = try channel.receiveDescriptor()
        } catch {
            throw .disconnected(.socket(error))
        }
        if mappings.contains(storeFD) {
            // vineyardd sent a store file again; the first mapping stays authoritative.
            Glibc.close(descriptor)
            return
        }
        try mappings.add(storeFD: storeFD, descriptor: descriptor, mapSize: mapSize)
    }
}
