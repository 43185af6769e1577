//
// vineyard-csi: VolumeFS
//
// VineyarddFileSystem+Files.swift: opening, reading, writing and publishing files in vineyardd.

public import FUSEKit
import Glibc
import SharedMemoryStore
import StoreBackend
import Synchronization
import VineyardIPC

extension VineyarddFileSystem {
    /// A writer's first blob; each next one is as large as the file so far (at most
    /// ``largestChunk``), so a file of n bytes takes O(log n) blobs and wastes under half.
    static let firstChunk = 1 << 20
    static let largestChunk = 64 << 20

    // MARK: - Open and create

    public func create(
        parent: InodeNumber, name: String, mode: UInt32, flags: OpenFlags, context: RequestContext
    ) throws(Errno) -> CreateReply {
        guard !readOnly else { throw .readOnlyFileSystem }
        return try locked { () throws(Errno) in
            let path = try Self.child(try path(of: parent), name)
            if let existing = try entry(path) {
                if flags.contains(.exclusive) { throw .exists }
                if case .config = existing { throw .permissionDenied }
                if case .directory = existing { throw .isDirectory }
            }
            let handle = try openWriter(path, appending: false)
            return CreateReply(
                entry: EntryReply(attributes: attributes(try pinInode(parent: parent, name: name, .file(size: 0)), .file(size: 0))),
                open: OpenReply(handle: handle, directIO: true))
        }
    }

    public func open(inode: InodeNumber, flags: OpenFlags, context: RequestContext) throws(Errno) -> OpenReply {
        do {
            return try openLocked(inode: inode, flags: flags)
        } catch where error == .remote {
            // Bytes on another node's instance: migrated without the lock (it takes as long as
            // the bytes take over vineyard's RPC), then opened from the local copy.
            let path = try locked { () throws(Errno) -> String in try self.path(of: inode) }
            do throws(VineyardFileError) { try connection.prepareLocalCopy(ofFileNamed: prefix + path) } catch { throw error.errno }
            return try openLocked(inode: inode, flags: flags)
        }
    }

    private func openLocked(inode: InodeNumber, flags: OpenFlags) throws(Errno) -> OpenReply {
        try locked { () throws(Errno) in
            let path = try path(of: inode)
            if flags.isWritable {
                guard !readOnly else { throw .readOnlyFileSystem }
                guard path != VolumeFileSystem.socketFileName else { throw .notPermitted }
                guard path != VolumeFileSystem.vineyardConfigFileName else { throw .permissionDenied }
                // Direct I/O: written bytes must not land in the inode's page cache, where
                // readers of the previous version would find them.
                return OpenReply(handle: try openWriter(path, appending: !flags.contains(.truncate)), directIO: true)
            }
            guard path != VolumeFileSystem.socketFileName else { return OpenReply(handle: 0) }
            guard path != VolumeFileSystem.vineyardConfigFileName else { return OpenReply(handle: Self.configHandle) }
            let (chunks, lengths, object) = try mapFile(path)
            let (_, generation) = try connection.currentClient()
            let handle = add(RemoteOpenFile(path: path, generation: generation, writable: false, buffers: chunks, lengths: lengths))
            state.readers[path, default: 0] += 1
            // Cached pages are kept only while they are of the version this open reads.
            let keep = object != nil && state.cachedVersions[path] == object
            state.cachedVersions[path] = object
            return OpenReply(handle: handle, keepCache: keep)
        }
    }

    /// The mapped chunks of the file at `path` (empty for a file being created).
    private func mapFile(_ path: String) throws(Errno) -> (chunks: [MappedBuffer], lengths: [Int], object: ObjectID?) {
        let name = prefix + path
        typealias Mapped = (chunks: [MappedBuffer], lengths: [Int], object: ObjectID?)
        let (_, generation) = try connection.currentClient()
        let result = try connection.call { (client) throws(VineyardClientError) -> Result<Mapped, VineyardFileError>? in
            do throws(VineyardFileError) {
                guard let named = try client.file(named: name) else { return nil }
                // Bytes on another node's instance: their local copy (see `open`).
                let file = try connection.local(named, name: name, client: client, generation: generation, migrating: false)
                return .success((try client.buffers(of: file, name: name), file.chunks.map(\.length), file.object))
            } catch {
                if case .client(let failure) = error { throw failure }
                return .failure(error)
            }
        }
        switch result {
        case nil:
            guard state.writing[path] != nil else { throw .noEntry }
            return ([], [], nil)
        case .success(let mapped)?: return mapped
        case .failure(.remote)?: throw Errno.remote  // another node's instance holds the bytes: `open` migrates them
        case .failure?: throw .io
        }
    }

    private func openWriter(_ path: String, appending: Bool) throws(Errno) -> UInt64 {
        guard state.writing[path] == nil else { throw .busy }  // one writer per file, as a file is one object
        let (_, generation) = try connection.currentClient()
        let file = try makeWriter(path, keepingContent: appending, generation: generation)
        return add(file)
    }

