// vineyard-csi: VineyardSocket
// VineyarddRelay.swift: vineyard's commands for one connection of a volume's socket, relayed to a vineyardd.

import VineyardIPC
import Glibc
import POSIXCore
import SharedMemoryStore
import Synchronization

/// The objects of one volume in a vineyardd that its socket's connections have learned about,
/// beyond those stamped with the volume (blobs carry no stamp): blobs created through the
/// socket, members of the volume's objects, objects reached through the volume's names.
/// Shared by every connection of the socket, since a client reads what another one wrote.
final class ProxyVolumeObjects: Sendable {
    private let known = Mutex<Set<ObjectID>>([])
    /// A bound on memory. Past it the set starts over: everything in it is learned again from
    /// the volume's stamped objects and names, which clients look up before reading buffers.
    static let maximumCount = 1 << 20

    func contains(_ id: ObjectID) -> Bool { known.withLock { $0.contains(id) } }

    func insert(_ ids: some Sequence<ObjectID>) {
        known.withLock { known in
            if known.count >= Self.maximumCount { known.removeAll(keepingCapacity: true) }
            known.formUnion(ids)
        }
    }

    func remove(_ ids: some Sequence<ObjectID>) {
        known.withLock { known in known.subtract(ids) }
    }

    /// Streams created through the volume's socket: vineyardd keeps every stream of the
    /// deployment, a volume's clients reach only these (their metadata may be deleted before
    /// the reader drops the stream).
    private let streams = Mutex<Set<ObjectID>>([])

    func insertStream(_ id: ObjectID) {
        streams.withLock { streams in
            if streams.count >= Self.maximumCount { streams.removeAll(keepingCapacity: true) }
            streams.insert(id)
        }
    }

    func containsStream(_ id: ObjectID) -> Bool { streams.withLock { $0.contains(id) } }
}

/// One connection of a volume's socket, served from a vineyardd within the volume's
/// ``VolumeScope`` (the session applies the same names and read-only rules as for the embedded
/// store).
///
/// Each client connection gets a connection of its own to vineyardd, registered when the
/// client registers, so vineyardd's per-connection state (unsealed blobs freed at close, the
/// store files already sent) is exactly the client's. Requests are rewritten (names prefixed,
/// new objects stamped with the volume) and answered with vineyardd's replies, filtered to the
/// volume's objects. The shared-memory descriptors vineyardd passes are passed on to the client
/// as they come (`SCM_RIGHTS` in, `SCM_RIGHTS` out): the client maps vineyardd's memory itself
/// and no byte of a buffer passes through the driver.
///
/// When vineyardd goes away the connection answers `IOError` (4) to everything: its mapped
/// memory and object ids belong to the instance that is gone, so it is never reconnected. New
/// connections work again once vineyardd is back.
final class VineyarddRelay: ConnectionBackend {
    private let vineyarddSocket: String
    private let scope: VolumeScope
    private let advertisedSocket: String
    private let objects: ProxyVolumeObjects
    private var upstream: IPCChannel?
    /// vineyardd's instance id, once registered.
    private var instance: UInt64?
    /// Objects of the volume this connection fetched whose metadata says this instance holds
    /// them (a client's `get(fetch=True)` asks for the metadata, then migrates).
    private var heldHere: Set<ObjectID> = []
    /// Why the connection to vineyardd ended, once it did.
    private var lost: String?
    /// Blobs created on this connection (sealed or not).
    private var created: Set<ObjectID> = []
    /// Those not sealed yet: dropped when the connection closes, as the embedded store does
    /// (vineyardd itself keeps a disconnected client's unsealed blobs).
    private var unsealed: Set<ObjectID> = []

    /// How many entries a relayed listing asks vineyardd for, before the volume's are picked.
    static let listingLimit = 1 << 20

    init(vineyarddSocket: String, scope: VolumeScope, advertisedSocket: String, objects: ProxyVolumeObjects) {
        self.vineyarddSocket = vineyarddSocket
        self.scope = scope
        self.advertisedSocket = advertisedSocket
        self.objects = objects
    }

