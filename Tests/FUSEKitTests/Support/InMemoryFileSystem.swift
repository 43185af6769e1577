//
// vineyard-csi: FUSEKitTests
//
// A small in-memory file system used to exercise FUSEKit through real mounts.
// Regular files live either in Swift-allocated memory (served with ReadReply.buffer) or in a
// memfd (served with ReadReply.fileDescriptor), depending on `readPath`.

@testable import FUSEKit
import Glibc
import Synchronization

/// Memory behind a regular file. Grows by copying into a new Blob so that a buffer handed to
/// a read reply (kept alive by the reply) is never reallocated under it.
final class Blob: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        self.base = calloc(1, self.capacity)!  // zero-filled
    }

    deinit {
        free(base)
    }
}

/// A memfd behind a regular file; closed when the last reference (file or reply) goes away.
final class MemoryFile: @unchecked Sendable {
    let fd: Int32

    init() throws(Errno) {
        let fd = POSIX.memfdCreate("fusekit-test")
        guard fd >= 0 else { throw Errno.current }
        self.fd = fd
    }

    deinit {
        close(fd)
    }
}

final class InMemoryFileSystem: FileSystem {
    enum ReadPath: Sendable {
        case buffer
        /// Memory too, replied in pieces of at most 4 KiB + 1 byte (``ReadReply/buffers(_:keepAlive:)``).
        case pieces
        case fileDescriptor
    }

    enum Content {
        case directory([String: UInt64])
        case memory(Blob?)
        case memfd(MemoryFile)
        case symlink(String)
    }

    struct Node {
        var inode: UInt64
        var mode: UInt32
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        var linkCount: UInt32
        var size: Int = 0
        var atime: Timespec
        var mtime: Timespec
        var ctime: Timespec
        var lookups: UInt64 = 0
        var content: Content
        var parent: UInt64

        var attributes: FileAttributes {
            FileAttributes(
                inode: InodeNumber(inode), mode: mode, linkCount: linkCount, uid: uid, gid: gid,
                size: UInt64(size), blockSize: 4096, accessTime: atime, modificationTime: mtime, changeTime: ctime)
        }

        var isDirectory: Bool {
            if case .directory = content { return true }
            return false
        }

        var children: [String: UInt64] {
            get {
                if case .directory(let children) = content { return children }
                return [:]
            }
            set { content = .directory(newValue) }
        }
    }

    struct DirectorySnapshot {
        var entries: [(name: String, inode: UInt64)]
    }

    struct State {
        var nodes: [UInt64: Node] = [:]
        var nextInode: UInt64 = 2
        var directoryHandles: [UInt64: DirectorySnapshot] = [:]
        var nextHandle: UInt64 = 1
    }

    static let blockCount: UInt64 = 262_144  // 1 GiB of 4 KiB blocks
    static let fileCount: UInt64 = 100_000

    let readPath: ReadPath
    let timeout: Double
    /// Open every file with `direct_io` (reads and writes bypass the page cache).
    let directIO: Bool
    private let state = Mutex(State())

    // Observations for tests.
    let bufferReads = Atomic<Int>(0)
    let descriptorReads = Atomic<Int>(0)
    let largestRead = Atomic<Int>(0)
    let largestWrite = Atomic<Int>(0)
    let initializations = Atomic<Int>(0)
    let destructions = Atomic<Int>(0)
    let openHandles = Atomic<Int>(0)
    let negotiated = Mutex<ConnectionInfo?>(nil)

    init(readPath: ReadPath = .buffer, timeout: Double = 1.0, directIO: Bool = false) {
        self.readPath = readPath
        self.timeout = timeout
        self.directIO = directIO
        let now = Timespec.now
        state.withLock { state in
            state.nodes[1] = Node(
                inode: 1, mode: FileType.directory.mode(permissions: 0o755), linkCount: 2, atime: now, mtime: now,
                ctime: now, content: .directory([:]), parent: 1)
        }
    }

    // MARK: - Seeding (before mounting)

    /// Adds a regular file to the root directory.
    func addFile(name: String, contents: [UInt8], permissions: UInt32 = 0o644) throws(Errno) {
        try state.withLock { state throws(Errno) in
            let inode = try makeNode(
                &state, parent: 1, name: name, mode: FileType.regular.mode(permissions: permissions),
                context: RequestContext())
            let written = contents.withUnsafeBytes { bytes in
                Result { () throws(Errno) -> Int in
                    try writeLocked(&state, inode: inode, offset: 0, data: bytes, injectFailures: false)
                }
            }
            _ = try written.get()
        }
    }

