//
// vineyard-csi: VolumeFS
//
// VolumeFileSystem+Links.swift: hard links.

import FUSEKit
import StoreBackend
import VineyardObjects
import Synchronization

/// Hard links are more names bound to the same object: `link()` binds the new name to the
/// file's current object (a blob, a symbolic link or a special file) and stamps the object
/// with a link identity (``PosixAttributes/linkIdentity``). Vineyard clients read every name
/// as before, and snapshots, which copy names, keep the links.
///
/// - The link count is the number of the volume's names bound to the object; names in
///   snapshots and clones are other volumes'. The object lives while any name does, and the
///   volume's usage counts its bytes once.
/// - A new version of a linked file is published by binding all the volume's names of the
///   previous version to it in one store log record
///   (``SharedMemoryStore/ObjectStore/putName(_:_:withNamesSharingItsObjectUnder:)``), so no
///   reader, in this mount or another, ever sees two names of one file disagree.
/// - Within a mount every name is one inode: a lookup of a name whose object carries a link
///   identity answers with the inode already serving it (``linkedInodes``), and removing the
///   name an inode sits at moves the inode to a remaining name, so descriptors, attributes
///   and the page cache stay shared as on a local file system.
extension VolumeFileSystem {
    public func link(
        inode: InodeNumber, newParent: InodeNumber, newName: String, context: RequestContext
    ) throws(Errno) -> EntryReply {
        guard !readOnly else { throw .readOnlyFileSystem }
        // link(2)'s "the file system does not support hard links": a backend that cannot
        // list an object's names (vineyardd) could not count them.
        guard backend.capabilities.contains(.sharedNames) else { throw .notPermitted }
        let newName = try Self.validatedName(newName)
        let node = try node(inode)
        guard node.kind != .directory else { throw .notPermitted }
        let parentNode = try directoryNode(newParent)
        return try namespace.withReadLock { () throws(Errno) -> EntryReply in
            try node.lock.withLock { _ throws(Errno) -> EntryReply in
                // A file still being written gets its version published first: the new name
                // needs an object to bind.
                if node.kind == .file && node.file.writer != nil { try publishLocked(node) }
                return try linkLocked(node, parentNode, newName)
            }
        }
    }

    /// ``link(inode:newParent:newName:context:)`` with the namespace lock and the node's
    /// lock held.
    private func linkLocked(_ node: Node, _ parentNode: Node, _ newName: FileName) throws(Errno) -> EntryReply {
        let path = try path(of: node)
        guard let resolved = try resolve(path), let object = resolved.object, resolved.kind == node.kind else {
            throw .noEntry
        }
        let parentPath = try self.path(of: parentNode)
        let targetPath = VolumeNaming.join(parentPath, newName)
        let targetName = naming.objectName(targetPath)
        try Self.checkLength(targetName)
        if try existingEntry(parentNode, newName, path: targetPath) { throw .exists }
        _ = try existingDirectory(parentPath)
        let identity = Self.linkIdentity(object.meta) ?? object.id.rawValue
        try call { () throws(BackendError) in
            try backend.updateMeta(object.id, name: naming.objectName(path)) { meta in
                var posix = PosixAttributes(meta: meta, defaultPermissions: NodeMetadata.defaultFilePermissions)
                posix.linkIdentity = identity
                posix.changeTime = .now
                posix.encode(into: &meta.fields)
            }
            try backend.bind(targetName, to: object.id)
        }
        touchParent(of: targetPath)
        linkedInodes.withLock { $0[identity] = node.inode }
        table.withLock { $0.pin(node) }  // the reply counts as a lookup of the linked inode
        guard let updated = try resolve(path) else { throw .noEntry }
        return entry(attributes(of: node, resolved: updated))
    }

    /// The link identity of a file that has been hard-linked.
    static func linkIdentity(_ meta: ObjectMeta) -> UInt64? {
        meta.fields[PosixAttributes.Keys.linkIdentity]?.uint64Value
    }

