// vineyard-csi: StoreBackend
// VineyarddBackend+Files.swift: files in vineyardd: chunked file objects, mapped for reading, written copy-on-write.

import POSIXCore
import Synchronization
import VineyardIPC

/// Files written through a volume are ``VineyardClient/chunkedFileTypeName`` objects whose
/// bytes are blobs in vineyardd's shared memory (see ``VineyarddVersion``); byte tensors that
/// vineyard clients put under a volume's prefix read as files too. Reads map vineyardd's memory
/// and answer with pointers into it.
///
/// vineyardd reuses a deleted object's memory at once, even under another client's mapping, so
/// an object (or blob) open for reading is deleted only when its last reader lets go.
extension VineyarddBackend {
    public var identity: ObjectIdentifier { ObjectIdentifier(connection) }
    /// vineyardd fills in its own instance id.
    public var instanceID: UInt64 { 0 }

    /// vineyardd's objects are immutable: the edited tree becomes a new persisted object (its
    /// members, a file's blobs, are shared, not copied) bound to `name`; the old object goes
    /// without its members once nothing reads it.
    public func updateMeta(_ id: ObjectID, name: String, _ body: (inout ObjectMeta) -> Void) throws(BackendError) {
        let tree = try connection.with { (client) throws(VineyardClientError) in try client.meta(id) }
        guard let tree, case .object(var fields) = tree else {
            throw BackendError(errno: .noEntry, underlying: MissingName(name: "object \(id)"))
        }
        var meta = Self.objectMeta(tree)
        let before = meta.fields
        body(&meta)
        for (key, value) in meta.fields where before[key] != value { fields[key] = value }
        for key in before.keys where meta.fields[key] == nil { fields[key] = nil }
        // vineyardd gives the new object an id and signature of its own.
        fields["id"] = nil
        fields["signature"] = nil
        let edited = fields
        try connection.with { (client) throws(VineyardClientError) in
            let replacement = try client.createData(.object(edited))
            try client.persist(replacement)
            try client.putName(name, replacement)
        }
        try delete([id], deep: false, guarding: [id])
    }

    /// Deletes the object with its blobs (an object has the names of one volume only), once
    /// nothing reads it any more.
    public func retire(_ id: ObjectID) throws(BackendError) {
        var guards: Set<ObjectID> = [id]
        if readers.isReading {
            guards.formUnion(try connection.with { (client) throws(VineyardClientError) -> [ObjectID] in
                guard let tree = try client.meta(id) else { return [] }
                return (try? client.file(meta: tree, name: "\(id)"))?.chunks.map(\.blob) ?? []
            })
        }
        try delete([id], deep: true, guarding: guards)
    }

    /// Deletes `ids` now, or when the last reader of any of `guards` lets go.
    func delete(_ ids: [ObjectID], deep: Bool, guarding guards: Set<ObjectID>) throws(BackendError) {
        guard !ids.isEmpty else { return }
        let (_, generation) = try connection.current()
        let deletion = ReaderRegistry.Deletion(ids: ids, deep: deep, guards: guards, generation: generation)
        if readers.postpone(deletion) { return }
        try connection.with { (client) throws(VineyardClientError) in try client.delete(ids, deep: deep) }
    }

    /// Runs deletions whose readers are gone; those of a vineyardd that went away are gone with it.
    func perform(_ deletions: [ReaderRegistry.Deletion]) {
        guard !deletions.isEmpty, let (client, generation) = try? connection.current() else { return }
        for deletion in deletions where deletion.generation == generation {
            try? client.delete(deletion.ids, deep: deletion.deep)
        }
    }

    public func renameName(from: String, to: String) throws(BackendError) -> ObjectID? {
        let moved = try connection.with { (client) throws(VineyardClientError) -> (found: Bool, replaced: ObjectID?) in
            guard let id = try client.object(named: from) else { return (false, nil) }
            let replaced = try client.object(named: to)
            try client.putName(to, id)
            try client.dropName(from)
            return (true, replaced)
        }
        guard moved.found else { throw BackendError(errno: .noEntry, underlying: MissingName(name: from)) }
        return moved.replaced
    }

    /// vineyardd lists names by pattern only: every name below `prefix`, grouped here.
    public func listDirectory(_ prefix: String, after: ListedName?, limit: Int) throws(BackendError) -> [ListedName] {
        var entries: [String: ListedName] = [:]
        for (name, id) in try names(withPrefix: prefix, limit: nil) {
            let rest = name.utf8.dropFirst(prefix.utf8.count)
            if let slash = rest.firstIndex(of: UInt8(ascii: "/")) {
                let entry = ListedName.directory(name: String(decoding: rest[..<slash], as: UTF8.self))
                entries[entry.sortKey] = entry
            } else {
                let entry = ListedName.object(name: String(decoding: rest, as: UTF8.self), id: id)
                entries[entry.sortKey] = entry
            }
        }
        let cursor = after?.sortKey
        return entries.keys.filter { key in cursor.map { $0.utf8.lexicographicallyPrecedes(key.utf8) } ?? true }
            .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            .prefix(limit).map { entries[$0]! }
    }

