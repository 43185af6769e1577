// vineyard-csi: benchmarks
// FUSEFloorBenchmark.swift: the cost of the FUSE protocol itself on this machine.

import ArgumentParser
import FUSEKit
import Foundation
import Glibc
import POSIXCore
import Synchronization
import VolumeFS

/// `vineyard-csi-bench fuse-floor DIR`: mounts a file system that keeps no data on `DIR` and
/// serves it until interrupted.
///
/// Every request is answered from a small in-memory table (writes only record the size, reads
/// return zeros), with the mount options, cache timeouts and capabilities of a real volume. The
/// same small-file workload run on it and on a volume shows how much of the volume's cost is
/// the kernel's FUSE round trips (context switches, copies through /dev/fuse) and how much is
/// the driver: `scripts/bench-fuse.sh` reports both against tmpfs in one run.
struct FUSEFloorBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuse-floor",
        abstract: "Mount a data-less FUSE file system (the protocol's floor) on a directory until SIGINT/SIGTERM."
    )

    @Argument(help: "Empty directory to mount on.")
    var mountPoint: String

    func run() throws {
        var options = VolumeFileSystem.recommendedMountOptions(volumeID: "fuse-floor", readOnly: false)
        options.fsName = "fuse-floor"
        options.subtype = "fuse-floor"
        let session = try FUSESession(fileSystem: FloorFileSystem(), mountPoint: mountPoint, options: options)
        let stopRequests = ProcessSignals.handleStopRequests { _ in try? session.unmount() }
        try withExtendedLifetime(stopRequests) { try session.run() }
    }
}

/// A directory tree of empty-data files: the least a FUSE file system can do per request.
final class FloorFileSystem: FileSystem {
    private struct Node {
        var attributes: FileAttributes
        var children: [String: InodeNumber]?
    }

    private struct Table {
        var nodes: [InodeNumber: Node]
        var nextInode: UInt64 = 2
    }

