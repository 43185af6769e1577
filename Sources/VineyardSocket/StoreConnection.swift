// vineyard-csi: VineyardSocket
// StoreConnection.swift: vineyard's commands for one connection of a volume's socket, served from the embedded store.

import VineyardIPC
import Glibc
import SharedMemoryStore

/// One connection of a volume's socket, served from the embedded store within the volume's
/// ``VolumeScope``.
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
final class StoreConnection: ConnectionBackend {
    private struct Pin {
        let handle: ObjectHandle
        var count: Int
    }

    private let store: ObjectStore
    private let scope: VolumeScope
    private let info: IPCServerInfo
    private let connectionCount: @Sendable () -> Int
    private var sentDescriptors: Set<Int32> = []
    /// The `store_fd` each blob in a file of its own goes by on this connection. The client
    /// keeps a mapping per `store_fd` for as long as it is connected, so a key is never given to
    /// another file; the numbers lie far above any descriptor number.
    private var ownFileKeys: [ObjectID: Int32] = [:]
    private var nextOwnFileKey: Int32 = 0x4000_0000
    /// Blobs in files of their own, by their key (what to open when the key is first sent).
    private var ownFileBlobs: [Int32: ObjectID] = [:]
    private var unsealed: [ObjectID: BlobWriter] = [:]
    private var pins: [ObjectID: Pin] = [:]
    /// Objects shared with a snapshot or another volume that this connection reached through
    /// the volume's names (see `ownedMeta`).
    private var sharedIDs: Set<ObjectID> = []

    /// Unsealed blobs one connection may hold at once: a bound on bookkeeping, far above what
    /// vineyard's builders use (one at a time).
    static let maximumUnsealed = 1 << 16

    init(store: ObjectStore, scope: VolumeScope, info: IPCServerInfo, connectionCount: @escaping @Sendable () -> Int) {
        self.store = store
        self.scope = scope
        self.info = info
        self.connectionCount = connectionCount
    }

    func connectionClosed() {
        for writer in unsealed.values { writer.discard() }
        unsealed.removeAll()
        for pin in pins.values { pin.handle.release() }
        pins.removeAll()
        ownFileBlobs.removeAll()
    }

    func register(version: String, storeType: Int) throws(IPCError) -> IPCReply {
        .register(info, sessionID: 0, storeMatch: storeType == 1)
    }

    func isVisible(_ id: ObjectID) throws(IPCError) -> Bool {
        unsealed[id] != nil || ownedMeta(id) != nil
    }

    func createBuffers(_ request: IPCRequest) throws(IPCError) -> IPCReply {
        switch request {
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
        default:
            throw IPCError(.invalid, "unexpected \(request.type)")
        }
    }

    func seal(_ id: ObjectID) throws(IPCError) -> IPCReply {
        try sealBlob(id)
        return .seal
    }

    func buffers(_ ids: [ObjectID], unsafe: Bool) throws(IPCError) -> IPCReply {
        let payloads = try buffers(ids, allowUnsealed: unsafe)
        let keys = descriptorsToSend(for: payloads)
        let reply = IPCReply.getBuffers(payloads, fds: keys)
        guard keys.contains(where: { ownFileBlobs[$0] != nil }) else { return reply }
        // Some keys stand for blob files: the reply carries descriptors of its own, opened
        // here and closed once sent.
        var descriptors: [Int32] = []
        do throws(IPCError) {
            for key in keys {
                if let id = ownFileBlobs[key] {
                    do throws(StoreError) {
                        // The pin taken for this reply keeps a deleted blob's file reachable.
                        if let pinned = pins[id] {
                            descriptors.append(try pinned.handle.openFile())
                        } else {
                            descriptors.append(try store.openBlobFile(id))
                        }
                    } catch {
                        throw IPCError(error)
                    }
                } else {
                    let copy = dup(key)
                    guard copy >= 0 else { throw IPCError(.ioError, "cannot duplicate the store descriptor: \(String(cString: strerror(errno)))") }
                    descriptors.append(copy)
                }
            }
        } catch {
            for descriptor in descriptors { close(descriptor) }
            for key in keys { sentDescriptors.remove(key) }
            throw error
        }
        for key in keys { ownFileBlobs[key] = nil }
        return .forwarded(reply.json, descriptors: descriptors)
    }

    func dropBuffer(_ id: ObjectID) throws(IPCError) -> IPCReply {
        guard let writer = unsealed.removeValue(forKey: id) else {
            throw IPCError(.objectNotExists, "no unsealed buffer \(id) on this connection")
        }
        writer.discard()
        return .dropBuffer
    }

    func shrinkBuffer(_ id: ObjectID, to size: Int) throws(IPCError) -> IPCReply {
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
    }

    func trees(_ ids: [ObjectID]) throws(IPCError) -> [ObjectID: JSONValue] {
        var trees: [ObjectID: JSONValue] = [:]
        for id in ids {
            if let meta = ownedMeta(id) { trees[id] = meta.json }
        }
        return trees
    }

    func delete(_ deletion: IPCDeletion) throws(IPCError) -> IPCReply {
        let deleted = try deleteObjects(deletion)
        if deletion.memoryTrim { store.trim() }
        return .delData(deletedBlobs: deletion.wantsFeedback ? deleted : nil)
    }

