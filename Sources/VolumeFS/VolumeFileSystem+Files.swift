//
// vineyard-csi: VolumeFS
//
// VolumeFileSystem+Files.swift: creating, opening, reading, writing and publishing files.

import FUSEKit
import SharedMemoryStore
import StoreBackend
import Synchronization

extension VolumeFileSystem {
    // MARK: - Create and open

    public func create(
        parent: InodeNumber, name: String, mode: UInt32, flags: OpenFlags, context: RequestContext
    ) throws(Errno) -> CreateReply {
        guard !readOnly else { throw .readOnlyFileSystem }
        let name = try Self.validatedName(name)
        let parentNode = try directoryNode(parent)
        return try namespace.withReadLock { () throws(Errno) -> CreateReply in
            // The name may exist already (created through another mount since the kernel's
            // negative lookup): then this is an open of that file.
            if let existing = try? lookupLocked(parentNode, name) {
                let node = try self.node(existing.attributes.inode)
                do throws(Errno) {
                    if flags.contains(.exclusive) { throw .exists }
                    guard node.kind == .file else { throw node.kind == .directory ? .isDirectory : .loop }
                    let open = try openLocked(node, flags: flags, context: context)
                    return CreateReply(entry: existing, open: open)
                } catch {
                    table.withLock { $0.forget(node, 1) }
                    throw error
                }
            }
            let parentPath = try path(of: parentNode)
            let path = VolumeNaming.join(parentPath, name)
            try Self.checkLength(naming.objectName(path))
            let parentAttributes = try existingDirectory(parentPath)
            let attributes = newAttributes(
                parent: parentAttributes, mode: mode, kind: .file, context: context, now: .now)

            let blob = try call { () throws(BackendError) in try backend.startVersion(from: nil, keeping: 0) }
            let handle = files.makeHandle()
            touchParent(of: path)
            let node = table.withLock { table in
                let node = table.pinChild(of: parentNode, named: name, kind: .file, pending: true)
                table.opened(node)
                return node
            }
            let fileAttributes = node.lock.withLock { _ -> FileAttributes in
                // A new inode: its page cache is empty, hence coherent with the empty version.
                node.file.writer = PendingVersion(
                    blob: blob, baseline: 0, size: 0, attributes: attributes, cacheCoherent: true, failure: nil)
                node.file.openCount += 1
                if flags.isWritable { node.file.writableCount += 1 }
                mirrorWriterLocked(node)
                return self.attributes(of: node, writer: node.file.writer!, attached: true)
            }
            let file = OpenFile(node: node, flags: flags)
            files.insert(file, as: handle)
            return CreateReply(
                entry: entry(fileAttributes), open: OpenReply(handle: handle, keepCache: true, directIO: file.directIO))
        }
    }

    public func open(inode: InodeNumber, flags: OpenFlags, context: RequestContext) throws(Errno) -> OpenReply {
        let node = try node(inode)
        switch node.kind {
        case .file: break
        case .directory: throw .isDirectory
        case .symbolicLink: throw .loop
        case .special: throw .invalid  // the kernel opens these itself
        }
        return try namespace.withReadLock { () throws(Errno) -> OpenReply in
            try openLocked(node, flags: flags, context: context)
        }
    }