    /// Seconds the kernel may cache entries and attributes: the volume's values, so the kernel
    /// sends the same requests to both.
    private static let entryTimeout = 10.0
    private static let attributeTimeout = 1.0
    /// What every read returns: zeros, allocated once and never freed or written.
    nonisolated(unsafe) private static let zeros = UnsafeRawBufferPointer(
        UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096).initializeMemory(as: UInt8.self, repeating: 0))

    private let table: Mutex<Table>

    init() {
        let root = FileAttributes(
            inode: .root, mode: S_IFDIR | 0o777, linkCount: 2, modificationTime: .now, changeTime: .now)
        table = Mutex(Table(nodes: [.root: Node(attributes: root, children: [:])]))
    }

    func lookup(parent: InodeNumber, name: String, context: RequestContext) throws(Errno) -> EntryReply {
        let attributes = try table.withLock { table throws(Errno) -> FileAttributes in
            guard let children = table.nodes[parent]?.children else { throw .notDirectory }
            guard let inode = children[name], let node = table.nodes[inode] else { throw .noEntry }
            return node.attributes
        }
        return entry(attributes)
    }

    func getAttributes(inode: InodeNumber, handle: UInt64?, context: RequestContext) throws(Errno) -> AttributeReply {
        guard let attributes = table.withLock({ $0.nodes[inode]?.attributes }) else { throw .noEntry }
        return AttributeReply(attributes: attributes, timeout: Self.attributeTimeout)
    }

    func makeDirectory(parent: InodeNumber, name: String, mode: UInt32, context: RequestContext) throws(Errno) -> EntryReply {
        entry(try add(parent: parent, name: name, mode: S_IFDIR | (mode & 0o7777), context: context, directory: true))
    }

    func removeDirectory(parent: InodeNumber, name: String, context: RequestContext) throws(Errno) {
        try remove(parent: parent, name: name)
    }

    func create(
        parent: InodeNumber, name: String, mode: UInt32, flags: OpenFlags, context: RequestContext
    ) throws(Errno) -> CreateReply {
        let attributes = try add(parent: parent, name: name, mode: S_IFREG | (mode & 0o7777), context: context, directory: false)
        return CreateReply(entry: entry(attributes), open: openReply(attributes.inode, flags))
    }

    func open(inode: InodeNumber, flags: OpenFlags, context: RequestContext) throws(Errno) -> OpenReply {
        openReply(inode, flags)
    }

    /// The flags a volume answers with: write-only handles bypass the page cache, read-only
    /// ones need no FLUSH.
    private func openReply(_ inode: InodeNumber, _ flags: OpenFlags) -> OpenReply {
        OpenReply(
            handle: inode.rawValue, keepCache: true, directIO: flags.accessMode == .writeOnly, noFlush: !flags.isWritable)
    }

    func read(inode: InodeNumber, handle: UInt64, offset: Int64, size: Int, context: RequestContext) throws(Errno) -> ReadReply {
        guard let fileSize = table.withLock({ $0.nodes[inode]?.attributes.size }) else { throw .noEntry }
        let available = max(0, Int(fileSize) - Int(offset))
        return .buffer(UnsafeRawBufferPointer(rebasing: Self.zeros.prefix(min(size, available, Self.zeros.count))), keepAlive: nil)
    }

    func write(
        inode: InodeNumber, handle: UInt64, offset: Int64, data: UnsafeRawBufferPointer, context: RequestContext
    ) throws(Errno) -> Int {
        try table.withLock { table throws(Errno) in
            guard let size = table.nodes[inode]?.attributes.size else { throw .noEntry }
            table.nodes[inode]!.attributes.size = max(size, UInt64(offset) + UInt64(data.count))
            table.nodes[inode]!.attributes.modificationTime = .now
        }
        return data.count
    }

    func unlink(parent: InodeNumber, name: String, context: RequestContext) throws(Errno) {
        try remove(parent: parent, name: name)
    }

    func openDirectory(inode: InodeNumber, flags: OpenFlags, context: RequestContext) throws(Errno) -> OpenReply {
        OpenReply(handle: inode.rawValue)
    }

    func readDirectory(
        inode: InodeNumber, handle: UInt64, offset: Int64, into buffer: inout DirectoryBuffer, context: RequestContext
    ) throws(Errno) {
        let entries = try listing(inode)
        var position = Int(offset)
        while position < entries.count {
            let (name, attributes) = entries[position]
            guard buffer.add(name: name, inode: attributes.inode, type: attributes.type ?? .regular, nextOffset: Int64(position + 1))
            else { break }
            position += 1
        }
    }

    /// Entries with attributes the kernel may not cache, as the volume answers readdirplus.
    func readDirectoryPlus(
        inode: InodeNumber, handle: UInt64, offset: Int64, into buffer: inout DirectoryPlusBuffer, context: RequestContext
    ) throws(Errno) {
        let entries = try listing(inode)
        var position = Int(offset)
        while position < entries.count {
            let (name, attributes) = entries[position]
            let entry = EntryReply(attributes: attributes, entryTimeout: 0, attributeTimeout: 0)
            guard buffer.add(name: name, entry: entry, nextOffset: Int64(position + 1)) else { break }
            position += 1
        }
    }

    private func listing(_ inode: InodeNumber) throws(Errno) -> [(String, FileAttributes)] {
        try table.withLock { table throws(Errno) -> [(String, FileAttributes)] in
            guard let children = table.nodes[inode]?.children else { throw .notDirectory }
            return children.sorted { $0.key < $1.key }.compactMap { name, child in
                table.nodes[child].map { (name, $0.attributes) }
            }
        }
    }

    private func entry(_ attributes: FileAttributes) -> EntryReply {
        EntryReply(attributes: attributes, entryTimeout: Self.entryTimeout, attributeTimeout: Self.attributeTimeout)
    }

    private func add(
        parent: InodeNumber, name: String, mode: UInt32, context: RequestContext, directory: Bool
    ) throws(Errno) -> FileAttributes {
        try table.withLock { table throws(Errno) -> FileAttributes in
            // Mutated in place: a copy of the node would copy its children (O(n) per request).
            guard let children = table.nodes[parent]?.children else { throw .notDirectory }
            guard children[name] == nil else { throw .exists }
            let inode = InodeNumber(rawValue: table.nextInode)
            table.nextInode += 1
            let now = Timespec.now
            let attributes = FileAttributes(
                inode: inode, mode: mode, linkCount: directory ? 2 : 1, uid: context.uid, gid: context.gid,
                accessTime: now, modificationTime: now, changeTime: now)
            table.nodes[inode] = Node(attributes: attributes, children: directory ? [:] : nil)
            table.nodes[parent]!.children![name] = inode
            table.nodes[parent]!.attributes.modificationTime = now
            return attributes
        }
    }

    private func remove(parent: InodeNumber, name: String) throws(Errno) {
        try table.withLock { table throws(Errno) in
            guard let inode = table.nodes[parent]?.children?[name] else { throw .noEntry }
            if let children = table.nodes[inode]?.children, !children.isEmpty { throw .notEmpty }
            table.nodes[parent]!.children![name] = nil
            table.nodes[parent]!.attributes.modificationTime = .now
            // The kernel may still hold the inode (open files); keep it until the process ends.
        }
    }
}
