//
// vineyard-csi: VolumeFS
//
// VolumeFileSystem+Attributes.swift: lookup, forget, getattr, setattr and statfs.

import FUSEKit
import SharedMemoryStore
import StoreBackend
import Synchronization

extension VolumeFileSystem {
    // MARK: - Lookup

    public func lookup(parent: InodeNumber, name: String, context: RequestContext) throws(Errno) -> EntryReply {
        let name = try Self.validatedName(name, allowDots: true)
        let parentNode = try directoryNode(parent)
        return try namespace.withReadLock { () throws(Errno) -> EntryReply in
            if name.string == "." || name.string == ".." {
                let target = table.withLock { table -> Node in
                    let target = name.string == "." ? parentNode : (parentNode.parent ?? table.root)
                    table.pin(target)
                    return target
                }
                do throws(Errno) {
                    return entry(try currentAttributes(target))
                } catch {
                    table.withLock { $0.forget(target, 1) }
                    throw error
                }
            }
            return try lookupLocked(parentNode, name)
        }
    }

    /// Looks `name` up in `parent`, adding one lookup to the node returned. Call it with the
    /// namespace lock held.
    func lookupLocked(_ parent: Node, _ name: FileName) throws(Errno) -> EntryReply {
        // Pin a known node first, so that a concurrent FORGET cannot drop it meanwhile; the pin
        // becomes the reply's lookup, or is given back.
        let (known, parentPath) = table.withLock { table -> (Node?, String?) in
            let known = table.child(of: parent, named: name)
            if let known { table.pin(known) }
            return (known, table.path(of: parent))
        }
        // A file being written here is answered from its pending version (it may not be in the
        // store at all yet).
        if let known, known.kind == .file {
            let pending: FileAttributes? = known.lock.withLock { _ in
                known.file.writer.map { attributes(of: known, writer: $0, attached: true) }
            }
            if let pending { return entry(pending) }
        }
        guard let parentPath, let resolved = try resolve(VolumeNaming.join(parentPath, name)) else {
            if let known {
                table.withLock { table in
                    // Gone from the store (removed through another mount).
                    if parentPath != nil && !known.isPending { table.detach(known) }
                    table.forget(known, 1)
                }
            }
            throw .noEntry
        }
        let node: Node
        if let linked = linkedInode(for: resolved) {
            if let known { table.withLock { $0.forget(known, 1) } }
            return entry(attributes(of: linked, resolved: resolved))
        } else if let known, known.kind == resolved.kind {
            node = known
        } else {
            node = table.withLock { table in
                if let known { table.forget(known, 1) }
                return table.pinChild(of: parent, named: name, kind: resolved.kind)
            }
        }
        recordLinked(node, resolved: resolved)
        return entry(attributes(of: node, resolved: resolved))
    }

    public func forget(inode: InodeNumber, lookups: UInt64) {
        table.withLock { table in
            guard let node = table.node(inode) else { return }
            table.forget(node, lookups)
        }
    }

    // MARK: - Attributes

    public func getAttributes(inode: InodeNumber, handle: UInt64?, context: RequestContext) throws(Errno)
        -> AttributeReply
    {
        let node = try node(inode)
        let attributes = try namespace.withReadLock { () throws(Errno) -> FileAttributes in
            try currentAttributes(node)
        }
        return AttributeReply(attributes: attributes, timeout: Self.cacheTimeout)
    }

    /// The attributes of a node now. Call it with the namespace lock held.
    func currentAttributes(_ node: Node) throws(Errno) -> FileAttributes {
        switch node.kind {
        case .file:
            return try node.lock.withLock { _ throws(Errno) -> FileAttributes in
                try fileAttributesLocked(node)
            }
        case .directory, .symbolicLink, .special:
            let path = try path(of: node)
            guard let resolved = try resolve(path), resolved.kind == node.kind else { throw staleLocked(node) }
            return attributes(of: node, resolved: resolved)
        }
    }

    /// An attached node whose path no longer names it in the store (removed or replaced
    /// through another mount) is detached, and the request answered with `ESTALE`: the kernel
    /// then repeats the path walk with a fresh LOOKUP (an `open(O_CREAT)` then creates the
    /// file) instead of failing on the dentry it cached.
    func staleLocked(_ node: Node) -> Errno {
        table.withLock { table in
            if !node.isPending { table.detach(node) }
        }
        return .stale
    }