    func connectionClosed() {
        if let upstream {
            for id in unsealed where lost == nil { _ = try? upstream.call(IPCRequest.dropBuffer(id)) }
            try? upstream.send(IPCRequest.exit.json)
            upstream.close()
        }
        upstream = nil
    }

    // MARK: - The connection to vineyardd

    func register(version: String, storeType: Int) throws(IPCError) -> IPCReply {
        if upstream == nil {
            guard lost == nil else { throw unavailable() }
            do throws(IPCSocketError) {
                upstream = try IPCChannel.connect(path: vineyarddSocket)
            } catch {
                throw IPCError(.ioError, "vineyardd of this volume does not answer at \(vineyarddSocket): \(error)")
            }
        }
        var reply = try call(IPCRequest.register(version: version, storeType: storeType, sessionID: 0).json)
        instance = reply["instance_id"]?.uint64Value
        // Clients compare it with `cluster_meta` only for display; the path they connected to is the truth.
        if case .object(var members) = reply {
            members["ipc_socket"] = .string(advertisedSocket)
            reply = .object(members)
        }
        return .forwarded(reply, descriptors: [])
    }

    private func unavailable() -> IPCError {
        IPCError(.ioError, "the connection to vineyardd went away (\(lost ?? "closed")); connect again")
    }

    /// Sends a request to vineyardd and returns its reply; vineyardd's error frames are thrown
    /// as they are, a failed connection as `IOError`.
    private func call(_ request: JSONValue) throws(IPCError) -> JSONValue {
        guard let upstream, lost == nil else { throw unavailable() }
        let result: Result<JSONValue, IPCError>
        do throws(IPCChannelError) {
            result = try upstream.call(json: request)
        } catch {
            throw loseUpstream("\(error)")
        }
        return try result.get()
    }

    private func loseUpstream(_ why: String) -> IPCError {
        lost = why
        upstream?.close()
        upstream = nil
        return unavailable()
    }

    /// Receives the descriptors vineyardd sends after a reply, to pass them on.
    private func receiveDescriptors(_ count: Int) throws(IPCError) -> [Int32] {
        var received: [Int32] = []
        for _ in 0..<count {
            do throws(IPCSocketError) {
                guard let upstream else { throw IPCSocketError("recvmsg", errno: .notConnected) }
                received.append(try upstream.receiveDescriptor())
            } catch {
                for descriptor in received { Glibc.close(descriptor) }
                throw loseUpstream("\(error)")
            }
        }
        return received
    }

    /// Relays a request whose reply may announce descriptors in `fds` (and `fd`).
    private func relayWithDescriptors(_ request: JSONValue) throws(IPCError) -> (reply: JSONValue, descriptors: [Int32]) {
        let reply = try call(request)
        var count = reply["fds"]?.arrayValue?.count ?? 0
        if let fd = reply["fd"]?.int64Value, fd >= 0 { count += 1 }
        return (reply, try receiveDescriptors(count))
    }

    // MARK: - Blobs

    func createBuffers(_ request: IPCRequest) throws(IPCError) -> IPCReply {
        let (reply, descriptors) = try relayWithDescriptors(request.json)
        var ids = (reply["ids"]?.arrayValue ?? []).compactMap(\.uint64Value).map { ObjectID($0) }
        if let id = reply["id"]?.uint64Value { ids.append(ObjectID(id)) }
        created.formUnion(ids)
        unsealed.formUnion(ids.filter { $0 != .emptyBlob })
        objects.insert(ids)
        return .forwarded(reply, descriptors: descriptors)
    }

    /// Relays a request on one of the connection's blobs.
    private func relayBlobRequest(_ request: IPCRequest, _ id: ObjectID) throws(IPCError) -> IPCReply {
        guard id == .emptyBlob || isKnown(id) else {
            throw IPCError(.objectNotExists, "\(request.type): blob \(id) does not exist")
        }
        return .forwarded(try call(request.json), descriptors: [])
    }

