// vineyard-csi: VineyardSocket
// VolumeSession.swift: vineyard's commands for one connection to a volume's socket, whatever the backend.

import VineyardIPC

/// What a volume's socket asks of its backend for one client connection, after the session has
/// checked a request against the volume's scope: the client registered, may change the volume,
/// names are mapped to the backend's names, objects are the volume's.
///
/// The embedded store executes the requests (``StoreConnection``); a vineyardd gets them
/// relayed over a connection of the client's own (``VineyarddRelay``). One instance per
/// connection, used by that connection's thread only.
protocol ConnectionBackend: AnyObject {
    /// Answers `register_request` (the session checked the session id).
    func register(version: String, storeType: Int) throws(IPCError) -> IPCReply
    /// Whether an object belongs to the volume, as far as this connection can tell.
    func isVisible(_ id: ObjectID) throws(IPCError) -> Bool

    // MARK: Blobs
    func createBuffers(_ request: IPCRequest) throws(IPCError) -> IPCReply
    func seal(_ id: ObjectID) throws(IPCError) -> IPCReply
    func dropBuffer(_ id: ObjectID) throws(IPCError) -> IPCReply
    func shrinkBuffer(_ id: ObjectID, to size: Int) throws(IPCError) -> IPCReply
    func buffers(_ ids: [ObjectID], unsafe: Bool) throws(IPCError) -> IPCReply
    func release(_ id: ObjectID) throws(IPCError) -> IPCReply
    func increaseReferenceCount(_ ids: [ObjectID]) throws(IPCError) -> IPCReply

    // MARK: Objects
    func createData(_ content: JSONValue) throws(IPCError) -> IPCReply
    /// The metadata trees of the volume's objects among `ids` (others are left out).
    func trees(_ ids: [ObjectID]) throws(IPCError) -> [ObjectID: JSONValue]
    /// The volume's objects whose type name matches (`pattern.limit` > 0), at most that many.
    func listData(_ pattern: IPCPattern, matcher: PatternMatcher) throws(IPCError) -> [ObjectID: JSONValue]
    func delete(_ deletion: IPCDeletion) throws(IPCError) -> IPCReply
    /// `exists_request` for an object of the volume.
    func exists(_ id: ObjectID) throws(IPCError) -> IPCReply
    /// `persist_request` for an object of the volume.
    func persist(_ id: ObjectID) throws(IPCError) -> IPCReply
    /// `if_persist_request` for an object of the volume.
    func ifPersist(_ id: ObjectID) throws(IPCError) -> IPCReply
    /// Deletes the volume's objects (`clear_request`).
    func clear() throws(IPCError) -> IPCReply

    // MARK: Names (the backend's names)
    func putName(_ storeName: String, _ id: ObjectID) throws(IPCError) -> IPCReply
    /// The object bound to a name; `nil` when there is none.
    func object(named storeName: String) throws(IPCError) -> ObjectID?
    func dropName(_ storeName: String) throws(IPCError) -> IPCReply
    /// The backend's names under the volume's prefix, in ascending order.
    func volumeNames() throws(IPCError) -> [(name: String, id: ObjectID)]

    // MARK: The instance
    func clusterMeta() throws(IPCError) -> IPCReply
    func instanceStatus() throws(IPCError) -> IPCReply
    /// `migrate_object_request` for an object of the volume.
    func migrate(_ id: ObjectID) throws(IPCError) -> IPCReply
    /// `memory_trim_request`.
    func memoryTrim() throws(IPCError) -> IPCReply

    // MARK: Streams
    /// Serves a stream request itself (a vineyardd keeps its own streams); `nil` when the
    /// session's ``StreamTable`` serves it over this backend's blobs.
    func stream(_ request: IPCStreamRequest) throws(IPCError) -> IPCReply?

    /// The connection ended (cleanly, by error, or by server stop): release everything it held.
    func connectionClosed()
}