    /// Opens a file node. Call it with the namespace lock held.
    ///
    /// Reads are served from the object current at open (or from the version being written);
    /// the page cache is kept when it holds exactly that. Read-only handles ask for no FLUSH.
    func openLocked(_ node: Node, flags: OpenFlags, context: RequestContext) throws(Errno) -> OpenReply {
        let writable = flags.isWritable
        if writable && readOnly { throw .readOnlyFileSystem }
        let handle = files.makeHandle()
        table.withLock { $0.opened(node) }
        do throws(Errno) {
            let (keepCache, passthroughOpen) = try node.lock.withLock { _ throws(Errno) -> (Bool, PassthroughOpen?) in
                if writable && !backend.capabilities.contains(.concurrentWriters) && node.file.writableCount > 0 {
                    throw .busy  // one writer per file where a version is the writer's alone
                }
                if node.file.writer == nil {
                    let path = table.withLock { $0.path(of: node) }
                    if let path, let object = try namedFileLocked(node, path: path) {
                        node.file.current = object
                    } else if path != nil {
                        throw staleLocked(node)  // removed through another mount
                    } else if node.file.current == nil {
                        // A discarded new file (its write failed) that the kernel still has a
                        // name for: ESTALE makes the kernel look the name up again, so an
                        // open(O_CREAT) creates the file afresh instead of failing with ENOENT.
                        throw .stale
                    }
                }
                if writable && flags.contains(.truncate) {
                    try resizeLocked(node, to: 0, now: .now)
                }
                let passthroughOpen = passthroughOpenLocked(node, writable: writable)
                node.file.openCount += 1
                if writable { node.file.writableCount += 1 }
                if passthroughOpen != nil {
                    // Reads of this open do not fill the page cache.
                    if node.file.writer == nil { node.file.cachedObjectID = nil }
                    return (false, passthroughOpen)
                }
                if var writer = node.file.writer {
                    let keep = writer.cacheCoherent
                    writer.cacheCoherent = true  // a non-keeping open drops the cache
                    node.file.writer = writer
                    return (keep, nil)
                }
                let currentID = node.file.current?.id
                let keep = currentID != nil && node.file.cachedObjectID == currentID
                node.file.cachedObjectID = currentID
                return (keep, nil)
            }
            let file = OpenFile(
                node: node, flags: flags, passthrough: passthroughOpen != nil,
                directPassthrough: passthroughOpen?.direct ?? false)
            files.insert(file, as: handle)
            // A passthrough open without direct I/O is served by the kernel, page cache or not.
            let directIO = file.directIO || (!writable && directReads && passthroughOpen == nil)
            return OpenReply(
                handle: handle, keepCache: keepCache, directIO: directIO, noFlush: !writable,
                passthrough: passthroughOpen?.id)
        } catch {
            table.withLock { $0.closed(node) }
            throw error
        }
    }

    // MARK: - Data

    public func read(
        inode: InodeNumber, handle: UInt64, offset: Int64, size: Int, context: RequestContext
    ) throws(Errno) -> ReadReply {
        guard let file = files.get(handle) ?? adoptFile(handle, inode: inode, writable: false) else {
            throw .badFileDescriptor
        }
        guard offset >= 0, size >= 0 else { throw .invalid }
        let node = file.node
        // Under the node's lock only pick the source; the reply is sent after returning.
        let (object, copied) = node.lock.withLock { _ -> ((any SealedFile)?, [UInt8]?) in
            guard let writer = node.file.writer else { return (node.file.current, nil) }
            // Being written: the version may move as it grows, so copy (rare: reading back a
            // file before closing it).
            let start = Int(clamping: offset)
            guard start < writer.size else { return (nil, []) }
            return (nil, (try? writer.blob.read(at: start, count: min(size, writer.size - start))) ?? [])
        }
        if let copied { return .bytes(copied) }
        guard let object else { return .empty }
        let bytes = try call { () throws(BackendError) in try object.read(at: Int(clamping: offset), count: size) }
        switch bytes {
        case .copied(let copied): return .bytes(copied)
        case .mapped(let pieces, let keepAlive):
            guard pieces.count > 1 else { return .buffer(pieces.first ?? UnsafeRawBufferPointer(start: nil, count: 0), keepAlive: keepAlive) }
            return .buffers(pieces, keepAlive: keepAlive)
        }
    }

    /// The object named at `path` opened for reading: the one the node serves already when it
    /// is still that, `nil` when the name is gone. Call it with the node's lock held.
    func namedFileLocked(_ node: Node, path: String) throws(Errno) -> (any SealedFile)? {
        try call { () throws(BackendError) -> (any SealedFile)? in
            guard let id = try backend.lookUp(naming.objectName(path)) else { return nil }
            if let current = node.file.current, current.id == id { return current }
            return try backend.openFile(id)
        }
    }

