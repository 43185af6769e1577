// vineyard-csi: VineyardSocket
// StoreSession.swift: vineyard's commands for one connection, served from an ObjectStore.

import VineyardIPC
import Glibc
import SharedMemoryStore

/// Serves one connection from a store, within a volume's ``VolumeScope``.
///
/// Blobs are handed out zero-copy: the client receives the arena's descriptor once per
/// connection (`SCM_RIGHTS`) and maps it; payloads give offsets into it.
///
/// **What a connection holds**, released when it closes (however it closes):
/// - blobs it created and has not sealed: discarded, their memory freed;
/// - a reference (an ``ObjectHandle``) on every sealed blob whose buffers it was given, so the
///   memory the client has mapped is not reused while the client may still read it, even if
///   another client deletes the object. `release_request` gives one up early, and so does
///   deleting the object through this connection.
final class StoreSession: IPCConnectionHandler {
    private struct Pin {
        let handle: ObjectHandle
        var count: Int
    }

    private let store: ObjectStore
    private let client: ScopedClient
    private var scope: VolumeScope { client.scope }
    private let info: IPCServerInfo
    private let connectionCount: @Sendable () -> Int
    private let namesChanged: @Sendable () -> Void
    private var sentDescriptors: Set<Int32> = []
    private var unsealed: [ObjectID: BlobWriter] = [:]
    private var pins: [ObjectID: Pin] = [:]
    /// Objects shared with a snapshot or another volume that this connection reached through
    /// the volume's names (see `ownedMeta`).
    private var sharedIDs: Set<ObjectID> = []

    /// Unsealed blobs one connection may hold at once: a bound on bookkeeping, far above what
    /// vineyard's builders use (one at a time).
    static let maximumUnsealed = 1 << 16

    init(
        store: ObjectStore, scope: VolumeScope, info: IPCServerInfo, peerPID: Int32,
        connectionCount: @escaping @Sendable () -> Int, namesChanged: @escaping @Sendable () -> Void
    ) {
        self.namesChanged = namesChanged
        self.store = store
        self.client = ScopedClient(scope: scope, peerPID: peerPID)
        self.info = info
        self.connectionCount = connectionCount
    }

    func connectionClosed() {
        for writer in unsealed.values { writer.discard() }
        unsealed.removeAll()
        for pin in pins.values { pin.handle.release() }
        pins.removeAll()
    }

    // MARK: - Dispatch