/// One connection to a volume's socket: the vineyard commands, the volume's scope and name
/// rules, and the waits of `get_name`/`get_data`, written once over a ``ConnectionBackend``.
final class VolumeSession: IPCConnectionHandler {
    private let client: ScopedClient
    private var scope: VolumeScope { client.scope }
    private let backend: any ConnectionBackend
    private let namesChanged: @Sendable () -> Void
    private let streams: StreamTable
    /// Streams this connection read from: dropped when it ends, as vineyardd does.
    private var pulledStreams: Set<ObjectID> = []

    init(
        client: ScopedClient, backend: any ConnectionBackend, streams: StreamTable,
        namesChanged: @escaping @Sendable () -> Void
    ) {
        self.client = client
        self.backend = backend
        self.streams = streams
        self.namesChanged = namesChanged
    }

    func connectionClosed() {
        for stream in pulledStreams {
            _ = try? dropStream(stream)
        }
        backend.connectionClosed()
    }

    func handle(_ request: IPCRequest, channel: IPCChannel) -> Result<IPCReply, IPCError> {
        do throws(IPCError) {
            if case .register(let version, let storeType, let sessionID) = request {
                guard sessionID == 0 else {
                    throw IPCError(.invalid, "sessions are not supported by this server (session \(sessionID))")
                }
                let reply = try backend.register(version: version, storeType: storeType)
                client.registered = true
                return .success(reply)
            }
            try client.admit(request)
            let reply = try dispatch(request, channel: channel)
            switch request {
            case .putName, .dropName, .delData, .clear: namesChanged()
            default: break
            }
            return .success(reply)
        } catch {
            return .failure(error)
        }
    }

    private func dispatch(_ request: IPCRequest, channel: IPCChannel) throws(IPCError) -> IPCReply {
        switch request {
        case .register, .exit:
            throw IPCError(.invalid, "unexpected \(request.type)")
        case .createBuffer, .createBuffers:
            return try backend.createBuffers(request)
        case .seal(let id):
            return try backend.seal(id)
        case .getBuffers(let ids, let unsafe):
            return try backend.buffers(ids, unsafe: unsafe)
        case .dropBuffer(let id):
            return try backend.dropBuffer(id)
        case .shrinkBuffer(let id, let size):
            return try backend.shrinkBuffer(id, to: size)
        case .createData(let content):
            return try backend.createData(content)
        case .getData(let ids, let wait):
            var waited = 0
            while true {
                let trees = try backend.trees(ids)
                if !wait || trees.count == Set(ids).count || !ScopedClient.keepWaiting(&waited, channel) {
                    return .getData(trees)
                }
            }
        case .listData(let pattern):
            let matcher = try PatternMatcher(pattern)
            guard pattern.limit > 0 else { return .getData([:]) }
            return .getData(try backend.listData(pattern, matcher: matcher))
        case .delData(let deletion):
            return try backend.delete(deletion)
        case .exists(let id):
            guard try backend.isVisible(id) else { return .exists(false) }
            return try backend.exists(id)
        case .persist(let id):
            guard !id.isBlob else { throw IPCError(.assertionFailed, "!IsBlob(id): The blobs cannot be persisted") }
            guard try backend.isVisible(id) else {
                throw IPCError(.metaTreeSubtreeNotExists, "failed to persist: object \(id) does not exist")
            }
            return try backend.persist(id)
        case .ifPersist(let id):
            guard try backend.isVisible(id) else {
                throw IPCError(.metaTreeSubtreeNotExists, "object \(id) does not exist")
            }
            return try backend.ifPersist(id)
        case .putName(let name, let id):
            guard !id.isBlob else { throw IPCError(.invalid, "blobs cannot have name") }
            let storeName = try client.storeName(name)
            guard try backend.isVisible(id) else {
                throw IPCError(.objectNotExists, "failed to put name: object \(id) does not exist")
            }
            return try backend.putName(storeName, id)
        case .getName(let name, let wait):
            let storeName = try client.storeName(name)
            var waited = 0
            while true {
                if let id = try backend.object(named: storeName) { return .getName(id) }
                if !wait || !ScopedClient.keepWaiting(&waited, channel) {
                    throw IPCError(.objectNotExists, "failed to find name: \(name)")
                }
            }
        case .dropName(let name):
            guard let path = scope.path(forClientName: name, mounts: client.mounts) else { return .dropName }
            return try backend.dropName(scope.storeName(forPath: path))
        case .listName(let pattern):
            return .listName(try client.visibleNames(try backend.volumeNames(), matching: pattern))
        case .release(let id):
            return try backend.release(id)
        case .increaseReferenceCount(let ids):
            return try backend.increaseReferenceCount(ids)
        case .clusterMeta:
            return try backend.clusterMeta()
        case .instanceStatus:
            return try backend.instanceStatus()
        case .clear:
            return try backend.clear()
        case .migrateObject(let id):
            guard !id.isBlob else { throw IPCError(.invalid, "blobs cannot be directly migrated") }
            guard try backend.isVisible(id) else {
                throw IPCError(.objectNotExists, "failed to migrate: object \(id) does not exist")
            }
            return try backend.migrate(id)
        case .memoryTrim:
            return try backend.memoryTrim()
        case .stream(let streamRequest):
            // A stream is the volume's once created for one of its objects; later requests name
            // it by id, even after its metadata was deleted (readers drop it at the end).
            if case .create(let id) = streamRequest, try !backend.isVisible(id) {
                throw IPCError(.objectNotExists, "create_stream_request: object \(id) does not exist")
            }
            if let reply = try backend.stream(streamRequest) { return reply }
            return try serve(streamRequest, channel: channel)
        case .unsupported(let type):
            throw ScopedClient.unsupported(type)
        }
    }
}