    /// The store is this node's only instance: every object of the volume is local already,
    /// and vineyardd answers a local object with itself.
    func migrate(_ id: ObjectID) throws(IPCError) -> IPCReply {
        guard ownedMeta(id)?.fields["global"]?.boolValue != true else {
            throw IPCError(.invalid, "global objects cannot be directly migrated")
        }
        return .migrateObject(id)
    }

    /// Returns the store's free memory to the host (later allocations there fault pages in again).
    func memoryTrim() throws(IPCError) -> IPCReply {
        .memoryTrim(trimmed: store.trim() > 0)
    }

    func stream(_ request: IPCStreamRequest) throws(IPCError) -> IPCReply? { nil }

    func exists(_ id: ObjectID) throws(IPCError) -> IPCReply {
        .exists(true)
    }

    func persist(_ id: ObjectID) throws(IPCError) -> IPCReply {
        do throws(StoreError) {
            try store.persist(id)
        } catch {
            throw IPCError(error)
        }
        return .persist
    }

    func ifPersist(_ id: ObjectID) throws(IPCError) -> IPCReply {
        guard let meta = ownedMeta(id) else {
            throw IPCError(.metaTreeSubtreeNotExists, "object \(id) does not exist")
        }
        return .ifPersist(!meta.isTransient)
    }

    func putName(_ storeName: String, _ id: ObjectID) throws(IPCError) -> IPCReply {
        try bind(storeName, id)
        return .putName
    }

    func object(named storeName: String) throws(IPCError) -> ObjectID? {
        store.name(storeName)
    }

    func dropName(_ storeName: String) throws(IPCError) -> IPCReply {
        do throws(StoreError) {
            try store.deleteName(storeName)
        } catch {
            if case .nameNotFound = error { return .dropName }  // vineyardd: OK
            throw IPCError(error)
        }
        return .dropName
    }

    func volumeNames() throws(IPCError) -> [(name: String, id: ObjectID)] {
        store.names(withPrefix: scope.namePrefix).map { (name: $0.0, id: $0.1) }
    }

    func release(_ id: ObjectID) throws(IPCError) -> IPCReply {
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
    }

    func increaseReferenceCount(_ ids: [ObjectID]) throws(IPCError) -> IPCReply {
        .increaseReferenceCount
    }

    func clusterMeta() throws(IPCError) -> IPCReply {
        .clusterMeta(clusterMetaTree)
    }

    func instanceStatus() throws(IPCError) -> IPCReply {
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
    }

    func clear() throws(IPCError) -> IPCReply {
        let ids = store.objects { scope.owns($0) && !scope.isInternal($0) }.compactMap(\.id)
        _ = try deleteObjects(IPCDeletion(ids: ids, deep: false, force: true, wantsFeedback: false))
        return .clear
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

    /// A sealed blob in a file of its own: the client maps the whole file (`map_size - 8`
    /// bytes from offset 0) under the blob's key.
    private func ownFilePayload(_ id: ObjectID, handle: ObjectHandle) -> IPCPayload {
        let key: Int32
        if let known = ownFileKeys[id] {
            key = known
        } else {
            key = nextOwnFileKey
            nextOwnFileKey += 1
            ownFileKeys[id] = key
            ownFileBlobs[key] = id
        }
        return IPCPayload(
            objectID: id, storeFD: key, dataOffset: 0, dataSize: handle.size, mapSize: handle.size + 8, isSealed: true)
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
            // In the arena: the reply names the arena's descriptor and an offset, which a buffer
            // that moved into a file of its own while growing would no longer match.
            writer = try store.createBlob(expectedSize: size, writtenElsewhere: true, placement: .arena)
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

    private func sealBlob(_ id: ObjectID) throws(IPCError) {
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
            if handle.isOwnFile && handle.size > 0 {
                payloads.append(ownFilePayload(id, handle: handle))
            } else {
                payloads.append(payload(id, offset: handle.fileOffset, size: handle.size, sealed: true))
            }
        }
        return payloads
    }

    // MARK: - Metadata

    /// An object's metadata if the volume owns it.
    /// A member given by id only (`meta.add_member(name, object_id)`: the client sends a tree with
    /// an empty type name) is stored as that object's tree, since vineyardd links members by id
    /// and readers resolve them by their type name.
    private func resolvingMemberReferences(_ meta: ObjectMeta) -> ObjectMeta {
        var meta = meta
        for (key, member) in meta.members {
            if member.typename.isEmpty, let id = member.id, let stored = ownedMeta(id) {
                meta.members[key] = stored
            } else if !member.members.isEmpty {
                meta.members[key] = resolvingMemberReferences(member)
            }
        }
        return meta
    }

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

    func createData(_ content: JSONValue) throws(IPCError) -> IPCReply {
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
        meta = resolvingMemberReferences(meta)
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

    func listData(_ pattern: IPCPattern, matcher: PatternMatcher) throws(IPCError) -> [ObjectID: JSONValue] {
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
    private func deleteObjects(_ deletion: IPCDeletion) throws(IPCError) -> [ObjectID] {
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

    private var clusterMetaTree: JSONValue {
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

    private func bind(_ storeName: String, _ id: ObjectID) throws(IPCError) {
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
}
