//
// vineyard-csi: VolumeFS
//
// VolumeFileSystem+Restart.swift: a mount whose file system is served by one process after
// another (restarts, crashes, upgrades of the node plugin).

import FUSEKit
import SharedMemoryStore
import StoreBackend
import Synchronization

extension VolumeFileSystem {
    /// Handle numbers carry the number of the process generation that made them above this bit.
    static let handleEpochShift: UInt64 = 48

    /// What a file system found when it took a mount over.
    public struct Resumption: Sendable, Equatable {
        /// Inodes the kernel may still reference, with their numbers as before.
        public var inodes: Int
        /// Files being written that carry on where the previous process stopped.
        public var writers: Int
        /// Files being written whose bytes could not be recovered: their writers get `EIO`.
        public var lostWriters: Int
    }

    /// Opens the file system of a volume for a mount that may be served by a later process.
    ///
    /// Every inode the kernel is told about is mirrored, with its lookup count and any version
    /// being written, in `stateFile` (see `InodeSlots` in the sources: a sparse, shared mapping;
    /// put it on tmpfs or a local disk that lives as long as the mount). A later process opens
    /// the same file with `resume: true` and serves the same kernel inodes under the same
    /// numbers and generation: lookups, open files and the kernel's cached entries keep working.
    ///
    /// Handles opened by an earlier process are taken over when the kernel first uses them:
    /// reads serve the object current at that moment, writes continue the version the earlier
    /// process was writing (its bytes are taken back from the store, see
    /// ``ObjectBackend/adoptVersion(at:size:)``), and closing publishes it. A
    /// version whose bytes are lost (another allocation took the memory first) fails its
    /// writer's next write and its close with `EIO`; it is never published truncated.
    ///
    /// - Parameters:
    ///   - resume: take over the state an earlier process left in `stateFile`; `false`
    ///     starts an empty table (a new mount).
    ///   - inodeCapacity: inodes mirrored at most (384 bytes of the file each, allocated as
    ///     used); inodes beyond it are served but cannot be taken over (`ESTALE` after).
    /// - Returns: the file system and, when resuming, what was taken over.
    public static func surviving(
        store: ObjectStore, volumeID: String, quotaBytes: Int, readOnly: Bool, stateFile: String, resume: Bool,
        inodeCapacity: Int = 1 << 20
    ) throws(VolumeFSError) -> (VolumeFileSystem, Resumption?) {
        let (slots, existed) = try InodeSlots.open(path: stateFile, capacity: inodeCapacity, resume: resume)
        let backingSlots = try BackingSlots.open(besides: stateFile, capacity: slots.capacity, resume: existed)
        let backend = EmbeddedBackend(store: store)
        let fileSystem = try VolumeFileSystem(
            backend: backend, volumeID: volumeID, quotaBytes: quotaBytes, readOnly: readOnly, slots: slots,
            backingSlots: backingSlots)
        let epoch = (existed ? slots.handleEpoch : 0) + 1
        slots.handleEpoch = epoch
        let firstHandle = epoch << handleEpochShift | 1
        fileSystem.files.startNumbering(at: firstHandle)
        fileSystem.directories.startNumbering(at: firstHandle)
        guard existed else {
            fileSystem.table.withLock { $0.mirror(in: slots) }
            return (fileSystem, nil)
        }
        let writers = fileSystem.table.withLock { $0.restore(from: slots) }
        fileSystem.restoreBackingFiles()
        var resumption = Resumption(inodes: fileSystem.inodeCount - 1, writers: 0, lostWriters: 0)
        for (node, record) in writers {
            node.lock.withLock { _ in
                var failure: Errno?
                var size = record.size
                let blob: any FileVersion
                do throws(BackendError) {
                    blob = try backend.adoptVersion(at: record.extent, size: record.size)
                    resumption.writers += 1
                } catch {
                    guard let empty = try? backend.startVersion(from: nil, keeping: 0) else { return }
                    blob = empty
                    failure = .io
                    size = 0
                    resumption.lostWriters += 1
                }
                node.file.writer = PendingVersion(
                    blob: blob, baseline: record.baseline, size: size, attributes: record.attributes,
                    cacheCoherent: false, failure: failure)
                fileSystem.accounting.adjustPending(size - record.baseline)
                fileSystem.mirrorWriterLocked(node)
            }
        }
        return (fileSystem, resumption)
    }