    public func write(
        inode: InodeNumber, handle: UInt64, offset: Int64, data: UnsafeRawBufferPointer, context: RequestContext
    ) throws(Errno) -> Int {
        guard !readOnly else { throw .readOnlyFileSystem }
        guard let file = writableFile(handle, inode: inode) else { throw .badFileDescriptor }
        guard offset >= 0 else { throw .invalid }
        let (end, overflow) = Int(offset).addingReportingOverflow(data.count)
        guard !overflow else { throw .fileTooLarge }
        let node = file.node
        return try namespace.withReadLock { () throws(Errno) -> Int in
            try node.lock.withLock { _ throws(Errno) -> Int in
                if node.file.writer == nil { try startWriterLocked(node, keeping: nil) }
                var writer = node.file.writer!
                if let failure = writer.failure { throw failure }
                let growth = max(0, end - writer.size)
                if growth > 0 && !accounting.reserve(growth, quota: quotaBytes) {
                    writer.failure = .noSpace
                    node.file.writer = writer
                    throw .noSpace
                }
                do throws(BackendError) {
                    try writer.blob.write(at: Int(offset), data)
                } catch {
                    if growth > 0 { accounting.adjustPending(-growth) }
                    let failure = error.errno
                    if failure == .noSpace {
                        writer.failure = failure
                        node.file.writer = writer
                    }
                    throw failure
                }
                let now = Timespec.now
                writer.size += growth
                writer.attributes.modificationTime = now
                writer.attributes.changeTime = now
                writer.attributes.permissions = Self.permissions(writer.attributes.permissions, afterWriteBy: context)
                // Bytes written past the page cache leave any cached pages of the inode stale.
                if file.directIO { writer.cacheCoherent = false }
                node.file.writer = writer
                node.file.dirtyHandles[handle] = context.pid
                mirrorWriterLocked(node)
                return data.count
            }
        }
    }

    /// Publishes the version being written once no writable handle has unflushed changes,
    /// so that the writer's `close(2)` returns with the new version visible to every mount;
    /// reports a failed write (the version is then discarded). See `FileState.dirtyHandles`
    /// for FLUSH requests that do not come from the writer.
    public func flush(inode: InodeNumber, handle: UInt64, lockOwner: UInt64, context: RequestContext) throws(Errno) {
        guard let file = files.get(handle) ?? adoptFlushedFile(handle, inode: inode, context: context), file.writable
        else { return }
        let node = file.node
        try namespace.withReadLock { () throws(Errno) in
            try node.lock.withLock { _ throws(Errno) in
                guard let writer = node.file.dirtyHandles[handle], writer == context.pid || writer == 0 else { return }
                node.file.dirtyHandles[handle] = nil
                guard node.file.writer != nil, node.file.dirtyHandles.isEmpty else { return }
                try publishLocked(node)
            }
        }
    }

    /// Nothing to do: written bytes are in shared memory already, and publishing a version at
    /// every `fsync` would copy the whole file for the next write. The version is published
    /// at close.
    public func synchronize(inode: InodeNumber, handle: UInt64, dataOnly: Bool, context: RequestContext) throws(Errno) {
        guard files.get(handle) ?? adoptFile(handle, inode: inode, writable: false) != nil else {
            throw .badFileDescriptor
        }
    }

    public func release(inode: InodeNumber, handle: UInt64, flags: OpenFlags) {
        if files.get(handle) == nil { _ = adoptFile(handle, inode: inode, writable: flags.isWritable) }
        guard let file = files.remove(handle) else { return }
        let node = file.node
        namespace.withReadLock {
            node.lock.withLock { _ in
                node.file.dirtyHandles[handle] = nil
                passthroughReleaseLocked(node, file)
                node.file.openCount -= 1
                if file.writable { node.file.writableCount -= 1 }
                if node.file.writer != nil && node.file.dirtyHandles.isEmpty {
                    do throws(Errno) {
                        try publishLocked(node)
                    } catch {
                        discardLocked(node)
                    }
                }
                if node.file.openCount == 0 {
                    discardLocked(node)  // a version nobody can finish any more
                    node.file.current = nil
                }
            }
        }
        table.withLock { $0.closed(node) }
    }

    // MARK: - Versions

