//
// vineyard-csi: VolumeFS
//
// VolumeFileSystem+Namespace.swift: mkdir, rmdir, unlink, rename and symbolic links.

import FUSEKit
import SharedMemoryStore
import StoreBackend
import Synchronization

extension VolumeFileSystem {
    // MARK: - Directories

    public func makeDirectory(
        parent: InodeNumber, name: String, mode: UInt32, context: RequestContext
    ) throws(Errno) -> EntryReply {
        guard !readOnly else { throw .readOnlyFileSystem }
        let name = try Self.validatedName(name)
        let parentNode = try directoryNode(parent)
        return try namespace.withReadLock { () throws(Errno) -> EntryReply in
            let (path, markerName, attributes) = try newEntryLocked(
                parentNode, name, kind: .directory, mode: mode, context: context)
            let meta = NodeMetadata.directory(attributes: attributes, volumeID: volumeID, instanceID: instanceID)
            let id = try call { () throws(BackendError) in try backend.createObject(meta, name: markerName) }
            accounting.adjust(directories: 1)
            touchParent(of: path)
            subdirectoryMade(at: path)
            let node = table.withLock { $0.pinChild(of: parentNode, named: name, kind: .directory) }
            return entry(self.attributes(of: node, resolved: .directory(id, meta)))
        }
    }

    public func removeDirectory(parent: InodeNumber, name: String, context: RequestContext) throws(Errno) {
        guard !readOnly else { throw .readOnlyFileSystem }
        let name = try Self.validatedName(name)
        let parentNode = try directoryNode(parent)
        try namespace.withReadLock { () throws(Errno) in
            let path = VolumeNaming.join(try self.path(of: parentNode), name)
            let node = table.withLock { $0.child(of: parentNode, named: name) }
            if let node, node.kind == .file, node.lock.withLock({ _ in node.file.writer != nil }) { throw .notDirectory }
            guard let resolved = try resolve(path) else { throw .noEntry }
            guard case .directory(let markerID, _) = resolved else { throw .notDirectory }
            try checkEmpty(path: path, node: node)
            if let markerID {
                try unbind(naming.directoryName(path), from: markerID)
                accounting.adjust(directories: -1)
            }
            touchParent(of: path)
            subdirectoryRemoved(at: path)
            if let node { table.withLock { $0.detach(node) } }
        }
    }

    /// `ENOTEMPTY` unless the directory at `path` holds nothing: no names below its marker in
    /// the store, and no file of this mount still being written in it.
    private func checkEmpty(path: String, node: Node?) throws(Errno) {
        let prefix = naming.directoryName(path)
        for (name, _) in try call({ () throws(BackendError) in try backend.names(withPrefix: prefix, limit: 2) }) where name != prefix {
            throw .notEmpty
        }
        if let node, !table.withLock({ $0.pendingNames(in: node).isEmpty }) { throw .notEmpty }
    }

    /// The path, store name and attributes of a new entry `name` of `parentNode`. Call it
    /// with the namespace lock held.
    ///
    /// - Throws: `ENAMETOOLONG`, `EEXIST`, or `ENOENT` when the parent was removed.
    func newEntryLocked(
        _ parentNode: Node, _ name: FileName, kind: NodeKind, mode: UInt32, context: RequestContext
    ) throws(Errno) -> (path: String, storeName: String, attributes: PosixAttributes) {
        let parentPath = try path(of: parentNode)
        let path = VolumeNaming.join(parentPath, name)
        let storeName = kind == .directory ? naming.directoryName(path) : naming.objectName(path)
        try Self.checkLength(storeName)
        if try existingEntry(parentNode, name, path: path) { throw .exists }
        let parentAttributes = try existingDirectory(parentPath)
        let attributes = newAttributes(parent: parentAttributes, mode: mode, kind: kind, context: context, now: .now)
        return (path, storeName, attributes)
    }

    /// Whether `parent/name` exists, in the store or as a file being written here.
    func existingEntry(_ parent: Node, _ name: FileName, path: String) throws(Errno) -> Bool {
        if let node = table.withLock({ $0.child(of: parent, named: name) }), node.kind == .file,
            node.lock.withLock({ _ in node.file.writer != nil })
        {
            return true
        }
        return try resolve(path) != nil
    }

    // MARK: - Files