    /// File objects and byte tensors read as their bytes; other objects as empty files.
    public func fileSize(of id: ObjectID, meta: ObjectMeta) -> Int {
        let typename = meta.typename
        guard typename == VineyardClient.chunkedFileTypeName || typename.hasPrefix("vineyard::Tensor<") else { return 0 }
        return max(0, meta.nbytes)
    }

    public func openFile(_ id: ObjectID) throws(BackendError) -> (any SealedFile)? {
        let (client, generation) = try connection.current()
        let tree: JSONValue
        let opened: Result<(VineyardFile, [MappedBuffer]), VineyardFileError>
        do throws(VineyardClientError) {
            guard let found = try client.meta(id) else { return nil }
            tree = found
            do throws(VineyardFileError) {
                let file = try client.file(meta: tree, name: "\(id)")
                opened = .success((file, try client.buffers(of: file, name: "\(id)")))
            } catch {
                if case .client(let failure) = error { throw failure }
                opened = .failure(error)
            }
        } catch {
            throw BackendError(error)
        }
        let meta = Self.objectMeta(tree)
        switch opened {
        case .success(let (file, buffers)):
            return VineyarddFile(backend: self, generation: generation, meta: meta, file: file, buffers: buffers)
        case .failure(let error):
            // Another node's instance holds the bytes (EREMOTE), or the object is not a file (a
            // DataFrame: EIO). It can still be replaced; reading it fails.
            let errno: Errno = if case .remote = error { .remote } else { .io }
            return UnreadableFile(
                id: id, meta: meta, size: fileSize(of: id, meta: meta), failure: BackendError(errno: errno, underlying: error))
        }
    }

    public func startVersion(from base: (any SealedFile)?, keeping: Int) throws(BackendError) -> any FileVersion {
        let (_, generation) = try connection.current()
        let version: VineyarddVersion
        if let base, keeping > 0 {
            if let unreadable = base as? UnreadableFile { throw unreadable.failure }
            guard let file = base as? VineyarddFile else {
                throw BackendError(errno: .invalid, underlying: MissingName(name: "a file of another backend"))
            }
            try file.checkGeneration()
            version = VineyarddVersion(backend: self, generation: generation, base: file)
            if keeping < version.size { try version.truncate(to: keeping) }
        } else {
            version = VineyarddVersion(backend: self, generation: generation, base: nil)
        }
        return version
    }

    /// vineyardd's memory does not outlive it: nothing to adopt.
    public func adoptVersion(at extent: VersionExtent, size: Int) throws(BackendError) -> any FileVersion {
        throw BackendError(errno: .notSupported, underlying: MissingName(name: "an unsealed version"))
    }

    /// Seals the version's own blobs, publishes the file object (persisted, named), and retires
    /// the version it replaced: of its blobs, those the new version no longer uses (replaced by
    /// copies, or cut off) go with it, the others now belong to the new one.
    public func publish(_ version: any FileVersion, meta: ObjectMeta, name: String) throws(BackendError) -> PublishedVersion {
        guard let version = version as? VineyarddVersion else {
            throw BackendError(errno: .invalid, underlying: MissingName(name: "a version of another backend"))
        }
        try version.checkGeneration()
        try version.sealAll()
        let chunks = version.chunks.map { ($0.buffer.id, $0.length) }
        var fields = meta.fields
        fields["length"] = nil  // a blob's field; the file object counts `nbytes`
        let (previous, object) = try connection.with { (client) throws(VineyardClientError) -> (ObjectID?, ObjectID) in
            let previous = try client.object(named: name)
            let instance = client.server.instanceID
            let published = chunks.map { VineyardFile.Chunk(blob: $0.0, length: $0.1, instanceID: instance) }
            return (previous, try client.publishFile(named: name, chunks: published, fields: fields))
        }
        version.published()
        guard let previous, previous != object else { return PublishedVersion(id: object, replaced: nil, replacedMeta: nil) }
        let replacedMeta = try? self.meta(previous)
        if previous == version.base?.id {
            let orphans = version.baseBlobs.subtracting(chunks.map(\.0))
            try delete([previous], deep: false, guarding: [previous])
            try delete(Array(orphans), deep: false, guarding: orphans)
        } else {
            try retire(previous)
        }
        return PublishedVersion(id: object, replaced: previous, replacedMeta: replacedMeta)
    }
}

/// A name that names nothing (a rename's source), or an operation on another backend's file.
struct MissingName: Error, CustomStringConvertible {
    var name: String
    var description: String { "\(name) is not there" }
}