extension VolumeSession {
    /// A stream request served by the socket's ``StreamTable``, with this connection's blobs.
    private func serve(_ request: IPCStreamRequest, channel: IPCChannel) throws(IPCError) -> IPCReply {
        switch request {
        case .create(let id):
            try streams.create(id)
            return .createStream
        case .open(let id, let mode):
            try streams.open(id, mode: mode)
            return .openStream
        case .nextChunk(let id, let size):
            try queueWrittenChunk(of: id, "failed to allocate from stream")
            guard case .createBuffer(let payload, let fd) = try backend.createBuffers(.createBuffer(size: size)) else {
                throw IPCError(.invalid, "failed to allocate a stream chunk")
            }
            streams.queueWritten(id, sealed: nil, next: payload.objectID)
            return .nextStreamChunk(payload, fd: fd)
        case .push(let id, let chunk):
            guard try backend.isVisible(chunk) else {
                throw IPCError(.objectNotExists, "failed to push to stream: object \(chunk) does not exist")
            }
            try streams.push(id, chunk: chunk)
            return .pushStreamChunk
        case .pull(let id):
            pulledStreams.insert(id)
            if let taken = try streams.releaseReading(id) {
                _ = try backend.delete(IPCDeletion(ids: [taken], deep: true, force: false, wantsFeedback: false))
            }
            while true {
                if let chunk = try streams.takeNext(id) { return .pullStreamChunk(chunk) }
                // A reader waits for the writer as long as it stays connected, as with vineyardd.
                if channel.peerHungUp(timeoutMilliseconds: ScopedClient.waitPollMilliseconds) {
                    throw IPCError(.ioError, "the client went away")
                }
            }
        case .stop(let id, let failed):
            try queueWrittenChunk(of: id, "failed to stop stream")
            try streams.stop(id, failed: failed)
            return .stopStream
        case .drop(let id):
            try dropStream(id)
            pulledStreams.remove(id)
            return .dropStream
        }
    }

    /// Seals the writer's current chunk and queues it for the reader.
    private func queueWrittenChunk(of id: ObjectID, _ what: String) throws(IPCError) {
        guard let written = try streams.finishWriting(id, what) else { return }
        _ = try backend.seal(written)
        streams.queueWritten(id, sealed: written, next: nil)
    }

    private func dropStream(_ id: ObjectID) throws(IPCError) {
        let unread = try streams.drop(id)
        if !unread.isEmpty {
            _ = try? backend.delete(IPCDeletion(ids: unread, deep: false, force: false, wantsFeedback: false))
        }
    }
}