    func seal(_ id: ObjectID) throws(IPCError) -> IPCReply {
        let reply = try relayBlobRequest(.seal(id), id)
        unsealed.remove(id)
        return reply
    }

    func dropBuffer(_ id: ObjectID) throws(IPCError) -> IPCReply {
        let reply = try relayBlobRequest(.dropBuffer(id), id)
        created.remove(id)
        unsealed.remove(id)
        return reply
    }

    func shrinkBuffer(_ id: ObjectID, to size: Int) throws(IPCError) -> IPCReply {
        try relayBlobRequest(.shrinkBuffer(id, size: size), id)
    }

    func buffers(_ ids: [ObjectID], unsafe: Bool) throws(IPCError) -> IPCReply {
        // Blobs outside the volume are left out, as vineyardd leaves out missing ones.
        let visible = ids.filter { $0 == .emptyBlob || isKnown($0) }
        let (reply, descriptors) = try relayWithDescriptors(IPCRequest.getBuffers(ids: visible, unsafe: unsafe).json)
        return .forwarded(reply, descriptors: descriptors)
    }

    func release(_ id: ObjectID) throws(IPCError) -> IPCReply {
        guard isKnown(id) else { return .release }
        return .forwarded(try call(IPCRequest.release(id).json), descriptors: [])
    }

    func increaseReferenceCount(_ ids: [ObjectID]) throws(IPCError) -> IPCReply {
        let visible = ids.filter(isKnown)
        return .forwarded(try call(IPCRequest.increaseReferenceCount(visible).json), descriptors: [])
    }

    // MARK: - Relayed as they are, for objects of the volume

    func exists(_ id: ObjectID) throws(IPCError) -> IPCReply {
        .forwarded(try call(IPCRequest.exists(id).json), descriptors: [])
    }

    func persist(_ id: ObjectID) throws(IPCError) -> IPCReply {
        .forwarded(try call(IPCRequest.persist(id).json), descriptors: [])
    }

    func ifPersist(_ id: ObjectID) throws(IPCError) -> IPCReply {
        .forwarded(try call(IPCRequest.ifPersist(id).json), descriptors: [])
    }

    func putName(_ storeName: String, _ id: ObjectID) throws(IPCError) -> IPCReply {
        .forwarded(try call(IPCRequest.putName(storeName, id).json), descriptors: [])
    }

    func dropName(_ storeName: String) throws(IPCError) -> IPCReply {
        .forwarded(try call(IPCRequest.dropName(storeName).json), descriptors: [])
    }

    func clusterMeta() throws(IPCError) -> IPCReply {
        .forwarded(try call(IPCRequest.clusterMeta.json), descriptors: [])
    }

    func instanceStatus() throws(IPCError) -> IPCReply {
        .forwarded(try call(IPCRequest.instanceStatus.json), descriptors: [])
    }

    func migrate(_ id: ObjectID) throws(IPCError) -> IPCReply {
        // An object this instance holds answers with itself, as vineyardd answers it, but
        // without the metadata sync vineyardd does first (an etcd round trip): `get(fetch=True)`
        // of a local object stays as fast as a plain get.
        if heldHere.contains(id) { return .migrateObject(id) }
        if let instance, case .object(var request) = IPCRequest.getData(ids: [id], wait: false).json {
            request["sync_remote"] = false
            let tree = try call(.object(request))["content"]?[id.description]
            if tree?["instance_id"]?.uint64Value == instance, tree?["global"]?.boolValue != true { return .migrateObject(id) }
        }
        let reply = try call(IPCRequest.migrateObject(id).json)
        if let migrated = reply["object_id"]?.uint64Value { objects.insert([ObjectID(migrated)]) }
        return .forwarded(reply, descriptors: [])
    }

    func memoryTrim() throws(IPCError) -> IPCReply {
        .forwarded(try call(IPCRequest.memoryTrim.json), descriptors: [])
    }