    /// Deletes the state file of a mount that is gone for good (after unmounting).
    public func removeStateFile() {
        slots?.remove()
        passthrough.slots?.remove()
    }

    // MARK: - Mirroring

    /// Records the node's version being written (or that there is none) in the state file.
    /// Call it with the node's lock held after every change of `node.file.writer`.
    func mirrorWriterLocked(_ node: Node) {
        guard let slots else { return }
        guard let writer = node.file.writer, let extent = writer.blob.extent else {
            slots.setWriter(node.inode.rawValue, nil)
            return
        }
        slots.setWriter(
            node.inode.rawValue,
            InodeSlots.Writer(
                extent: extent, size: writer.size,
                baseline: writer.baseline, attributes: writer.attributes))
    }

    // MARK: - Handles of earlier processes

    /// Whether `handle` was made by an earlier process serving this mount.
    private func isEarlierHandle(_ handle: UInt64) -> Bool {
        guard let slots else { return false }
        return handle >> Self.handleEpochShift < slots.handleEpoch
    }

    /// Takes over an open file handle of an earlier process the first time the kernel uses it
    /// (or makes an adopted one writable). `nil` for any other unknown handle.
    func adoptFile(_ handle: UInt64, inode: InodeNumber, writable: Bool) -> OpenFile? {
        guard isEarlierHandle(handle), !(writable && readOnly) else { return nil }
        return adoption.withLock { _ -> OpenFile? in
            if let existing = files.get(handle) {
                guard writable && !existing.writable else { return existing }
                let upgraded = OpenFile(
                    node: existing.node, flags: .readWrite, passthrough: existing.passthrough,
                    directPassthrough: existing.passthrough)
                existing.node.lock.withLock { _ in existing.node.file.writableCount += 1 }
                files.insert(upgraded, as: handle)
                return upgraded
            }
            guard let node = try? self.node(inode), node.kind == .file else { return nil }
            table.withLock { $0.opened(node) }
            let passthrough = namespace.withReadLock {
                node.lock.withLock { _ -> Bool in
                    if node.file.writer == nil && node.file.current == nil {
                        let path = table.withLock { $0.path(of: node) }
                        if let path { node.file.current = (try? namedFileLocked(node, path: path)) ?? nil }
                    }
                    node.file.openCount += 1
                    if writable { node.file.writableCount += 1 }
                    // While the inode has a backing file every open of it is a passthrough
                    // open (the kernel allows no other): this one is counted in its opens.
                    return node.file.backing != nil
                }
            }
            let file = OpenFile(
                node: node, flags: writable ? .readWrite : OpenFlags(rawValue: 0), passthrough: passthrough,
                directPassthrough: passthrough && writable)
            files.insert(file, as: handle)
            return file
        }
    }

    /// A handle that may write: known and writable, or taken over as writable.
    func writableFile(_ handle: UInt64, inode: InodeNumber) -> OpenFile? {
        if let file = files.get(handle), file.writable { return file }
        return adoptFile(handle, inode: inode, writable: true)
    }

    /// Takes over a handle first seen in a FLUSH. Only writable handles get FLUSH (read-only
    /// ones are opened `noflush`), so it is taken as the writer of a version carried over from
    /// the earlier process, whose close therefore publishes that version.
    func adoptFlushedFile(_ handle: UInt64, inode: InodeNumber, context: RequestContext) -> OpenFile? {
        guard let file = adoptFile(handle, inode: inode, writable: true) else { return nil }
        let node = file.node
        node.lock.withLock { _ in
            if node.file.writer != nil && node.file.dirtyHandles[handle] == nil {
                node.file.dirtyHandles[handle] = context.pid
            }
        }
        return file
    }

    /// Takes over a directory handle of an earlier process (its listing starts afresh; offsets
    /// are positions in the sorted listing, so a directory unchanged meanwhile continues where
    /// it was).
    func adoptDirectory(_ handle: UInt64, inode: InodeNumber) -> DirectoryHandle? {
        guard isEarlierHandle(handle) else { return nil }
        return adoption.withLock { _ -> DirectoryHandle? in
            if let existing = directories.get(handle) { return existing }
            guard let node = try? directoryNode(inode) else { return nil }
            table.withLock { $0.opened(node) }
            let directory = DirectoryHandle(node: node)
            directories.insert(directory, as: handle)
            return directory
        }
    }
}