    /// A file's attributes: its pending version's, else the store's; a file removed while
    /// open keeps the attributes of the version it serves, with no links. Call it with the
    /// node's lock held.
    func fileAttributesLocked(_ node: Node) throws(Errno) -> FileAttributes {
        let path = table.withLock { $0.path(of: node) }
        if let writer = node.file.writer {
            return attributes(of: node, writer: writer, attached: path != nil)
        }
        if let path, case .file(let id, let meta)? = try resolve(path) {
            refreshCurrentLocked(node, to: id)
            return attributes(of: node, resolved: .file(id, meta))
        }
        if let current = node.file.current {
            let posix = PosixAttributes(meta: current.meta, defaultPermissions: NodeMetadata.defaultFilePermissions)
            return attributes(of: node, posix: posix, size: current.size, linkCount: 0)
        }
        throw path == nil ? .noEntry : staleLocked(node)
    }

    /// Serves an open file from object `id` from now on, when it was replaced elsewhere.
    /// Call it with the node's lock held.
    func refreshCurrentLocked(_ node: Node, to id: ObjectID) {
        guard node.file.openCount > 0, node.file.current?.id != id, let object = try? backend.openFile(id) else { return }
        node.file.current = object
    }

    public func setAttributes(
        inode: InodeNumber, _ changes: SetAttributes, handle: UInt64?, context: RequestContext
    ) throws(Errno) -> AttributeReply {
        guard !readOnly else { throw .readOnlyFileSystem }
        let node = try node(inode)
        let attributes = try namespace.withReadLock { () throws(Errno) -> FileAttributes in
            switch node.kind {
            case .file:
                return try node.lock.withLock { _ throws(Errno) -> FileAttributes in
                    try setFileAttributesLocked(node, changes, handle: handle, context: context)
                }
            case .directory, .symbolicLink, .special:
                if changes.size != nil { throw node.kind == .directory ? .isDirectory : .invalid }
                return try setMetadataAttributes(node, changes)
            }
        }
        return AttributeReply(attributes: attributes, timeout: Self.cacheTimeout)
    }

    /// Whether a file of `size` bytes could never fit in the backend. Files have no holes
    /// here, so such a size is too large for this file system (`truncate(2)`'s `EFBIG`, as
    /// beyond a file system's maximum file size) rather than a lack of room (`ENOSPC`, which
    /// sizes within the backend's capacity but beyond the quota or free memory get).
    private func beyondBackendCapacity(_ size: Int) -> Bool {
        guard size > quotaBytes, let capacity = (try? backend.usage())?.capacity, capacity > 0 else { return false }
        return size > capacity
    }

    /// Whether `changes` touches anything but the size. A request that changes nothing is
    /// `chown(path, -1, -1)`, which still marks the change time.
    private static func changesMetadata(_ changes: SetAttributes) -> Bool {
        changes.size == nil || changes.mode != nil || changes.uid != nil || changes.gid != nil || changes.accessTime != nil
            || changes.modificationTime != nil || changes.changeTime != nil
    }

    /// chmod, chown, utimens and truncate of a file. Attribute changes of a sealed file edit
    /// its metadata in place (no data is copied); a size change starts a new version, which is
    /// published right away when nothing has the file open for writing (`truncate(2)`), or
    /// with the writers' close otherwise.
    private func setFileAttributesLocked(
        _ node: Node, _ changes: SetAttributes, handle: UInt64?, context: RequestContext
    ) throws(Errno)
        -> FileAttributes
    {
        let now = Timespec.now
        var metadataApplied = !Self.changesMetadata(changes)
        if let size = changes.size {
            guard size <= UInt64(Int.max), !beyondBackendCapacity(Int(size)) else { throw .fileTooLarge }
            try resizeLocked(node, to: Int(size), now: now)
            if let handle { node.file.dirtyHandles[handle] = context.pid }
        }
        if var writer = node.file.writer {
            if !metadataApplied {
                writer.attributes.apply(changes, now: now)
                node.file.writer = writer
                metadataApplied = true
            }
            if changes.size == nil || node.file.writableCount > 0 {
                let attached = table.withLock { $0.path(of: node) != nil }
                return attributes(of: node, writer: writer, attached: attached)
            }
            // truncate(2) by path with nothing open for writing: the new version is complete.
            try publishLocked(node)
        }
        guard let path = table.withLock({ $0.path(of: node) }), case .file(let id, _)? = try resolve(path) else {
            // Removed while open: nothing to persist; report what the open file serves.
            guard let current = node.file.current else { throw .noEntry }
            var posix = PosixAttributes(meta: current.meta, defaultPermissions: NodeMetadata.defaultFilePermissions)
            posix.apply(changes, now: now)
            return attributes(of: node, posix: posix, size: current.size, linkCount: 0)
        }
        if !metadataApplied {
            try updateAttributes(
                of: id, named: naming.objectName(path), changes, now: now, defaultPermissions: NodeMetadata.defaultFilePermissions)
        }
        guard case .file(let updatedID, let meta)? = try resolve(path) else { throw .noEntry }
        refreshCurrentLocked(node, to: updatedID)
        return attributes(of: node, resolved: .file(updatedID, meta))
    }