    /// Starts a new version of a file from its current bytes (the first `keeping` of them;
    /// all when `nil`): one copy into a new unsealed blob. Call it with the node's lock held.
    func startWriterLocked(_ node: Node, keeping: Int?) throws(Errno) {
        let path = table.withLock { $0.path(of: node) }
        let base = try path.map { (path) throws(Errno) in try namedFileLocked(node, path: path) } ?? node.file.current
        let baseSize = base?.size ?? 0
        let kept = min(keeping ?? baseSize, baseSize)
        let blob = try call { () throws(BackendError) in try backend.startVersion(from: base, keeping: kept) }
        let attributes =
            base.map {
                PosixAttributes(meta: $0.meta, defaultPermissions: NodeMetadata.defaultFilePermissions)
            } ?? PosixAttributes(permissions: NodeMetadata.defaultFilePermissions, uid: 0, gid: 0, time: .now)
        accounting.adjustPending(kept - baseSize)
        node.file.writer = PendingVersion(
            blob: blob, baseline: baseSize, size: kept, attributes: attributes,
            cacheCoherent: base.map { node.file.cachedObjectID == $0.id } ?? true, failure: nil)
        mirrorWriterLocked(node)
    }

    /// Sets the size of the version being written (starting one if needed). Call it with the
    /// node's lock held.
    func resizeLocked(_ node: Node, to size: Int, now: Timespec) throws(Errno) {
        if node.file.writer == nil { try startWriterLocked(node, keeping: size) }
        var writer = node.file.writer!
        if let failure = writer.failure { throw failure }
        let delta = size - writer.size
        if delta > 0 && !accounting.reserve(delta, quota: quotaBytes) { throw .noSpace }
        do throws(BackendError) {
            try writer.blob.truncate(to: size)
        } catch {
            if delta > 0 { accounting.adjustPending(-delta) }
            throw error.errno
        }
        if delta < 0 { accounting.adjustPending(delta) }
        writer.size = size
        writer.attributes.modificationTime = now
        writer.attributes.changeTime = now
        node.file.writer = writer
        mirrorWriterLocked(node)
    }

    /// Seals the version being written and binds it to the file's name in one atomic step,
    /// then deletes the version it replaced. A version that failed, or whose file was removed
    /// meanwhile, is discarded instead. Call it with the namespace lock (shared) and the
    /// node's lock held.
    func publishLocked(_ node: Node) throws(Errno) {
        guard let writer = node.file.writer else { return }
        let (path, wasPending) = table.withLock { ($0.path(of: node), node.isPending) }
        if let failure = writer.failure {
            discardLocked(node)
            throw failure
        }
        guard let path else {
            discardLocked(node)
            return
        }
        let name = naming.objectName(path)
        let meta = NodeMetadata.file(
            size: writer.size, attributes: writer.attributes, volumeID: volumeID, instanceID: instanceID)
        let published: PublishedVersion
        do throws(BackendError) {
            published =
                writer.attributes.linkIdentity == nil
                ? try backend.publish(writer.blob, meta: meta, name: name)
                : try backend.publish(writer.blob, meta: meta, name: name, withNamesSharingItsObjectUnder: naming.rootPrefix)
        } catch {
            // The previous version stays; this one is gone.
            discardLocked(node)
            throw error.errno
        }
        var replacedSize = 0
        if let replaced = published.replaced, let old = published.replacedMeta,
            NodeMetadata.kind(of: replaced, meta: old) == .file
        {
            replacedSize = backend.fileSize(of: replaced, meta: old)
        }
        accounting.adjust(bytes: writer.baseline - replacedSize, files: published.replaced == nil ? 1 : 0)
        accounting.settle(writer.size - writer.baseline)
        node.file.writer = nil
        mirrorWriterLocked(node)
        node.file.cachedObjectID = writer.cacheCoherent ? published.id : nil
        if node.file.openCount > 0 { node.file.current = try? backend.openFile(published.id) }
        if wasPending { table.withLock { $0.setPending(node, false) } }
    }

    /// Drops the version being written; a file whose first version it was disappears. Call
    /// it with the node's lock held.
    func discardLocked(_ node: Node) {
        guard let writer = node.file.writer else { return }
        node.file.writer = nil
        mirrorWriterLocked(node)
        node.file.cachedObjectID = nil  // the page cache holds the discarded bytes
        accounting.adjustPending(writer.baseline - writer.size)
        writer.blob.discard()
        table.withLock { table in
            if node.isPending { table.detach(node) }
        }
    }
}