    public func unlink(parent: InodeNumber, name: String, context: RequestContext) throws(Errno) {
        guard !readOnly else { throw .readOnlyFileSystem }
        let name = try Self.validatedName(name)
        let parentNode = try directoryNode(parent)
        try namespace.withReadLock { () throws(Errno) in
            let path = VolumeNaming.join(try self.path(of: parentNode), name)
            let node = table.withLock { $0.child(of: parentNode, named: name) }
            if let node, node.kind == .file {
                // Lock the node so that a publish of its pending version cannot race.
                try node.lock.withLock { _ throws(Errno) in
                    try unlinkLocked(path: path, node: node)
                }
            } else {
                try unlinkLocked(path: path, node: node)
            }
        }
    }

    /// Removes the file or link at `path` and detaches its node. A version still being
    /// written is discarded when its last handle closes.
    private func unlinkLocked(path: String, node: Node?) throws(Errno) {
        let pending = table.withLock { _ in node?.isPending ?? false }
        var removed: (id: ObjectID, meta: ObjectMeta)?
        if !pending {
            guard let resolved = try resolve(path) else { throw .noEntry }
            guard let object = resolved.object else { throw .isDirectory }
            try unbind(naming.objectName(path), from: object.id)
            if lostLastName(object.id, meta: object.meta) {
                let size = resolved.kind == .file ? backend.fileSize(of: object.id, meta: object.meta) : 0
                accounting.adjust(bytes: -size, files: -1)
            } else if let remaining = volumeNames(of: object.id).first {
                touchChangeTime(of: object.id, named: remaining)
            }
            removed = object
            touchParent(of: path)
        }
        if let node { detachOrMove(node, remainingNamesOf: removed?.id, meta: removed?.meta) }
    }

    // MARK: - Rename

    /// Renames atomically, replacing a target file (or an empty target directory) unless
    /// `RENAME_NOREPLACE`. Files move with one store operation. Directories move with their
    /// whole subtree, one name at a time under this mount's exclusive namespace lock.
    /// `RENAME_EXCHANGE` and `RENAME_WHITEOUT` are not supported (`EINVAL`).
    public func rename(
        parent: InodeNumber, name: String, newParent: InodeNumber, newName: String, flags: RenameFlags,
        context: RequestContext
    ) throws(Errno) {
        guard !readOnly else { throw .readOnlyFileSystem }
        guard flags.subtracting(.noReplace).isEmpty else { throw .invalid }
        let name = try Self.validatedName(name)
        let newName = try Self.validatedName(newName)
        let sourceParent = try directoryNode(parent)
        let targetParent = try directoryNode(newParent)
        let noReplace = flags.contains(.noReplace)
        let sourceIsDirectory = try namespace.withReadLock { () throws(Errno) -> Bool in
            let source = table.withLock { $0.child(of: sourceParent, named: name) }
            if let source { return source.kind == .directory }
            guard let resolved = try resolve(VolumeNaming.join(try path(of: sourceParent), name)) else {
                throw .noEntry
            }
            return resolved.kind == .directory
        }
        if sourceIsDirectory {
            try namespace.withWriteLock { () throws(Errno) in
                try renameDirectory(sourceParent, name, targetParent, newName, noReplace: noReplace)
            }
        } else {
            try namespace.withReadLock { () throws(Errno) in
                try renameFile(sourceParent, name, targetParent, newName, noReplace: noReplace)
            }
        }
    }

    /// Renames a file or link: one atomic store rename (replacing and then deleting a target
    /// file), or, for a file still being written here, only the table entry. The source and
    /// target nodes are locked (in inode order) so that no publish can race.
    private func renameFile(
        _ sourceParent: Node, _ name: FileName, _ targetParent: Node, _ newName: FileName, noReplace: Bool
    ) throws(Errno) {
        let (source, target) = table.withLock {
            ($0.child(of: sourceParent, named: name), $0.child(of: targetParent, named: newName))
        }
        var lockedNodes: [Node] = []
        for node in [source, target].compactMap({ $0 }).filter({ $0.kind == .file }).sorted(by: { $0.inode < $1.inode })
        where !lockedNodes.contains(where: { $0 === node }) {
            lockedNodes.append(node)
        }
        try Self.withLocks(of: lockedNodes[...]) { () throws(Errno) in
            try renameFileLocked(sourceParent, name, targetParent, newName, noReplace: noReplace, source: source, target: target)
        }
    }

    /// Runs `body` holding the locks of `nodes`, taken in their order.
    private static func withLocks(of nodes: ArraySlice<Node>, _ body: () throws(Errno) -> Void) throws(Errno) {
        guard let first = nodes.first else { return try body() }
        try first.lock.withLock { _ throws(Errno) in try withLocks(of: nodes.dropFirst(), body) }
    }