    /// A writer of `path`: starting from the named version's blobs (shared until written:
    /// copy-on-write), or empty (truncated).
    func makeWriter(_ path: String, keepingContent: Bool, generation: UInt64) throws(Errno) -> RemoteOpenFile {
        var existing: (chunks: [MappedBuffer], lengths: [Int], object: ObjectID?) = ([], [], nil)
        var namedSize = 0
        if case .file(let size)? = try entry(path) { namedSize = size }
        if keepingContent && namedSize > 0 {
            existing = try mapFile(path)
        }
        let file = RemoteOpenFile(
            path: path, generation: generation, writable: true, buffers: existing.chunks, lengths: existing.lengths,
            object: existing.object)
        // The named version's bytes are counted already; the writer claims only what it adds.
        file.quotaBase = namedSize
        file.dirty = !keepingContent
        state.writing[path] = file.size
        return file
    }

    private func add(_ file: RemoteOpenFile) -> UInt64 {
        let handle = state.nextHandle
        state.nextHandle += 1
        state.handles[handle] = file
        return handle
    }

    /// The open file of `handle`, checked against the connection's generation.
    private func openFile(_ handle: UInt64) throws(Errno) -> RemoteOpenFile {
        guard let file = state.handles[handle] else { throw .badFileDescriptor }
        try checkGeneration(file)
        return file
    }

    /// `EIO` when vineyardd restarted since `file` was opened: its mapped or unsealed bytes
    /// belong to the instance that went away.
    private func checkGeneration(_ file: RemoteOpenFile) throws(Errno) {
        let (_, generation) = try connection.currentClient()
        guard generation == file.generation else { throw .io }
    }

    // MARK: - Read

    public func read(inode: InodeNumber, handle: UInt64, offset: Int64, size: Int, context: RequestContext) throws(Errno) -> ReadReply {
        if handle == Self.configHandle {
            let text = try locked { () throws(Errno) in try vineyardConfig() }
            return .bytes(Array(text.dropFirst(Int(offset)).prefix(size)))
        }
        let file = try locked { () throws(Errno) in try openFile(handle) }
        guard file.writable else { return Self.reply(file, offset: Int(offset), size: size) }
        // A writer's chunk list changes with its writes: take the reply under the lock; the
        // reply keeps the blobs it points at mapped.
        return try locked { () throws(Errno) in Self.reply(file, offset: Int(offset), size: size) }
    }

    /// The bytes at `offset`, as pointers into the mapped blobs (kept mapped by the reply): one
    /// piece, or one per blob when the range spans blobs.
    private static func reply(_ file: RemoteOpenFile, offset start: Int, size: Int) -> ReadReply {
        let end = min(start + size, file.size)
        guard start < end, let first = file.locate(start) else { return .empty }
        let chunk = file.chunks[first.chunk].buffer
        if first.offset + (end - start) <= file.chunks[first.chunk].length {
            let bytes = UnsafeRawBufferPointer(rebasing: chunk.bytes[first.offset..<first.offset + end - start])
            return .buffer(bytes, keepAlive: chunk.owner)
        }
        var pieces: [UnsafeRawBufferPointer] = []
        var owners: [AnyObject] = []
        var position = start
        while position < end, let at = file.locate(position) {
            let take = min(end - position, file.chunks[at.chunk].length - at.offset)
            let piece = file.chunks[at.chunk].buffer
            pieces.append(UnsafeRawBufferPointer(rebasing: piece.bytes[at.offset..<at.offset + take]))
            if let owner = piece.owner { owners.append(owner) }
            position += take
        }
        return .buffers(pieces, keepAlive: MappingOwners(owners))
    }

    // MARK: - Write

    public func write(
        inode: InodeNumber, handle: UInt64, offset: Int64, data: UnsafeRawBufferPointer, context: RequestContext
    ) throws(Errno) -> Int {
        try locked { () throws(Errno) in
            let file = try openFile(handle)
            guard file.writable else { throw .badFileDescriptor }
            if let failure = file.failure { throw failure }
            do throws(Errno) {
                try write(file, at: Int(offset), data)
                return data.count
            } catch {
                // A failed write (out of room, vineyardd gone) poisons the writer, as in the
                // embedded backend: nothing partial is ever named.
                file.failure = error
                throw error
            }
        }
    }

    // MARK: - Publish

    public func flush(inode: InodeNumber, handle: UInt64, lockOwner: UInt64, context: RequestContext) throws(Errno) {
        try locked { () throws(Errno) in
            guard let file = state.handles[handle], file.writable else { return }
            try publish(file)
        }
    }