    /// chmod, chown and utimens of a directory or symbolic link. A directory that has no
    /// marker object gets one.
    private func setMetadataAttributes(_ node: Node, _ changes: SetAttributes) throws(Errno) -> FileAttributes {
        let path = try path(of: node)
        guard let resolved = try resolve(path), resolved.kind == node.kind else { throw .noEntry }
        let now = Timespec.now
        switch resolved {
        case .symbolicLink(let id, _):
            try updateAttributes(of: id, named: naming.objectName(path), changes, now: now, defaultPermissions: 0o777)
        case .special(let id, _):
            try updateAttributes(
                of: id, named: naming.objectName(path), changes, now: now,
                defaultPermissions: NodeMetadata.defaultFilePermissions)
        case .directory(let id?, _):
            try updateAttributes(
                of: id, named: naming.directoryName(path), changes, now: now,
                defaultPermissions: NodeMetadata.defaultDirectoryPermissions)
        case .directory(nil, _):
            var posix = PosixAttributes(
                permissions: NodeMetadata.defaultDirectoryPermissions, uid: 0, gid: 0, time: .zero)
            posix.apply(changes, now: now)
            let meta = NodeMetadata.directory(attributes: posix, volumeID: volumeID, instanceID: instanceID)
            _ = try call { () throws(BackendError) in try backend.createObject(meta, name: naming.directoryName(path)) }
            accounting.adjust(directories: 1)
        case .file:
            throw .noEntry
        }
        guard let updated = try resolve(path) else { throw .noEntry }
        return attributes(of: node, resolved: updated)
    }

    /// Edits the POSIX fields of the metadata of object `id`, bound to `name` (no data copy).
    func updateAttributes(
        of id: ObjectID, named name: String, _ changes: SetAttributes, now: Timespec, defaultPermissions: UInt32
    ) throws(Errno) {
        try call { () throws(BackendError) in
            try backend.updateMeta(id, name: name) { meta in
                var posix = PosixAttributes(meta: meta, defaultPermissions: defaultPermissions)
                posix.apply(changes, now: now)
                posix.encode(into: &meta.fields)
            }
        }
    }

    // MARK: - Statistics

    /// Capacity and free space of the backend, or of the quota when the volume has one (free
    /// space is then also bounded by the backend's). File counts are the volume's; free inodes
    /// are a fixed headroom, since the backend has no inode table to run out of. A backend
    /// whose names other nodes change too (no ``BackendCapabilities/localMemory``) has the
    /// volume counted again first.
    public func statistics(inode: InodeNumber, context: RequestContext) throws(Errno) -> FileSystemStatistics {
        if !backend.capabilities.contains(.localMemory) { accounting.recount() }
        let backendUsage = try call { () throws(BackendError) in try backend.usage() }
        let volume = accounting.usage
        let total: Int
        let free: Int
        if quotaBytes > 0 {
            total = backend.capabilities.contains(.localMemory) ? min(quotaBytes, backendUsage.capacity) : quotaBytes
            free = max(0, min(total - volume.bytes, backendUsage.bytesFree))
        } else {
            total = backendUsage.capacity
            free = backendUsage.bytesFree
        }
        let blockSize: UInt64 = 4096
        let freeInodes: UInt64 = 1 << 20
        let usedInodes = UInt64(max(0, volume.files + volume.directories + 1))
        return FileSystemStatistics(
            blockSize: blockSize,
            blocks: UInt64(total) / blockSize,
            freeBlocks: UInt64(free) / blockSize,
            files: usedInodes + freeInodes,
            freeFiles: freeInodes,
            maximumNameLength: UInt64(Self.maximumComponentLength)
        )
    }
}