    /// ``renameFile(_:_:_:_:noReplace:)`` with the locks of the `source` and `target` nodes held.
    private func renameFileLocked(
        _ sourceParent: Node, _ name: FileName, _ targetParent: Node, _ newName: FileName, noReplace: Bool,
        source: Node?, target: Node?
    ) throws(Errno) {
        let sourcePath = VolumeNaming.join(try path(of: sourceParent), name)
        let targetPath = VolumeNaming.join(try path(of: targetParent), newName)
        if sourcePath == targetPath { return }
        let sourceName = naming.objectName(sourcePath)
        let targetName = naming.objectName(targetPath)
        try Self.checkLength(targetName)

        let sourcePending = table.withLock { _ in source?.isPending ?? false }
        var sourceID: ObjectID?
        if !sourcePending {
            switch try resolve(sourcePath) {
            case .file(let id, _)?, .symbolicLink(let id, _)?, .special(let id, _)?: sourceID = id
            case .directory?: throw .isDirectory  // became a directory meanwhile
            case nil: throw .noEntry
            }
        }
        let targetPending = table.withLock { _ in target?.isPending ?? false }
        var targetObject: (ObjectID, ObjectMeta)?
        switch try resolve(targetPath) {
        case .file(let id, let meta)?: targetObject = (id, meta)
        case .symbolicLink(let id, let meta)?, .special(let id, let meta)?: targetObject = (id, meta)
        case .directory?: throw .isDirectory
        case nil: break
        }
        if noReplace && (targetPending || targetObject != nil) { throw .exists }
        // Two names of one file: POSIX renames nothing.
        if let sourceID, targetObject?.0 == sourceID { return }
        _ = try existingDirectory(try path(of: targetParent))

        var replaced: ObjectID?
        if sourceID != nil {
            replaced = try call { () throws(BackendError) in try backend.renameName(from: sourceName, to: targetName) }
        } else if let (id, _) = targetObject {
            replaced = id  // the pending source takes the name when it is published
        }
        var replacedMeta: ObjectMeta?
        if let replaced, replaced != sourceID {
            replacedMeta = try? backend.meta(replaced)
            if lostLastName(replaced, meta: replacedMeta) {
                var size = 0
                if let meta = replacedMeta, NodeMetadata.kind(of: replaced, meta: meta) == .file {
                    size = backend.fileSize(of: replaced, meta: meta)
                }
                try? backend.retire(replaced)  // a snapshot or clone may still name it
                accounting.adjust(bytes: -size, files: -1)
            } else if let remaining = volumeNames(of: replaced).first {
                touchChangeTime(of: replaced, named: remaining)  // its link count dropped
            }
        }
        if let sourceID { touchChangeTime(of: sourceID, named: targetName) }
        touchParent(of: sourcePath)
        if targetParent !== sourceParent { touchParent(of: targetPath) }
        if let target, target !== source { detachOrMove(target, remainingNamesOf: replaced, meta: replacedMeta) }
        table.withLock { table in
            if let source { table.move(source, to: targetParent, name: newName) }
        }
    }