    /// Removes a root entry behind the kernel's back (as another writer of a shared store would).
    @discardableResult
    func removeBehindKernel(name: String) -> InodeNumber? {
        state.withLock { state in
            guard let inode = state.nodes[1]!.children[name] else { return nil }
            detach(&state, parent: 1, name: name, inode: inode)
            return InodeNumber(inode)
        }
    }

    /// Replaces a root file's contents behind the kernel's back.
    func replaceBehindKernel(name: String, contents: [UInt8]) throws(Errno) {
        try state.withLock { state throws(Errno) in
            guard let inode = state.nodes[1]!.children[name] else { throw .noEntry }
            try resize(&state, inode: inode, to: 0)
            let written = contents.withUnsafeBytes { bytes in
                Result { () throws(Errno) -> Int in
                    try writeLocked(&state, inode: inode, offset: 0, data: bytes, injectFailures: false)
                }
            }
            _ = try written.get()
        }
    }

    /// The inode of a root entry.
    func inode(named name: String) -> InodeNumber? {
        state.withLock { state in state.nodes[1]!.children[name].map { InodeNumber($0) } }
    }

    // MARK: - Lifecycle

    func initialize(connection: ConnectionInfo) {
        initializations.add(1, ordering: .relaxed)
        negotiated.withLock { $0 = connection }
    }

    func destroy() {
        destructions.add(1, ordering: .relaxed)
    }

    // MARK: - Helpers (state locked)

    private func node(_ state: State, _ inode: InodeNumber) throws(Errno) -> Node {
        guard let node = state.nodes[inode.rawValue] else { throw .stale }
        return node
    }

    private func directory(_ state: State, _ inode: InodeNumber) throws(Errno) -> Node {
        let node = try node(state, inode)
        guard node.isDirectory else { throw .notDirectory }
        return node
    }

    private func check(name: String) throws(Errno) {
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/") else { throw .invalid }
        guard name.utf8.count <= 255 else { throw .nameTooLong }
    }

    private func entry(_ node: Node) -> EntryReply {
        EntryReply(attributes: node.attributes, entryTimeout: timeout, attributeTimeout: timeout)
    }

    private func makeNode(
        _ state: inout State, parent: UInt64, name: String, mode: UInt32, context: RequestContext,
        content: Content? = nil
    ) throws(Errno) -> UInt64 {
        try check(name: name)
        let dir = try directory(state, InodeNumber(parent))
        guard dir.children[name] == nil else { throw .exists }
        let inode = state.nextInode
        state.nextInode += 1
        let now = Timespec.now
        let isDirectory = mode & S_IFMT == S_IFDIR
        let resolved: Content
        if let content {
            resolved = content
        } else if isDirectory {
            resolved = .directory([:])
        } else {
            switch readPath {
            case .buffer, .pieces: resolved = .memory(nil)
            case .fileDescriptor: resolved = .memfd(try MemoryFile())
            }
        }
        state.nodes[inode] = Node(
            inode: inode, mode: mode, uid: context.uid, gid: context.gid, linkCount: isDirectory ? 2 : 1,
            atime: now, mtime: now, ctime: now, content: resolved, parent: parent)
        state.nodes[parent]!.children[name] = inode
        state.nodes[parent]!.mtime = now
        state.nodes[parent]!.ctime = now
        if isDirectory { state.nodes[parent]!.linkCount += 1 }
        return inode
    }

    /// Drops a node once it has no names and the kernel holds no references.
    private func collect(_ state: inout State, _ inode: UInt64) {
        guard inode != 1, let node = state.nodes[inode] else { return }
        if node.linkCount == 0 && node.lookups == 0 {
            state.nodes[inode] = nil
        }
    }

    /// Removes `name` from `parent` (already validated), adjusting link counts.
    private func detach(_ state: inout State, parent: UInt64, name: String, inode: UInt64) {
        let now = Timespec.now
        state.nodes[parent]!.children[name] = nil
        state.nodes[parent]!.mtime = now
        state.nodes[parent]!.ctime = now
        if state.nodes[inode]!.isDirectory {
            state.nodes[inode]!.linkCount = 0
            state.nodes[parent]!.linkCount -= 1
        } else {
            state.nodes[inode]!.linkCount -= 1
        }
        state.nodes[inode]!.ctime = now
        collect(&state, inode)
    }

