//
// vineyard-csi: VolumeFS
//
// VineyarddFileSystem+Files.swift: opening, reading, writing and publishing files in vineyardd.

public import FUSEKit
import Glibc
import SharedMemoryStore
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
                if case .directory = existing { throw .isDirectory }
            }
            let handle = try openWriter(path, appending: false)
            return CreateReply(
                entry: EntryReply(attributes: attributes(inode(for: path), .file(size: 0))),
                open: OpenReply(handle: handle, directIO: true))
        }
    }

    public func open(inode: InodeNumber, flags: OpenFlags, context: RequestContext) throws(Errno) -> OpenReply {
        try locked { () throws(Errno) in
            let path = try path(of: inode)
            if flags.isWritable {
                guard !readOnly else { throw .readOnlyFileSystem }
                guard path != VolumeFileSystem.socketFileName else { throw .notPermitted }
                // Direct I/O: written bytes must not land in the inode's page cache, where
                // readers of the previous version would find them.
                return OpenReply(handle: try openWriter(path, appending: !flags.contains(.truncate)), directIO: true)
            }
            guard path != VolumeFileSystem.socketFileName else { return OpenReply(handle: 0) }
            let (chunks, lengths, object) = try mapFile(path)
            let (_, generation) = try connection.current()
            let handle = add(RemoteOpenFile(path: path, generation: generation, writable: false, chunks: chunks, lengths: lengths))
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
        let result = try connection.with { (client) throws(VineyardClientError) -> Result<Mapped, VineyardFileError>? in
            do throws(VineyardFileError) {
                guard let file = try client.file(named: name) else { return nil }
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
        case .failure(.remote)?: throw Errno(rawValue: EREMOTE)  // another node's instance holds the bytes
        case .failure?: throw .io
        }
    }

    private func openWriter(_ path: String, appending: Bool) throws(Errno) -> UInt64 {
        guard state.writing[path] == nil else { throw .busy }  // one writer per file, as a file is one object
        let (_, generation) = try connection.current()
        var existing: (chunks: [MappedBuffer], lengths: [Int], object: ObjectID?) = ([], [], nil)
        if appending, case .file(let size)? = try entry(path), size > 0 {
            existing = try mapFile(path)
        }
        let file = RemoteOpenFile(
            path: path, generation: generation, writable: true, chunks: existing.chunks, lengths: existing.lengths,
            object: existing.object)
        file.dirty = !appending
        state.writing[path] = file.size
        return add(file)
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
        let (_, generation) = try connection.current()
        guard generation == file.generation else { throw .io }
    }

    // MARK: - Read

    public func read(inode: InodeNumber, handle: UInt64, offset: Int64, size: Int, context: RequestContext) throws(Errno) -> ReadReply {
        let file = try locked { () throws(Errno) in try openFile(handle) }
        guard file.writable else { return Self.reply(file, offset: Int(offset), size: size) }
        // A writer's chunk list grows with its writes: take the reply under the lock. Writes only
        // append, so the bytes it points at never change, and the reply keeps them mapped.
        return try locked { () throws(Errno) in Self.reply(file, offset: Int(offset), size: size) }
    }

    /// The bytes at `offset`, as pointers into the mapped blobs (kept mapped by the reply): one
    /// piece, or one per blob when the range spans blobs.
    private static func reply(_ file: RemoteOpenFile, offset start: Int, size: Int) -> ReadReply {
        let end = min(start + size, file.size)
        guard start < end, let first = file.locate(start) else { return .empty }
        let chunk = file.chunks[first.chunk]
        if first.offset + (end - start) <= file.lengths[first.chunk] {
            let bytes = UnsafeRawBufferPointer(rebasing: chunk.bytes[first.offset..<first.offset + end - start])
            return .buffer(bytes, keepAlive: chunk.owner)
        }
        var pieces: [UnsafeRawBufferPointer] = []
        var owners: [AnyObject] = []
        var position = start
        while position < end, let at = file.locate(position) {
            let take = min(end - position, file.lengths[at.chunk] - at.offset)
            let piece = file.chunks[at.chunk]
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
            guard Int(offset) == file.size else { throw .notSupported }  // append-only: blobs are immutable once sealed
            do throws(Errno) {
                var written = 0
                while written < data.count {
                    if file.chunks.count == file.sealed || file.lengths[file.lengths.count - 1] == file.chunks[file.chunks.count - 1].bytes.count {
                        try sealLast(file)
                        let capacity = min(Self.largestChunk, max(Self.firstChunk, file.size))
                        let buffer = try connection.with { (client) throws(VineyardClientError) in try client.createBuffer(size: capacity) }
                        file.chunks.append(buffer)
                        file.lengths.append(0)
                    }
                    let last = file.chunks.count - 1
                    let room = file.chunks[last].bytes.count - file.lengths[last]
                    let take = min(room, data.count - written)
                    (file.chunks[last].mutableBytes.baseAddress! + file.lengths[last])
                        .copyMemory(from: data.baseAddress! + written, byteCount: take)
                    file.lengths[last] += take
                    written += take
                    file.size += take
                }
                file.dirty = true
                state.writing[file.path] = file.size
                return written
            } catch {
                file.failure = error
                throw error
            }
        }
    }

    /// Seals the writer's last blob if it is not yet.
    private func sealLast(_ file: RemoteOpenFile) throws(Errno) {
        guard file.sealed < file.chunks.count else { return }
        let id = file.chunks[file.chunks.count - 1].id
        try connection.with { (client) throws(VineyardClientError) in try client.seal(id) }
        file.sealed = file.chunks.count
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
            try sealLast(file)
            let name = prefix + file.path
            let lengths = file.lengths
            let blobs = file.chunks.map(\.id)
            let (previous, object) = try connection.with { (client) throws(VineyardClientError) -> (ObjectID?, ObjectID) in
                let previous = try client.object(named: name)
                let instance = client.server.instanceID
                let chunks = zip(blobs, lengths).map { VineyardFile.Chunk(blob: $0, length: $1, instanceID: instance) }
                return (previous, try client.publishFile(named: name, chunks: chunks, fields: ownerStamp))
            }
            let keepBlobs = previous == file.sharesBlobsWith
            file.sharesBlobsWith = object
            file.referenced = file.chunks.count
            file.dirty = false
            // The replaced version: its blobs go too unless the new version continues them.
            if let previous { try deleteWhenUnread(file.path, [previous], deep: !keepBlobs) }
        } catch {
            file.failure = error
            throw error
        }
    }

    /// Gives back the blobs a writer filled that no named version uses (unsealed ones are
    /// dropped) and forgets them.
    private func discardUnpublished(_ file: RemoteOpenFile) {
        let own = Array(file.chunks[file.referenced...])
        // Blobs of a vineyardd that went away are gone with it; never send their ids to another.
        if let (_, generation) = try? connection.current(), generation == file.generation {
            let sealed = file.sealed
            let referenced = file.referenced
            try? connection.with { (client) throws(VineyardClientError) in
                for (index, chunk) in own.enumerated() {
                    if referenced + index < sealed { try? client.delete([chunk.id]) } else { try? client.dropBuffer(chunk.id) }
                }
            }
        }
        file.chunks.removeLast(own.count)
        file.lengths.removeLast(own.count)
        file.sealed = min(file.sealed, file.chunks.count)
        file.size = file.lengths.reduce(0, +)
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
                        try? connection.with { (client) throws(VineyardClientError) in try client.delete([deletion.id], deep: deletion.deep) }
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
            guard case .file(let current) = found else { throw .isDirectory }
            if Int(size) == current { return AttributeReply(attributes: attributes(inode, found)) }
            guard size == 0 else { throw .notSupported }  // blobs do not shrink or grow in place
            if let handle, let file = state.handles[handle], file.writable {
                discardUnpublished(file)
                // The leading chunks stay with the version that names them; this writer starts over.
                file.chunks = []
                file.lengths = []
                file.sealed = 0
                file.referenced = 0
                file.sharesBlobsWith = nil
                file.size = 0
                file.dirty = true
                state.writing[path] = 0
            } else {
                let replaced = try connection.with { (client) throws(VineyardClientError) -> ObjectID? in
                    let old = try client.object(named: prefix + path)
                    try client.publishFile(named: prefix + path, chunks: [], fields: ownerStamp)
                    return old
                }
                if let replaced { try deleteWhenUnread(path, [replaced]) }
            }
            return AttributeReply(attributes: attributes(inode, .file(size: 0)))
        }
    }
}

/// Keeps the mappings behind a reply's pieces alive until the reply is written.
private final class MappingOwners {
    let owners: [AnyObject]
    init(_ owners: [AnyObject]) { self.owners = owners }
}