    /// vineyardd keeps the streams; the chunks it allocates or hands out become the volume's.
    func stream(_ request: IPCStreamRequest) throws(IPCError) -> IPCReply? {
        try checkScope(of: request)
        let (reply, descriptors) = try relayWithDescriptors(IPCRequest.stream(request).json)
        // vineyardd seals a writer's chunks itself (at the next chunk or stop) and deletes them
        // with the stream: they are not the connection's to release when it closes.
        if let chunk = reply["buffer"]?["object_id"]?.uint64Value { objects.insert([ObjectID(chunk)]) }
        if let chunk = reply["chunk"]?.uint64Value { objects.insert([ObjectID(chunk)]) }
        return .forwarded(reply, descriptors: descriptors)
    }

    /// Streams of other volumes answer as missing, as vineyardd answers an unknown stream; a
    /// pushed chunk must be the volume's.
    private func checkScope(of request: IPCStreamRequest) throws(IPCError) {
        let stream = request.stream
        if case .create = request {
            objects.insertStream(stream)  // the session checked that its object is the volume's
            return
        }
        if !objects.containsStream(stream) {
            guard try isVisible(stream) else {
                throw IPCError(.objectNotExists, "\(request.type): stream \(stream) does not exist")
            }
            objects.insertStream(stream)
        }
        if case .push(_, let chunk) = request, try !isVisible(chunk) {
            throw IPCError(.objectNotExists, "\(request.type): object \(chunk) does not exist")
        }
    }

    func clear() throws(IPCError) -> IPCReply {
        let all = IPCPattern(pattern: "*", isRegex: false, limit: Self.listingLimit)
        let ids = Array(try listData(all, matcher: try PatternMatcher(all)).keys)
        if !ids.isEmpty { _ = try delete(IPCDeletion(ids: ids, deep: true, force: true, wantsFeedback: false)) }
        return .clear
    }

    // MARK: - Ownership

    /// Known to be the volume's without asking vineyardd.
    private func isKnown(_ id: ObjectID) -> Bool {
        created.contains(id) || objects.contains(id)
    }

    /// Whether an object belongs to the volume: known, or stamped with it in vineyardd.
    func isVisible(_ id: ObjectID) throws(IPCError) -> Bool {
        if isKnown(id) { return true }
        guard !id.isBlob else { return false }
        return try fetch([id])[id] != nil
    }

    private func owns(_ tree: JSONValue) -> Bool {
        tree[scope.ownerKey]?.stringValue == scope.volumeID
    }

    /// The volume's trees among `ids` in vineyardd; learns their members.
    private func fetch(_ ids: [ObjectID]) throws(IPCError) -> [ObjectID: JSONValue] {
        let reply = try call(IPCRequest.getData(ids: ids, wait: false).json)
        var trees: [ObjectID: JSONValue] = [:]
        for (key, tree) in reply["content"]?.objectValue ?? [:] {
            guard let id = ObjectID(key), owns(tree) || isKnown(id) else { continue }
            trees[id] = tree
            learn(tree, id: id)
            if let instance, tree["instance_id"]?.uint64Value == instance, tree["global"]?.boolValue != true {
                if heldHere.count >= ProxyVolumeObjects.maximumCount { heldHere.removeAll(keepingCapacity: true) }
                heldHere.insert(id)
            }
        }
        return trees
    }

    /// Remembers an object of the volume and every member of its tree.
    private func learn(_ tree: JSONValue, id: ObjectID) {
        var ids: [ObjectID] = [id]
        Self.visitMembers(tree) { ids.append($0) }
        objects.insert(ids)
    }

    /// Calls `body` with the id of every member of a metadata tree, at any depth.
    private static func visitMembers(_ tree: JSONValue, _ body: (ObjectID) -> Void) {
        var queue = Array((tree.objectValue ?? [:]).values)
        while let value = queue.popLast() {
            guard let members = value.objectValue else { continue }
            if let id = members["id"]?.stringValue.flatMap(ObjectID.init) { body(id) }
            queue.append(contentsOf: members.values)
        }
    }