    private func resize(_ state: inout State, inode: UInt64, to newSize: Int) throws(Errno) {
        guard var node = state.nodes[inode] else { throw .stale }
        switch node.content {
        case .memory(let blob):
            if newSize < node.size, let blob {
                memset(blob.base + newSize, 0, node.size - newSize)  // keep the tail zero
            } else if newSize > (blob?.capacity ?? 0) {
                let grown = Blob(capacity: newSize)
                if let blob { memcpy(grown.base, blob.base, node.size) }
                node.content = .memory(grown)
            }
        case .memfd(let file):
            guard ftruncate(file.fd, off_t(newSize)) == 0 else { throw .current }
        case .directory:
            throw .isDirectory
        case .symlink:
            throw .invalid
        }
        node.size = newSize
        state.nodes[inode] = node
    }

    private func writeLocked(
        _ state: inout State, inode: UInt64, offset: Int64, data: UnsafeRawBufferPointer, injectFailures: Bool = true
    ) throws(Errno) -> Int {
        guard offset >= 0 else { throw .invalid }
        let node = try node(state, InodeNumber(inode))
        if injectFailures, let failure = Self.injectedFailure(node: node, state: state) { throw failure }
        let end = Int(offset) + data.count
        switch node.content {
        case .memory(let blob):
            if end > (blob?.capacity ?? 0) {
                let grown = Blob(capacity: max(end, (blob?.capacity ?? 0) * 2, 65536))
                if let blob { memcpy(grown.base, blob.base, node.size) }
                state.nodes[inode]!.content = .memory(grown)
            }
            guard case .memory(let target?) = state.nodes[inode]!.content else { throw .io }
            if let source = data.baseAddress { memcpy(target.base + Int(offset), source, data.count) }
        case .memfd(let file):
            var done = 0
            while done < data.count {
                let n = pwrite(file.fd, data.baseAddress! + done, data.count - done, off_t(Int(offset) + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw .current
                }
                done += n
            }
        case .directory:
            throw .isDirectory
        case .symlink:
            throw .invalid
        }
        let now = Timespec.now
        state.nodes[inode]!.size = max(node.size, end)
        state.nodes[inode]!.mtime = now
        state.nodes[inode]!.ctime = now
        return data.count
    }

    /// Files named `fail-<errno>` fail every read and write with that errno.
    private static func injectedFailure(node: Node, state: State) -> Errno? {
        guard let parent = state.nodes[node.parent] else { return nil }
        for (name, inode) in parent.children where inode == node.inode && name.hasPrefix("fail-") {
            if let code = Int32(name.dropFirst(5)) { return Errno(rawValue: code) }
        }
        return nil
    }

    // MARK: - Names and attributes

    func lookup(parent: InodeNumber, name: String, context: RequestContext) throws(Errno) -> EntryReply {
        try state.withLock { state throws(Errno) in
            guard name.utf8.count <= 255 else { throw .nameTooLong }
            let dir = try directory(state, parent)
            guard let inode = dir.children[name] else { throw .noEntry }
            state.nodes[inode]!.lookups += 1
            return entry(state.nodes[inode]!)
        }
    }

    func forget(inode: InodeNumber, lookups: UInt64) {
        state.withLock { state in
            guard state.nodes[inode.rawValue] != nil else { return }
            state.nodes[inode.rawValue]!.lookups -= min(lookups, state.nodes[inode.rawValue]!.lookups)
            collect(&state, inode.rawValue)
        }
    }

    func getAttributes(inode: InodeNumber, handle: UInt64?, context: RequestContext) throws(Errno) -> AttributeReply {
        try state.withLock { state throws(Errno) in
            AttributeReply(attributes: try node(state, inode).attributes, timeout: timeout)
        }
    }

    func setAttributes(
        inode: InodeNumber, _ changes: SetAttributes, handle: UInt64?, context: RequestContext
    ) throws(Errno) -> AttributeReply {
        try state.withLock { state throws(Errno) in
            _ = try node(state, inode)
            let now = Timespec.now
            if let size = changes.size {
                guard size <= 1 << 34 else { throw .fileTooLarge }
                try resize(&state, inode: inode.rawValue, to: Int(size))
                state.nodes[inode.rawValue]!.mtime = now
            }
            var node = state.nodes[inode.rawValue]!
            if let mode = changes.mode { node.mode = (node.mode & S_IFMT) | (mode & 0o7777) }
            if let uid = changes.uid { node.uid = uid }
            if let gid = changes.gid { node.gid = gid }
            switch changes.accessTime {
            case .now?: node.atime = now
            case .time(let time)?: node.atime = time
            case nil: break
            }
            switch changes.modificationTime {
            case .now?: node.mtime = now
            case .time(let time)?: node.mtime = time
            case nil: break
            }
            node.ctime = changes.changeTime ?? now
            state.nodes[inode.rawValue] = node
            return AttributeReply(attributes: node.attributes, timeout: timeout)
        }
    }

    func access(inode: InodeNumber, mask: AccessMask, context: RequestContext) throws(Errno) {
        try state.withLock { state throws(Errno) in _ = try node(state, inode) }
    }

    func statistics(inode: InodeNumber, context: RequestContext) throws(Errno) -> FileSystemStatistics {
        state.withLock { state in
            let usedBytes = state.nodes.values.reduce(0) { $0 + UInt64($1.size) }
            let usedBlocks = (usedBytes + 4095) / 4096
            return FileSystemStatistics(
                blockSize: 4096, blocks: Self.blockCount, freeBlocks: Self.blockCount - min(usedBlocks, Self.blockCount),
                files: Self.fileCount, freeFiles: Self.fileCount - UInt64(state.nodes.count), maximumNameLength: 255)
        }
    }

    // MARK: - Directories

    func openDirectory(inode: InodeNumber, flags: OpenFlags, context: RequestContext) throws(Errno) -> OpenReply {
        try state.withLock { state throws(Errno) in
            let dir = try directory(state, inode)
            var entries: [(name: String, inode: UInt64)] = [(".", dir.inode), ("..", dir.parent)]
            for (name, child) in dir.children.sorted(by: { $0.key < $1.key }) {
                entries.append((name, child))
            }
            let handle = state.nextHandle
            state.nextHandle += 1
            state.directoryHandles[handle] = DirectorySnapshot(entries: entries)
            return OpenReply(handle: handle)
        }
    }

    func readDirectory(
        inode: InodeNumber, handle: UInt64, offset: Int64, into buffer: inout DirectoryBuffer, context: RequestContext
    ) throws(Errno) {
        let entries = try state.withLock { state throws(Errno) in
            guard let snapshot = state.directoryHandles[handle] else { throw .badFileDescriptor }
            return snapshot.entries.map { entry in
                (entry.name, entry.inode, state.nodes[entry.inode].flatMap { FileType(mode: $0.mode) } ?? .regular)
            }
        }
        guard offset >= 0 else { throw .invalid }
        var index = Int(offset)
        while index < entries.count {
            let (name, inode, type) = entries[index]
            guard buffer.add(name: name, inode: InodeNumber(inode), type: type, nextOffset: Int64(index + 1)) else {
                break
            }
            index += 1
        }
    }

    func readDirectoryPlus(
        inode: InodeNumber, handle: UInt64, offset: Int64, into buffer: inout DirectoryPlusBuffer,
        context: RequestContext
    ) throws(Errno) {
        guard offset >= 0 else { throw .invalid }
        // Fill while holding the lock so that lookup counts match what was accepted.
        try state.withLock { state throws(Errno) in
            guard let snapshot = state.directoryHandles[handle] else { throw .badFileDescriptor }
            var index = Int(offset)
            while index < snapshot.entries.count {
                let (name, child) = snapshot.entries[index]
                guard let node = state.nodes[child] else {
                    index += 1
                    continue
                }
                guard buffer.add(name: name, entry: entry(node), nextOffset: Int64(index + 1)) else { break }
                if name != "." && name != ".." { state.nodes[child]!.lookups += 1 }
                index += 1
            }
        }
    }

    func releaseDirectory(inode: InodeNumber, handle: UInt64) {
        state.withLock { state in state.directoryHandles[handle] = nil }
    }

    func makeDirectory(parent: InodeNumber, name: String, mode: UInt32, context: RequestContext) throws(Errno) -> EntryReply {
        try state.withLock { state throws(Errno) in
            let inode = try makeNode(
                &state, parent: parent.rawValue, name: name, mode: FileType.directory.mode(permissions: mode),
                context: context)
            state.nodes[inode]!.lookups += 1
            return entry(state.nodes[inode]!)
        }
    }

    func removeDirectory(parent: InodeNumber, name: String, context: RequestContext) throws(Errno) {
        try state.withLock { state throws(Errno) in
            let dir = try directory(state, parent)
            guard let inode = dir.children[name] else { throw .noEntry }
            let target = state.nodes[inode]!
            guard target.isDirectory else { throw .notDirectory }
            guard target.children.isEmpty else { throw .notEmpty }
            detach(&state, parent: parent.rawValue, name: name, inode: inode)
        }
    }

    // MARK: - Files

    func create(
        parent: InodeNumber, name: String, mode: UInt32, flags: OpenFlags, context: RequestContext
    ) throws(Errno) -> CreateReply {
        try state.withLock { state throws(Errno) in
            let inode = try makeNode(
                &state, parent: parent.rawValue, name: name, mode: FileType.regular.mode(permissions: mode),
                context: context)
            state.nodes[inode]!.lookups += 1
            openHandles.add(1, ordering: .relaxed)
            return CreateReply(entry: entry(state.nodes[inode]!), open: OpenReply(handle: inode))
        }
    }

    func makeNode(
        parent: InodeNumber, name: String, mode: UInt32, device: UInt64, context: RequestContext
    ) throws(Errno) -> EntryReply {
        guard FileType(mode: mode) == .regular else { throw .notSupported }
        return try state.withLock { state throws(Errno) in
            let inode = try makeNode(&state, parent: parent.rawValue, name: name, mode: mode, context: context)
            state.nodes[inode]!.lookups += 1
            return entry(state.nodes[inode]!)
        }
    }

    func open(inode: InodeNumber, flags: OpenFlags, context: RequestContext) throws(Errno) -> OpenReply {
        try state.withLock { state throws(Errno) in
            let node = try node(state, inode)
            if node.isDirectory { throw .isDirectory }
            if flags.contains(.truncate) && flags.isWritable {
                try resize(&state, inode: inode.rawValue, to: 0)
            }
            openHandles.add(1, ordering: .relaxed)
            return OpenReply(handle: inode.rawValue, directIO: directIO)
        }
    }

    func read(
        inode: InodeNumber, handle: UInt64, offset: Int64, size: Int, context: RequestContext
    ) throws(Errno) -> ReadReply {
        _ = largestRead.max(size, ordering: .relaxed)
        return try state.withLock { state throws(Errno) -> ReadReply in
            let node = try node(state, inode)
            if let failure = Self.injectedFailure(node: node, state: state) { throw failure }
            guard offset >= 0 else { throw .invalid }
            let available = max(0, min(size, node.size - Int(offset)))
            switch node.content {
            case .memory(let blob):
                bufferReads.add(1, ordering: .relaxed)
                guard let blob, available > 0 else { return .empty }
                let bytes = UnsafeRawBufferPointer(start: blob.base + Int(offset), count: available)
                guard readPath == .pieces else { return .buffer(bytes, keepAlive: blob) }
                let pieceSize = 4096 + 1
                let pieces = stride(from: 0, to: available, by: pieceSize).map { start in
                    UnsafeRawBufferPointer(rebasing: bytes[start..<min(start + pieceSize, available)])
                }
                return .buffers(pieces, keepAlive: blob)
            case .memfd(let file):
                descriptorReads.add(1, ordering: .relaxed)
                return .fileDescriptor(fd: file.fd, offset: Int(offset), length: available, keepAlive: file)
            case .directory:
                throw .isDirectory
            case .symlink:
                throw .invalid
            }
        }
    }

    func write(
        inode: InodeNumber, handle: UInt64, offset: Int64, data: UnsafeRawBufferPointer, context: RequestContext
    ) throws(Errno) -> Int {
        _ = largestWrite.max(data.count, ordering: .relaxed)
        return try state.withLock { state throws(Errno) in
            try writeLocked(&state, inode: inode.rawValue, offset: offset, data: data)
        }
    }

    func release(inode: InodeNumber, handle: UInt64, flags: OpenFlags) {
        openHandles.subtract(1, ordering: .relaxed)
    }

    func unlink(parent: InodeNumber, name: String, context: RequestContext) throws(Errno) {
        try state.withLock { state throws(Errno) in
            let dir = try directory(state, parent)
            guard let inode = dir.children[name] else { throw .noEntry }
            guard !state.nodes[inode]!.isDirectory else { throw .isDirectory }
            detach(&state, parent: parent.rawValue, name: name, inode: inode)
        }
    }

    func rename(
        parent: InodeNumber, name: String, newParent: InodeNumber, newName: String, flags: RenameFlags,
        context: RequestContext
    ) throws(Errno) {
        try state.withLock { state throws(Errno) in
            try check(name: newName)
            guard flags.isSubset(of: [.noReplace, .exchange]), flags != [.noReplace, .exchange] else {
                throw .invalid
            }
            let source = try directory(state, parent)
            let target = try directory(state, newParent)
            guard let moving = source.children[name] else { throw .noEntry }
            let existing = target.children[newName]
            if existing == moving { return }
            let now = Timespec.now

            if flags.contains(.exchange) {
                guard let existing else { throw .noEntry }
                state.nodes[parent.rawValue]!.children[name] = existing
                state.nodes[newParent.rawValue]!.children[newName] = moving
                state.nodes[moving]!.parent = newParent.rawValue
                state.nodes[existing]!.parent = parent.rawValue
                let movingIsDirectory = state.nodes[moving]!.isDirectory
                let existingIsDirectory = state.nodes[existing]!.isDirectory
                if movingIsDirectory != existingIsDirectory && parent != newParent {
                    let delta: Int = movingIsDirectory ? 1 : -1
                    state.nodes[newParent.rawValue]!.linkCount = UInt32(Int(state.nodes[newParent.rawValue]!.linkCount) + delta)
                    state.nodes[parent.rawValue]!.linkCount = UInt32(Int(state.nodes[parent.rawValue]!.linkCount) - delta)
                }
                for inode in [parent.rawValue, newParent.rawValue, moving, existing] { state.nodes[inode]!.ctime = now }
                return
            }

            let movingIsDirectory = state.nodes[moving]!.isDirectory
            if movingIsDirectory {
                // A directory cannot move below itself.
                var cursor = newParent.rawValue
                while cursor != 1 {
                    if cursor == moving { throw .invalid }
                    cursor = state.nodes[cursor]!.parent
                }
            }
            if let existing {
                if flags.contains(.noReplace) { throw .exists }
                let replaced = state.nodes[existing]!
                if replaced.isDirectory {
                    guard movingIsDirectory else { throw .isDirectory }
                    guard replaced.children.isEmpty else { throw .notEmpty }
                } else if movingIsDirectory {
                    throw .notDirectory
                }
                detach(&state, parent: newParent.rawValue, name: newName, inode: existing)
            }
            state.nodes[parent.rawValue]!.children[name] = nil
            state.nodes[newParent.rawValue]!.children[newName] = moving
            state.nodes[moving]!.parent = newParent.rawValue
            if movingIsDirectory && parent != newParent {
                state.nodes[parent.rawValue]!.linkCount -= 1
                state.nodes[newParent.rawValue]!.linkCount += 1
            }
            for inode in [parent.rawValue, newParent.rawValue, moving] { state.nodes[inode]!.ctime = now }
            state.nodes[parent.rawValue]!.mtime = now
            state.nodes[newParent.rawValue]!.mtime = now
        }
    }

    // MARK: - Links

    func link(inode: InodeNumber, newParent: InodeNumber, newName: String, context: RequestContext) throws(Errno) -> EntryReply {
        try state.withLock { state throws(Errno) in
            try check(name: newName)
            let node = try node(state, inode)
            guard !node.isDirectory else { throw .notPermitted }
            let dir = try directory(state, newParent)
            guard dir.children[newName] == nil else { throw .exists }
            state.nodes[newParent.rawValue]!.children[newName] = inode.rawValue
            state.nodes[inode.rawValue]!.linkCount += 1
            state.nodes[inode.rawValue]!.lookups += 1
            state.nodes[inode.rawValue]!.ctime = .now
            return entry(state.nodes[inode.rawValue]!)
        }
    }

    func symbolicLink(target: String, parent: InodeNumber, name: String, context: RequestContext) throws(Errno) -> EntryReply {
        try state.withLock { state throws(Errno) in
            let inode = try makeNode(
                &state, parent: parent.rawValue, name: name, mode: FileType.symbolicLink.mode(permissions: 0o777),
                context: context, content: .symlink(target))
            state.nodes[inode]!.size = target.utf8.count
            state.nodes[inode]!.lookups += 1
            return entry(state.nodes[inode]!)
        }
    }

    func readLink(inode: InodeNumber, context: RequestContext) throws(Errno) -> String {
        try state.withLock { state throws(Errno) in
            guard case .symlink(let target) = try node(state, inode).content else { throw .invalid }
            return target
        }
    }

    // MARK: - Introspection for tests

    /// Number of nodes still held (names or kernel references).
    var nodeCount: Int {
        state.withLock { $0.nodes.count }
    }
}