    func handle(_ request: IPCRequest, channel: IPCChannel) -> Result<IPCReply, IPCError> {
        do throws(IPCError) {
            if case .register(_, let storeType, let sessionID) = request {
                guard sessionID == 0 else {
                    throw IPCError(.invalid, "sessions are not supported by this server (session \(sessionID))")
                }
                client.registered = true
                return .success(.register(info, sessionID: 0, storeMatch: storeType == 1))
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
        case .createBuffer(let size):
            let payload = try createBuffer(size: size)
            return .createBuffer(payload, fd: descriptorsToSend(for: [payload]).first ?? -1)
        case .createBuffers(let sizes):
            var payloads: [IPCPayload] = []
            do throws(IPCError) {
                for size in sizes { payloads.append(try createBuffer(size: size)) }
            } catch {
                for payload in payloads { unsealed.removeValue(forKey: payload.objectID)?.discard() }
                throw error
            }
            return .createBuffers(payloads, fds: descriptorsToSend(for: payloads))
        case .seal(let id):
            try seal(id)
            return .seal
        case .getBuffers(let ids, let allowUnsealed):
            let payloads = try buffers(ids, allowUnsealed: allowUnsealed)
            return .getBuffers(payloads, fds: descriptorsToSend(for: payloads))
        case .dropBuffer(let id):
            guard let writer = unsealed.removeValue(forKey: id) else {
                throw IPCError(.objectNotExists, "no unsealed buffer \(id) on this connection")
            }
            writer.discard()
            return .dropBuffer
        case .shrinkBuffer(let id, let size):
            guard let writer = unsealed[id] else {
                throw IPCError(.objectNotExists, "no unsealed buffer \(id) on this connection")
            }
            guard size <= writer.size else { throw IPCError(.invalid, "cannot shrink \(id) to a larger size") }
            do throws(StoreError) {
                try writer.truncate(to: size, zeroFill: false)
            } catch {
                throw IPCError(error)
            }
            return .shrinkBuffer
        case .createData(let content):
            return try createData(content)
        case .getData(let ids, let wait):
            return .getData(try getData(ids, wait: wait, channel: channel))
        case .listData(let pattern):
            return .getData(try listData(pattern))
        case .delData(let deletion):
            let deleted = try delete(deletion)
            return .delData(deletedBlobs: deletion.wantsFeedback ? deleted : nil)
        case .exists(let id):
            return .exists(unsealed[id] != nil || ownedMeta(id) != nil)
        case .persist(let id):
            guard !id.isBlob else { throw IPCError(.assertionFailed, "!IsBlob(id): The blobs cannot be persisted") }
            guard ownedMeta(id) != nil else {
                throw IPCError(.metaTreeSubtreeNotExists, "failed to persist: object \(id) does not exist")
            }
            do throws(StoreError) {
                try store.persist(id)
            } catch {
                throw IPCError(error)
            }
            return .persist
        case .ifPersist(let id):
            guard let meta = ownedMeta(id) else {
                throw IPCError(.metaTreeSubtreeNotExists, "object \(id) does not exist")
            }
            return .ifPersist(!meta.isTransient)
        case .putName(let name, let id):
            try putName(name, id)
            return .putName
        case .getName(let name, let wait):
            return .getName(try getName(name, wait: wait, channel: channel))
        case .dropName(let name):
            if let path = scope.path(forClientName: name, mounts: client.mounts) {
                do throws(StoreError) {
                    try store.deleteName(scope.storeName(forPath: path))
                } catch {
                    if case .nameNotFound = error { return .dropName }  // vineyardd: OK
                    throw IPCError(error)
                }
            }
            return .dropName
        case .listName(let pattern):
            return .listName(try listNames(pattern))
        case .release(let id):
            if var pin = pins[id] {
                pin.count -= 1
                if pin.count == 0 {
                    pins[id] = nil
                    pin.handle.release()
                } else {
                    pins[id] = pin
                }
            }
            return .release
        case .increaseReferenceCount:
            return .increaseReferenceCount
        case .clusterMeta:
            return .clusterMeta(clusterMeta)
        case .instanceStatus:
            let usage = store.usage
            return .instanceStatus([
                "instance_id": JSONValue(integer: info.instanceID),
                "deployment": "local",
                "memory_usage": JSONValue(integer: usage.bytesUsed),
                "memory_limit": JSONValue(integer: usage.capacity),
                "deferred_requests": 0,
                "ipc_connections": JSONValue(integer: connectionCount()),
                "rpc_connections": 0,
            ])
        case .clear:
            let ids = store.objects { scope.owns($0) && !scope.isInternal($0) }.compactMap(\.id)
            _ = try delete(IPCDeletion(ids: ids, deep: false, force: true, wantsFeedback: false))
            return .clear
        case .unsupported(let type):
            throw ScopedClient.unsupported(type)
        }
    }

    // MARK: - Blobs

    /// The size clients map: `map_size - 8` bytes from offset 0, the whole arena file.
    private var mapSize: Int { store.arenaInfo.size + 8 }

    private func payload(_ id: ObjectID, offset: Int, size: Int, sealed: Bool) -> IPCPayload {
        guard size > 0 else {
            var empty = IPCPayload.empty
            empty.objectID = id
            empty.isSealed = sealed
            return empty
        }
        return IPCPayload(
            objectID: id, storeFD: store.arenaInfo.fileDescriptor, dataOffset: offset, dataSize: size,
            mapSize: mapSize, isSealed: sealed)
    }

    /// The store descriptors among `payloads` this connection has not been sent yet, in order
    /// of first appearance; marks them sent.
    private func descriptorsToSend(for payloads: [IPCPayload]) -> [Int32] {
        var result: [Int32] = []
        for payload in payloads where payload.needsMapping && !sentDescriptors.contains(payload.storeFD) {
            sentDescriptors.insert(payload.storeFD)
            result.append(payload.storeFD)
        }
        return result
    }

    private func createBuffer(size: Int) throws(IPCError) -> IPCPayload {
        if size == 0 { return .empty }
        let usage = store.usage
        guard size <= usage.capacity else { throw outOfMemory(size, usage: usage) }
        guard unsealed.count < Self.maximumUnsealed else {
            throw IPCError(.invalid, "too many unsealed buffers on this connection (\(Self.maximumUnsealed))")
        }
        let writer: BlobWriter
        do throws(StoreError) {
            // The client writes the bytes itself, through its own mapping: the store only reserves
            // fresh memory (its own page tables would be filled for nothing), and the size counts
            // them as written.
            writer = try store.createBlob(expectedSize: size, writtenElsewhere: true)
            try writer.truncate(to: size, zeroFill: false)
        } catch {
            if case .outOfMemory = error { throw outOfMemory(size, usage: store.usage) }
            throw IPCError(error)
        }
        unsealed[writer.id] = writer
        let location = writer.location
        return payload(writer.id, offset: location.offset, size: size, sealed: false)
    }

    private func outOfMemory(_ size: Int, usage: StoreUsage) -> IPCError {
        IPCError(
            .notEnoughMemory,
            "Failed to allocate memory of size \(size), total available memory size are \(usage.capacity), and \(usage.bytesUsed) are already in use"
        )
    }

    private func seal(_ id: ObjectID) throws(IPCError) {
        guard let writer = unsealed[id] else {
            if id == .emptyBlob || ownedMeta(id) != nil { return }  // sealing twice is fine
            throw IPCError(.objectNotExists, "failed to seal: blob \(id) does not exist")
        }
        var meta = ObjectMeta.blob(size: writer.size, instanceID: info.instanceID)
        scope.stamp(&meta)
        do throws(StoreError) {
            try store.seal(writer, meta: meta)
        } catch {
            throw IPCError(error)
        }
        unsealed[id] = nil
    }

    private func buffers(_ ids: [ObjectID], allowUnsealed: Bool) throws(IPCError) -> [IPCPayload] {
        var payloads: [IPCPayload] = []
        for id in ids {
            if id == .emptyBlob {
                payloads.append(.empty)
                continue
            }
            if let writer = unsealed[id] {
                guard allowUnsealed else { throw IPCError(.objectNotSealed, "blob \(id) is not sealed yet") }
                let location = writer.location
                payloads.append(payload(id, offset: location.offset, size: location.size, sealed: false))
                continue
            }
            guard id.isBlob else { continue }
            let handle: ObjectHandle
            if let pinned = pins[id] {
                handle = pinned.handle
                pins[id]!.count += 1
            } else {
                guard let opened = store.object(id) else { continue }  // missing: left out, as vineyardd does
                guard scope.owns(opened.meta) || sharedIDs.contains(id) || ownedMeta(id) != nil else {
                    opened.release()
                    continue
                }
                handle = opened
                pins[id] = Pin(handle: opened, count: 1)
            }
            payloads.append(payload(id, offset: handle.fileOffset, size: handle.size, sealed: true))
        }
        return payloads
    }

    // MARK: - Metadata

    /// An object's metadata if the volume owns it.
    private func ownedMeta(_ id: ObjectID) -> ObjectMeta? {
        guard let meta = store.meta(id) else { return nil }
        if scope.owns(meta) || sharedIDs.contains(id) { return meta }
        // Objects a restored or cloned volume shares with its source carry the source's stamp;
        // they belong to this volume too while one of its names refers to them, and so do
        // their members (which clients reach next, on this connection).
        guard store.names(of: id).contains(where: { $0.hasPrefix(scope.namePrefix) }) else { return nil }
        sharedIDs.insert(id)
        sharedIDs.formUnion(meta.memberIDs)
        return meta
    }

    private func createData(_ content: JSONValue) throws(IPCError) -> IPCReply {
        guard let typename = content["typename"] else {
            throw IPCError(.metaTreeInvalid, "metadata must have a \"typename\"")
        }
        guard case .string(let name) = typename, !name.isEmpty else {
            throw IPCError(.metaTreeInvalid, "\"typename\" must be a non-empty string")
        }
        guard name != "vineyard::Blob" else { throw IPCError(.invalid, "blobs are created with create_buffer") }
        guard content["instance_id"] != nil else {
            throw IPCError(.assertionFailed, "tree.contains(\"instance_id\"): metadata must have an instance_id")
        }
        var meta: ObjectMeta
        do throws(InvalidMetadata) {
            meta = try ObjectMeta(json: content)
        } catch {
            throw IPCError(.metaTreeInvalid, "\(error)")
        }
        meta.id = nil
        let signature = meta.fields["signature"]?.uint64Value ?? store.makeObjectID().rawValue
        meta.fields["signature"] = JSONValue(integer: signature)
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        meta.fields["__timestamp"] = JSONValue(integer: Int(now.tv_sec) * 1000 + Int(now.tv_nsec / 1_000_000))
        scope.stamp(&meta)
        do throws(StoreError) {
            let id = try store.createObject(meta)
            return .createData(id: id, signature: signature, instanceID: meta.instanceID)
        } catch {
            throw IPCError(error)
        }
    }

    private func getData(_ ids: [ObjectID], wait: Bool, channel: IPCChannel) throws(IPCError) -> [ObjectID: JSONValue] {
        var waited = 0
        while true {
            var trees: [ObjectID: JSONValue] = [:]
            for id in ids {
                if let meta = ownedMeta(id) { trees[id] = meta.json }
            }
            if !wait || trees.count == Set(ids).count || !ScopedClient.keepWaiting(&waited, channel) { return trees }
        }
    }

    private func listData(_ pattern: IPCPattern) throws(IPCError) -> [ObjectID: JSONValue] {
        let matcher = try PatternMatcher(pattern)
        guard pattern.limit > 0 else { return [:] }
        let metas = store.objects(limit: pattern.limit) { meta in
            scope.owns(meta) && !scope.isInternal(meta) && matcher.matches(meta.typename)
        }
        var trees: [ObjectID: JSONValue] = [:]
        for meta in metas { trees[meta.id!] = meta.json }
        return trees
    }

    /// Deletes objects of the volume; returns the blobs removed. With `deep`, members go too,
    /// except (unless `force`) members that objects outside the deletion still reference.
    /// Unknown identifiers are ignored, as vineyardd does.
    private func delete(_ deletion: IPCDeletion) throws(IPCError) -> [ObjectID] {
        var candidates: [ObjectID] = []
        var seen: Set<ObjectID> = []
        func visit(_ meta: ObjectMeta) {
            for member in meta.members.values {
                guard let id = member.id, id != .emptyBlob, !seen.contains(id) else { continue }
                seen.insert(id)
                candidates.append(id)
                if let stored = ownedMeta(id) { visit(stored) } else { visit(member) }
            }
        }
        for id in deletion.ids where !seen.contains(id) {
            if let writer = unsealed.removeValue(forKey: id) {
                writer.discard()
                continue
            }
            guard let meta = ownedMeta(id) else { continue }
            seen.insert(id)
            candidates.append(id)
            if deletion.deep { visit(meta) }
        }
        var keep: Set<ObjectID> = []
        if !deletion.force && !candidates.isEmpty {
            for meta in store.objects(where: { scope.owns($0) }) where !seen.contains(meta.id!) {
                keep.formUnion(meta.memberIDs)
            }
        }
        // A snapshot or clone of the volume may name an object too: such an object loses only
        // this volume's names, and it keeps its members.
        for id in candidates where !keep.contains(id) {
            let names = store.names(of: id)
            guard names.contains(where: { !$0.hasPrefix(scope.namePrefix) }) else { continue }
            for name in names where name.hasPrefix(scope.namePrefix) { _ = try? store.deleteName(name) }
            keep.insert(id)
            if let meta = store.meta(id) { keep.formUnion(meta.memberIDs) }
        }
        var deletedBlobs: [ObjectID] = []
        for id in candidates where !keep.contains(id) {
            guard ownedMeta(id) != nil else { continue }
            do throws(StoreError) {
                try store.delete(id)
                if id.isBlob { deletedBlobs.append(id) }
                // This connection asked for the deletion, so its own hold goes too, as with
                // vineyardd: the Python client never sends release_request, and a put, get,
                // delete loop would otherwise keep every blob it read until it disconnects.
                // Other connections' holds still keep the memory from reuse under their readers.
                if let pin = pins.removeValue(forKey: id) { pin.handle.release() }
            } catch {
                if case .notFound = error { continue }
                throw IPCError(error)
            }
        }
        return deletedBlobs
    }

    private var clusterMeta: JSONValue {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count - 1)
        let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return [
            "i\(info.instanceID)": [
                "ipc_socket": .string(info.ipcSocket), "rpc_endpoint": .string(info.rpcEndpoint),
                "hostname": .string(host), "nodename": .string(host), "hostid": JSONValue(integer: UInt64(gethostid())),
                "timestamp": 0,
            ]
        ]
    }