/// The objects and blobs open for reading through one backend, and the deletions waiting until
/// their last reader lets go.
final class ReaderRegistry: Sendable {
    struct Deletion: Sendable {
        var ids: [ObjectID]
        var deep: Bool
        /// Deleted once none of these is read.
        var guards: Set<ObjectID>
        /// The connection generation it was asked under.
        var generation: UInt64
    }

    private struct State {
        var held: [ObjectID: Int] = [:]
        var waiting: [Deletion] = []
    }

    private let state = Mutex(State())

    /// Whether anything is open for reading.
    var isReading: Bool { state.withLock { !$0.held.isEmpty } }

    func hold(_ ids: [ObjectID]) {
        state.withLock { state in
            for id in ids { state.held[id, default: 0] += 1 }
        }
    }

    /// Lets go of `ids`; returns the deletions nothing holds back any more.
    func release(_ ids: [ObjectID]) -> [Deletion] {
        state.withLock { state in
            for id in ids {
                state.held[id, default: 1] -= 1
                if state.held[id] == 0 { state.held[id] = nil }
            }
            let held = state.held
            let ready = state.waiting.filter { $0.guards.allSatisfy { held[$0] == nil } }
            state.waiting.removeAll { $0.guards.allSatisfy { held[$0] == nil } }
            return ready
        }
    }

    /// Keeps `deletion` for later when something it guards is read; `false` when it may run now.
    func postpone(_ deletion: Deletion) -> Bool {
        state.withLock { state in
            guard deletion.guards.contains(where: { state.held[$0] != nil }) else { return false }
            state.waiting.append(deletion)
            return true
        }
    }
}

/// A file object of vineyardd opened for reading: its chunks mapped (and so readable) until it
/// is released.
final class VineyarddFile: SealedFile {
    let backend: VineyarddBackend
    let generation: UInt64
    let meta: ObjectMeta
    let id: ObjectID
    let size: Int
    /// The chunks' bytes, each as long as the file uses.
    let buffers: [MappedBuffer]

    init(backend: VineyarddBackend, generation: UInt64, meta: ObjectMeta, file: VineyardFile, buffers: [MappedBuffer]) {
        self.backend = backend
        self.generation = generation
        self.meta = meta
        self.id = file.object
        self.size = file.size
        self.buffers = buffers
        backend.readers.hold([id] + buffers.map(\.id))
    }

    deinit {
        backend.perform(backend.readers.release([id] + buffers.map(\.id)))
    }

    /// `EIO` when vineyardd restarted since the file was opened: the memory mapped belongs to
    /// the instance that went away.
    func checkGeneration() throws(BackendError) {
        let (_, current) = try backend.connection.current()
        guard current == generation else { throw BackendError(errno: .io, underlying: MissingName(name: "memory of a restarted vineyardd")) }
    }

    /// Pointers into the mapped chunks (one piece per chunk the range spans). The reply keeps
    /// this file alive, and so its objects undeleted, until it is written.
    func read(at offset: Int, count: Int) throws(BackendError) -> FileBytes {
        try checkGeneration()
        guard case .mapped(let pieces, _) = Self.pieces(of: buffers.map { ($0, $0.bytes.count) }, at: offset, count: count)
        else { return .empty }
        return .mapped(pieces, keepAlive: self)
    }

    /// The bytes `offset..<offset+count` of chunks laid end to end, each `length` long.
    static func pieces(of chunks: [(buffer: MappedBuffer, length: Int)], at offset: Int, count: Int) -> FileBytes {
        var pieces: [UnsafeRawBufferPointer] = []
        var owners: [AnyObject] = []
        var start = 0
        let end = offset + count
        for (buffer, length) in chunks {
            defer { start += length }
            guard start + length > offset, start < end else { continue }
            let from = max(offset, start) - start
            let to = min(end, start + length) - start
            pieces.append(UnsafeRawBufferPointer(rebasing: buffer.bytes[from..<to]))
            if let owner = buffer.owner { owners.append(owner) }
        }
        return .mapped(pieces, keepAlive: MappingOwners(owners))
    }
}

/// An object found where a file is that cannot be read here: shown with its size, replaceable,
/// and every read fails with the reason.
final class UnreadableFile: SealedFile {
    let id: ObjectID
    let meta: ObjectMeta
    let size: Int
    let failure: BackendError

    init(id: ObjectID, meta: ObjectMeta, size: Int, failure: BackendError) {
        self.id = id
        self.meta = meta
        self.size = size
        self.failure = failure
    }

    func read(at offset: Int, count: Int) throws(BackendError) -> FileBytes {
        throw failure
    }
}

/// Keeps the mappings behind a reply's pieces alive until the reply is written.
final class MappingOwners: @unchecked Sendable {
    let owners: [AnyObject]
    init(_ owners: [AnyObject]) { self.owners = owners }
}