    /// Renames a directory: every name below it, then its marker, moves to the new prefix.
    /// Call it with the namespace lock held exclusively.
    private func renameDirectory(
        _ sourceParent: Node, _ name: FileName, _ targetParent: Node, _ newName: FileName, noReplace: Bool
    ) throws(Errno) {
        let sourcePath = VolumeNaming.join(try path(of: sourceParent), name)
        let targetPath = VolumeNaming.join(try path(of: targetParent), newName)
        guard let resolved = try resolve(sourcePath) else { throw .noEntry }
        guard resolved.kind == .directory else {
            // Became a file meanwhile; the exclusive lock covers a file rename as well.
            return try renameFile(sourceParent, name, targetParent, newName, noReplace: noReplace)
        }
        if sourcePath == targetPath { return }
        if targetPath.utf8.starts(with: (sourcePath + "/").utf8) { throw .invalid }  // into itself
        let (source, target) = table.withLock {
            ($0.child(of: sourceParent, named: name), $0.child(of: targetParent, named: newName))
        }
        if let target, target.kind == .file, target.lock.withLock({ _ in target.file.writer != nil }) {
            throw .notDirectory
        }
        let replacedDirectory: Bool
        switch try resolve(targetPath) {
        case .file?, .symbolicLink?, .special?:
            throw .notDirectory
        case .directory(let markerID, _)?:
            replacedDirectory = true
            if noReplace { throw .exists }
            try checkEmpty(path: targetPath, node: target)
            if let markerID {
                try unbind(naming.directoryName(targetPath), from: markerID)
                accounting.adjust(directories: -1)
            }
        case nil:
            replacedDirectory = false
            _ = try existingDirectory(try path(of: targetParent))
        }

        let sourcePrefix = naming.directoryName(sourcePath)
        let targetPrefix = naming.directoryName(targetPath)
        let names = try call { () throws(BackendError) in try backend.names(withPrefix: sourcePrefix, limit: nil) }
        let sourceLength = sourcePrefix.utf8.count
        let targetLength = targetPrefix.utf8.count
        for (storeName, _) in names
        where storeName.utf8.count - sourceLength + targetLength > StoreLimits.maximumNameLength {
            throw .nameTooLong
        }
        // Children first, the marker (sorted first) last, so that an interrupted rename leaves
        // the source directory with its marker.
        for (storeName, _) in names.reversed() {
            let suffix = String(decoding: storeName.utf8.dropFirst(sourceLength), as: UTF8.self)
            do throws(BackendError) {
                _ = try backend.renameName(from: storeName, to: targetPrefix + suffix)
            } catch {
                if error.errno == .noEntry { continue }  // removed meanwhile by another mount
                throw error.errno
            }
        }
        if let markerID = try? backend.lookUp(targetPrefix) { touchChangeTime(of: markerID, named: targetPrefix) }
        touchParent(of: sourcePath)
        if targetParent !== sourceParent { touchParent(of: targetPath) }
        subdirectoryRemoved(at: sourcePath)
        subdirectoryMoved(to: targetPath, replacing: replacedDirectory)
        table.withLock { table in
            if let target, target !== source { table.detach(target) }
            if let source { table.move(source, to: targetParent, name: newName) }
        }
    }

    // MARK: - Links

    public func symbolicLink(
        target: String, parent: InodeNumber, name: String, context: RequestContext
    ) throws(Errno) -> EntryReply {
        guard !readOnly else { throw .readOnlyFileSystem }
        let name = try Self.validatedName(name)
        guard !target.isEmpty, target.utf8.count <= StoreLimits.maximumNameLength, !target.utf8.contains(0) else {
            throw target.isEmpty ? .noEntry : .nameTooLong
        }
        let parentNode = try directoryNode(parent)
        return try namespace.withReadLock { () throws(Errno) -> EntryReply in
            let parentPath = try path(of: parentNode)
            let path = VolumeNaming.join(parentPath, name)
            let objectName = naming.objectName(path)
            try Self.checkLength(objectName)
            try Self.checkLength(naming.directoryName(path))
            if try existingEntry(parentNode, name, path: path) { throw .exists }
            let parentAttributes = try existingDirectory(parentPath)
            let attributes = newAttributes(
                parent: parentAttributes, mode: 0o777, kind: .symbolicLink, context: context, now: .now)
            let meta = NodeMetadata.symbolicLink(
                target: target, attributes: attributes, volumeID: volumeID, instanceID: instanceID)
            let id = try call { () throws(BackendError) in try backend.createObject(meta, name: objectName) }
            accounting.adjust(files: 1)
            touchParent(of: path)
            let node = table.withLock { $0.pinChild(of: parentNode, named: name, kind: .symbolicLink) }
            return entry(self.attributes(of: node, resolved: .symbolicLink(id, meta)))
        }
    }

    public func readLink(inode: InodeNumber, context: RequestContext) throws(Errno) -> String {
        let node = try node(inode)
        guard node.kind == .symbolicLink else { throw .invalid }
        return try namespace.withReadLock { () throws(Errno) -> String in
            guard case .symbolicLink(_, let meta)? = try resolve(try path(of: node)),
                let target = meta.fields[NodeMetadata.targetKey]?.stringValue
            else { throw .noEntry }
            return target
        }
    }
}

extension VolumeFileSystem {
    /// Removes `name` and then the object it named, unless another name (a snapshot's or a
    /// clone's) still refers
    /// to it. A name already gone is not an error: the object may still need dropping.
    func unbind(_ name: String, from id: ObjectID) throws(Errno) {
        try call { () throws(BackendError) in
            try backend.unbind(name)
            try backend.retire(id)
        }
    }
}