    public func synchronize(inode: InodeNumber, handle: UInt64, dataOnly: Bool, context: RequestContext) throws(Errno) {
        try flush(inode: inode, handle: handle, lockOwner: 0, context: context)
    }

    /// Seals what the writer wrote and names the new version. Nothing is named when a write
    /// failed: the previous version stays, never a partial one.
    private func publish(_ file: RemoteOpenFile) throws(Errno) {
        guard file.dirty else { return }
        if let failure = file.failure { throw failure }
        do throws(Errno) {
            try checkGeneration(file)
            try sealAll(file)
            let name = prefix + file.path
            let lengths = file.chunks.map(\.length)
            let blobs = file.chunks.map(\.buffer.id)
            let (previous, object) = try connection.call { (client) throws(VineyardClientError) -> (ObjectID?, ObjectID) in
                let previous = try client.object(named: name)
                let instance = client.server.instanceID
                let chunks = zip(blobs, lengths).map { VineyardFile.Chunk(blob: $0, length: $1, instanceID: instance) }
                return (previous, try client.publishFile(named: name, chunks: chunks, fields: ownerStamp))
            }
            let sharesBlobs = previous == file.sharesBlobsWith
            let orphans = file.baseBlobs.subtracting(blobs)
            file.sharesBlobsWith = object
            file.baseBlobs = Set(blobs)
            for index in file.chunks.indices { file.chunks[index].owned = false }
            file.dirty = false
            quotaPublished(file)
            // The replaced version goes; of its blobs, those the new version no longer uses
            // (replaced by copies, or cut off) go with it, the others now belong to the new one.
            if let previous {
                if sharesBlobs {
                    try deleteWhenUnread(file.path, [previous], deep: false)
                    try deleteWhenUnread(file.path, Array(orphans), deep: false)
                } else {
                    try deleteWhenUnread(file.path, [previous])
                }
            }
        } catch {
            file.failure = error
            throw error
        }
    }

    /// Gives back the blobs a writer filled that no named version uses and forgets them.
    private func discardUnpublished(_ file: RemoteOpenFile) {
        try? giveBack(file.chunks.filter(\.owned).map { ($0.buffer.id, $0.sealed) }, of: file)
        quotaForget(file)
    }

    public func release(inode: InodeNumber, handle: UInt64, flags: OpenFlags) {
        lock.withLock { _ in
            guard let file = state.handles.removeValue(forKey: handle) else { return }
            if file.writable {
                if file.dirty && file.failure == nil { try? publish(file) }
                if file.dirty { discardUnpublished(file) }
                state.writing[file.path] = nil
            } else {
                state.readers[file.path, default: 1] -= 1
                if state.readers[file.path] == 0 {
                    state.readers[file.path] = nil
                    for deletion in state.deferredDeletions.removeValue(forKey: file.path) ?? [] {
                        try? connection.call { (client) throws(VineyardClientError) in try client.delete([deletion.id], deep: deletion.deep) }
                    }
                }
            }
        }
    }

    // MARK: - Attributes

    public func setAttributes(
        inode: InodeNumber, _ changes: SetAttributes, handle: UInt64?, context: RequestContext
    ) throws(Errno) -> AttributeReply {
        try locked { () throws(Errno) in
            let path = try path(of: inode)
            guard let found = try entry(path) else { throw .noEntry }
            guard let size = changes.size else { return AttributeReply(attributes: attributes(inode, found)) }  // modes and times: fixed
            guard !readOnly else { throw .readOnlyFileSystem }
            if case .config = found { throw .permissionDenied }
            guard case .file(let current) = found else { throw .isDirectory }
            if Int(size) == current && handle == nil { return AttributeReply(attributes: attributes(inode, found)) }
            guard size <= UInt64(Int.max) else { throw .fileTooLarge }
            // The open writer of the file (this handle's, or another one: ftruncate and
            // truncate(2) alike); without one, a writer of its own publishes at once.
            let writer = handle.flatMap { state.handles[$0] }.flatMap { $0.writable ? $0 : nil }
                ?? state.handles.values.first { $0.writable && $0.path == path }
            if let writer {
                try checkGeneration(writer)
                if let failure = writer.failure { throw failure }
                try resize(writer, to: Int(size))
                return AttributeReply(attributes: attributes(inode, .file(size: writer.size)))
            }
            let (_, generation) = try connection.currentClient()
            let file = try makeWriter(path, keepingContent: true, generation: generation)
            defer { state.writing[path] = nil }
            do throws(Errno) {
                try resize(file, to: Int(size))
                try publish(file)
            } catch {
                discardUnpublished(file)
                throw error
            }
            return AttributeReply(attributes: attributes(inode, .file(size: file.size)))
        }
    }
}

/// Keeps the mappings behind a reply's pieces alive until the reply is written.
private final class MappingOwners {
    let owners: [AnyObject]
    init(_ owners: [AnyObject]) { self.owners = owners }
}