    // MARK: - Names

    private func putName(_ name: String, _ id: ObjectID) throws(IPCError) {
        guard !id.isBlob else { throw IPCError(.invalid, "blobs cannot have name") }
        let storeName = try client.storeName(name)
        guard let meta = ownedMeta(id) else {
            throw IPCError(.objectNotExists, "failed to put name: object \(id) does not exist")
        }
        guard !meta.isTransient else {
            throw IPCError(.invalid, "transient objects cannot have name, please persist it first")
        }
        let previous: ObjectID?
        do throws(StoreError) {
            previous = try store.putName(storeName, id)
        } catch {
            throw IPCError(error)
        }
        // A name bound to a blob is a file written through the volume's file system: the new
        // object replaces that file, whose bytes nothing else can reach any more.
        // A snapshot or clone may still name it, so only an unnamed object goes.
        if let previous, previous != id, previous.isBlob, ownedMeta(previous) != nil {
            _ = try? store.deleteIfUnnamed(previous)
        }
    }

    private func getName(_ name: String, wait: Bool, channel: IPCChannel) throws(IPCError) -> ObjectID {
        let storeName = try client.storeName(name)
        var waited = 0
        while true {
            if let id = store.name(storeName) { return id }
            if !wait || !ScopedClient.keepWaiting(&waited, channel) {
                throw IPCError(.objectNotExists, "failed to find name: \(name)")
            }
        }
    }

    private func listNames(_ pattern: IPCPattern) throws(IPCError) -> [(name: String, id: ObjectID)] {
        try client.visibleNames(store.names(withPrefix: scope.namePrefix).lazy.map { (name: $0.0, id: $0.1) }, matching: pattern)
    }
}