    // MARK: - Objects

    func createData(_ content: JSONValue) throws(IPCError) -> IPCReply {
        guard case .object(var fields) = content else {
            throw IPCError(.metaTreeInvalid, "create_data_request: \"content\" must be a metadata object")
        }
        // Members must be the volume's: an object referring to another volume's blob would
        // hand out that blob's bytes.
        var foreign: ObjectID?
        var members: [ObjectID] = []
        Self.visitMembers(content) { members.append($0) }
        for member in members where member != .emptyBlob {
            if try !isVisible(member) {
                foreign = member
                break
            }
        }
        if let foreign { throw IPCError(.objectNotExists, "member \(foreign) is not an object of this volume") }
        fields[scope.ownerKey] = .string(scope.volumeID)
        let reply = try call(IPCRequest.createData(content: .object(fields)).json)
        if let id = reply["id"]?.uint64Value { objects.insert([ObjectID(id)]) }
        return .forwarded(reply, descriptors: [])
    }

    func trees(_ ids: [ObjectID]) throws(IPCError) -> [ObjectID: JSONValue] {
        try fetch(ids)
    }

    /// vineyardd matches the type names itself; `matcher` has checked the expression
    /// (vineyardd's error for a bad one is less clear).
    func listData(_ pattern: IPCPattern, matcher: PatternMatcher) throws(IPCError) -> [ObjectID: JSONValue] {
        let all = IPCPattern(pattern: pattern.pattern, isRegex: pattern.isRegex, limit: Self.listingLimit)
        let reply = try call(IPCRequest.listData(all).json)
        var trees: [ObjectID: JSONValue] = [:]
        for (key, tree) in reply["content"]?.objectValue ?? [:] {
            guard let id = ObjectID(key), owns(tree),
                !(tree["typename"]?.stringValue ?? "").hasPrefix(scope.internalTypenamePrefix)
            else { continue }
            trees[id] = tree
            if trees.count >= pattern.limit { break }
        }
        return trees
    }

    /// Deletes the volume's objects among those asked for; others are ignored, as vineyardd
    /// ignores unknown ones.
    func delete(_ deletion: IPCDeletion) throws(IPCError) -> IPCReply {
        var ids: [ObjectID] = []
        for id in deletion.ids {
            if try isVisible(id) { ids.append(id) }
        }
        guard !ids.isEmpty else { return .delData(deletedBlobs: deletion.wantsFeedback ? [] : nil) }
        var relayed = deletion
        relayed.ids = ids
        let reply = try call(IPCRequest.delData(relayed).json)
        created.subtract(ids)
        unsealed.subtract(ids)
        heldHere.subtract(ids)
        objects.remove(ids)
        return .forwarded(reply, descriptors: [])
    }

    // MARK: - Names

    func object(named storeName: String) throws(IPCError) -> ObjectID? {
        do throws(IPCError) {
            let reply = try call(IPCRequest.getName(storeName, wait: false).json)
            guard let raw = reply["object_id"]?.uint64Value else {
                throw IPCError(.invalid, "vineyardd's get_name_reply lacks \"object_id\"")
            }
            // Reached through the volume's names: the volume's, whoever created it.
            objects.insert([ObjectID(raw)])
            return ObjectID(raw)
        } catch {
            guard error.code == .objectNotExists else { throw error }
            return nil
        }
    }

    func volumeNames() throws(IPCError) -> [(name: String, id: ObjectID)] {
        let all = IPCPattern(pattern: IPCPattern.escapingGlob(scope.namePrefix) + "*", isRegex: false, limit: Self.listingLimit)
        let reply = try call(IPCRequest.listName(all).json)
        return (reply["names"]?.objectValue ?? [:])
            .compactMap { entry in entry.value.uint64Value.map { (name: entry.key, id: ObjectID($0)) } }
            .sorted { $0.name < $1.name }
    }
}