    /// The link count of object `id`: how many of the volume's names bind it (1 for an object
    /// never linked, without asking the store).
    func linkCount(of id: ObjectID, meta: ObjectMeta) -> UInt32 {
        guard Self.linkIdentity(meta) != nil else { return 1 }
        return UInt32(volumeNames(of: id).count)
    }

    /// The volume's names bound to `id` (not those of snapshots or clones).
    func volumeNames(of id: ObjectID) -> [String] {
        let names = (try? backend.names(of: id)) ?? nil
        return (names ?? []).filter { $0.utf8.starts(with: naming.rootPrefix.utf8) }
    }

    /// Whether an object whose name was just removed lost its last name in the volume, so
    /// that the volume's usage no longer counts it.
    func lostLastName(_ id: ObjectID, meta: ObjectMeta?) -> Bool {
        guard let meta, Self.linkIdentity(meta) != nil else { return true }
        return volumeNames(of: id).isEmpty
    }

    /// For a lookup that resolved to `resolved`: the inode already serving that linked file
    /// in this mount, pinned (one lookup added), or `nil` when there is none (then the caller
    /// records its node with ``recordLinked(_:resolved:)``).
    func linkedInode(for resolved: Resolved) -> Node? {
        guard let object = resolved.object, let identity = Self.linkIdentity(object.meta),
            let inode = linkedInodes.withLock({ $0[identity] })
        else { return nil }
        let kind = resolved.kind
        guard
            let node = table.withLock({ table -> Node? in
                guard let node = table.node(inode), node.kind == kind, node.isAttached else { return nil }
                table.pin(node)
                return node
            })
        else { return nil }
        // Still a name of the same file (not replaced by another file since)?
        if let path = table.withLock({ $0.path(of: node) }), let current = (try? resolve(path))??.object,
            Self.linkIdentity(current.meta) == identity
        {
            return node
        }
        table.withLock { $0.forget(node, 1) }
        return nil
    }

    /// Records `node` as the inode of the linked file `resolved` names, if it is one.
    func recordLinked(_ node: Node, resolved: Resolved) {
        guard let object = resolved.object, let identity = Self.linkIdentity(object.meta) else { return }
        linkedInodes.withLock { $0[identity] = node.inode }
    }

    /// After the name `node` sits at was removed or replaced: moves the node to another of the
    /// volume's names of object `id` whose directory this mount knows, so that the kernel's
    /// inode keeps working through the names left; otherwise detaches it.
    func detachOrMove(_ node: Node, remainingNamesOf id: ObjectID?, meta: ObjectMeta?) {
        var remaining: [String] = []
        if let id, let meta, Self.linkIdentity(meta) != nil {
            remaining = volumeNames(of: id)
        }
        let prefixLength = naming.rootPrefix.utf8.count
        table.withLock { table in
            for name in remaining {
                let path = String(decoding: name.utf8.dropFirst(prefixLength), as: UTF8.self)
                var components = path.split(separator: "/", omittingEmptySubsequences: false).map { FileName(String($0)) }
                guard let last = components.popLast() else { continue }
                var directory: Node? = table.root
                for component in components {
                    directory = directory.flatMap { table.child(of: $0, named: component) }
                }
                if let directory, directory.kind == .directory, directory !== node {
                    table.move(node, to: directory, name: last)
                    return
                }
            }
            table.detach(node)
        }
    }
}

extension VolumeFileSystem {
    /// Sets the change time of object `id`, bound to `name`, to now (a rename, or a link count
    /// that changed), as local file systems do; best effort, the operation itself already
    /// succeeded.
    func touchChangeTime(of id: ObjectID, named name: String) {
        guard backend.capabilities.contains(.inPlaceMetadata) else { return }
        try? backend.updateMeta(id, name: name) { meta in
            guard meta.fields[PosixAttributes.Keys.changeTime] != nil else { return }
            meta.fields[PosixAttributes.Keys.changeTime] = .array([.int(Timespec.now.seconds), .int(Timespec.now.nanoseconds)])
        }
    }
}
