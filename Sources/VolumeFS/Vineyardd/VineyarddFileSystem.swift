//
// vineyard-csi: VolumeFS
//
// VineyarddFileSystem.swift: a volume's files as named objects in a real vineyardd (cluster mode).

public import FUSEKit
import Glibc
import SharedMemoryStore
public import StoreBackend
import Synchronization
import VineyardIPC

/// The file system of a volume whose backend is a vineyard deployment's vineyardd instead of
/// the node's embedded store (cluster mode).
///
/// - A file `p` is the object named `<volumeID>/p` in vineyardd, persisted, so with etcd
///   metadata every instance of the deployment knows it. Files written through the mount are
///   ``VineyardClient/chunkedFileTypeName`` objects whose bytes are blobs in vineyardd's shared
///   memory: each write is copied once, into them. Byte tensors that vineyard clients put
///   under the volume's prefix read as files too.
/// - Reads map vineyardd's shared memory and reply with pointers into it: no copy in the driver.
/// - A directory exists while a name lies below it; `mkdir` names a marker object
///   `<volumeID>/<dir>/` so empty directories persist too.
/// - A file is published (named) at `close`/`flush` of the writer; until then other openers see
///   the previous version or nothing. Writers write anywhere, leave holes and truncate to any
///   size: their content lives in unsealed (mutable) blobs of their own, and a blob of the named
///   version is copied before it is written (see VineyarddFileSystem+Writes.swift). Readers
///   keep the version they opened.
/// - The volume's capacity is enforced (`ENOSPC`) and reported by `statfs` (see
///   VineyarddFileSystem+Quota.swift).
/// - While vineyardd is unreachable every operation fails with `ENOTCONN`; the next operation
///   after it returns reconnects. Files opened before a reconnect fail with `EIO`: their mapped
///   memory or unsealed writes belong to the vineyardd that went away.
///
/// Unlike ``VolumeFileSystem`` there is no snapshot or restart adoption here: vineyardd owns the
/// memory, and its objects are shared by every node.
public final class VineyarddFileSystem: FileSystem, @unchecked Sendable {
    /// What a path is.
    enum Entry {
        case file(size: Int)
        case directory
        case socket
        /// ``VolumeFileSystem/vineyardConfigFileName``: made per node, never stored.
        case config(size: Int)
    }

    /// Nothing per inode beyond the table's bookkeeping: open files are keyed by handle and
    /// by path.
    struct NoContent: NodeContent {}

    struct State {
        /// The inodes the kernel knows, forgotten when it forgets them.
        var inodes = InodeTable<NoContent>(
            root: InodeNode(inode: .root, kind: .directory, parent: nil, name: FileName("")))
        var handles: [UInt64: RemoteOpenFile] = [:]
        var nextHandle: UInt64 = 1
        /// Sizes of files being written and not yet published, by path.
        var writing: [String: Int] = [:]
        /// Open readers by path: replaced objects are deleted only when the last one closes,
        /// so vineyardd never reuses memory a reader still has mapped.
        var readers: [String: Int] = [:]
        var deferredDeletions: [String: [(id: ObjectID, deep: Bool)]] = [:]
        /// The version whose pages the kernel may have cached, by path.
        var cachedVersions: [String: ObjectID] = [:]
        /// The volume's quota (see VineyarddFileSystem+Quota.swift); 0: none.
        var capacity = 0
        /// Bytes of the volume's named objects, as last counted and kept up to date since.
        var usedBytes = 0
        /// Bytes open writers hold beyond the versions they started from.
        var reservedBytes = 0
    }

    let connection: VineyarddConnection
    let volumeID: String
    /// `"<volumeID>/"`.
    let prefix: String
    let readOnly: Bool
    /// Serializes metadata and vineyardd calls (one connection). Readers copy nothing under it.
    let lock = Mutex(())
    var state = State()

    /// The field that marks the volume's objects as its own, so the volume's socket serves
    /// them (see ``VolumeFileSystem/ownerMetadataKey``).
    var ownerStamp: [String: JSONValue] { [VolumeFileSystem.ownerMetadataKey: .string(volumeID)] }

    /// Type of the marker objects of directories.
    static let directoryTypeName = "vineyard-csi::Directory"

    /// - Parameters:
    ///   - connection: the deployment's vineyardd on this node.
    ///   - volumeID: names live under `<volumeID>/`.
    ///   - capacityBytes: the volume's quota; 0: none (vineyardd's memory is the limit).
    public init(connection: VineyarddConnection, volumeID: String, readOnly: Bool, capacityBytes: Int = 0) throws(VolumeFSError) {
        try VolumeFileSystem.validate(volumeID: volumeID)
        self.connection = connection
        self.volumeID = volumeID
        self.prefix = VolumeFileSystem.storeNamePrefix(volumeID: volumeID)
        self.readOnly = readOnly
        state.capacity = capacityBytes
        // Counted again at every statfs; a vineyardd that does not answer yet counts nothing.
        state.usedBytes = (try? Self.namedBytes(connection: connection, volumeID: volumeID)) ?? 0
    }

    /// Inodes the kernel currently references (and the root), for diagnostics.
    public var inodeCount: Int {
        lock.withLock { _ in state.inodes.count }
    }

    /// Mount options: no readdirplus (attributes come from vineyardd one name at a time).
    public static func recommendedMountOptions(volumeID: String, readOnly: Bool) -> MountOptions {
        var capabilities = FUSECapabilities.defaults
        capabilities.formUnion([.atomicOpenTruncate])
        return MountOptions(
            fsName: VolumeFileSystem.mountSource(volumeID: volumeID), subtype: "vineyard", allowOther: true,
            defaultPermissions: true, readOnly: readOnly, maxWrite: 1 << 20, readAheadKilobytes: 1024,
            capabilities: capabilities)
    }

    func locked<R>(_ body: () throws(Errno) -> R) throws(Errno) -> R {
        let result: Result<R, Errno> = lock.withLock { _ in
            do throws(Errno) { return .success(try body()) } catch { return .failure(error) }
        }
        return try result.get()
    }

    // MARK: - Paths and inodes (under the lock)

    func node(_ inode: InodeNumber) throws(Errno) -> InodeNode<NoContent> {
        guard let node = state.inodes.node(inode) else { throw .stale }
        return node
    }

    /// The path of an inode; `ENOENT` once it was removed or replaced.
    func path(of inode: InodeNumber) throws(Errno) -> String {
        guard let path = state.inodes.path(of: try node(inode)) else { throw .noEntry }
        return path
    }

    /// The inode of `parent/name` for an entry the kernel is given, counting one lookup.
    func pinInode(parent: InodeNumber, name: String, _ entry: Entry) throws(Errno) -> InodeNumber {
        let kind: NodeKind
        switch entry {
        case .directory: kind = .directory
        case .file, .socket, .config: kind = .file
        }
        return state.inodes.pinChild(of: try node(parent), named: FileName(name), kind: kind).inode
    }

    /// Removes `parent/name` from the inode table (unlinked, removed or replaced); the inode
    /// stays valid while the kernel still references it.
    func detachInode(parent: InodeNumber, name: String) {
        guard let directory = state.inodes.node(parent), let child = state.inodes.child(of: directory, named: FileName(name))
        else { return }
        state.inodes.detach(child)
    }

    static func child(_ parent: String, _ name: String) throws(Errno) -> String {
        guard !name.isEmpty, name != ".", name != "..", !name.utf8.contains(UInt8(ascii: "/")) else { throw .invalid }
        guard name.utf8.count <= 255 else { throw .nameTooLong }
        return parent.isEmpty ? name : parent + "/" + name
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return String(path[..<slash])
    }

    /// What `path` is, asking vineyardd.
    func entry(_ path: String) throws(Errno) -> Entry? {
        if path.isEmpty { return .directory }
        if path == VolumeFileSystem.socketFileName { return .socket }
        if path == VolumeFileSystem.vineyardConfigFileName { return .config(size: try vineyardConfig().count) }
        if let size = state.writing[path] { return .file(size: size) }
        let name = prefix + path
        enum Found { case missing, file(size: Int), other }
        let found = try connection.call { (client) throws(VineyardClientError) -> Found in
            do throws(VineyardFileError) {
                guard let file = try client.file(named: name) else { return .missing }
                return .file(size: file.size)
            } catch {
                if case .client(let failure) = error { throw failure }
                return .other  // an object that is not a file (a DataFrame): shown empty, unreadable
            }
        }
        switch found {
        case .file(let size): return .file(size: size)
        case .other: return .file(size: 0)
        case .missing: break
        }
        let below = try connection.call { (client) throws(VineyardClientError) in
            try client.names(matching: Self.glob(name + "/") + "*", limit: 1)
        }
        if !below.isEmpty { return .directory }
        if state.writing.keys.contains(where: { $0.hasPrefix(path + "/") }) { return .directory }
        return nil
    }

    /// Escapes glob metacharacters of a name prefix.
    static func glob(_ text: String) -> String {
        IPCPattern.escapingGlob(text)
    }

    func attributes(_ inode: InodeNumber, _ entry: Entry) -> FileAttributes {
        switch entry {
        case .directory:
            return FileAttributes(inode: inode, mode: FileType.directory.mode(permissions: 0o777), linkCount: 2)
        case .file(let size):
            return FileAttributes(inode: inode, mode: FileType.regular.mode(permissions: 0o666), size: UInt64(size))
        case .socket:
            return FileAttributes(inode: inode, mode: FileType.regular.mode(permissions: 0o666))
        case .config(let size):
            return FileAttributes(inode: inode, mode: FileType.regular.mode(permissions: 0o444), size: UInt64(size))
        }
    }

    func entryReply(parent: InodeNumber, name: String, path: String) throws(Errno) -> EntryReply {
        guard let found = try entry(path) else { throw .noEntry }
        return EntryReply(attributes: attributes(try pinInode(parent: parent, name: name, found), found))
    }

    // MARK: - FileSystem: names and attributes

    public func lookup(parent: InodeNumber, name: String, context: RequestContext) throws(Errno) -> EntryReply {
        try locked { () throws(Errno) in
            let path = try Self.child(try path(of: parent), name)
            guard let found = try entry(path) else { return .negative(timeout: 0) }
            return EntryReply(attributes: attributes(try pinInode(parent: parent, name: name, found), found))
        }
    }

    public func forget(inode: InodeNumber, lookups: UInt64) {
        lock.withLock { _ in
            guard let node = state.inodes.node(inode) else { return }
            state.inodes.forget(node, lookups)
        }
    }

    public func getAttributes(inode: InodeNumber, handle: UInt64?, context: RequestContext) throws(Errno) -> AttributeReply {
        try locked { () throws(Errno) in
            if let handle, let open = state.handles[handle], open.writable {
                return AttributeReply(attributes: attributes(inode, .file(size: open.size)))
            }
            guard let found = try entry(try path(of: inode)) else { throw .noEntry }
            return AttributeReply(attributes: attributes(inode, found))
        }
    }

    public func access(inode: InodeNumber, mask: AccessMask, context: RequestContext) throws(Errno) {}

    public func statistics(inode: InodeNumber, context: RequestContext) throws(Errno) -> FileSystemStatistics {
        let (status, capacity, volumeUsed) = try locked { () throws(Errno) in
            try recountUsage()
            let status = try connection.call { (client) throws(VineyardClientError) in try client.instanceStatus() }
            return (status, state.capacity, state.usedBytes + state.reservedBytes)
        }
        let limit = UInt64(max(0, status["memory_limit"]?.int64Value ?? 0))
        let used = UInt64(max(0, status["memory_usage"]?.int64Value ?? 0))
        let serverFree = limit > used ? limit - used : 0
        // The volume's capacity and bytes when it has a quota; vineyardd's memory otherwise.
        let total = capacity > 0 ? UInt64(capacity) : limit
        let free = capacity > 0 ? min(UInt64(max(0, capacity - volumeUsed)), serverFree) : serverFree
        return FileSystemStatistics(
            blockSize: 4096, blocks: total / 4096, freeBlocks: free / 4096, files: 1 << 20, freeFiles: 1 << 20)
    }

    // MARK: - Directories

    public func readDirectory(
        inode: InodeNumber, handle: UInt64, offset: Int64, into buffer: inout DirectoryBuffer, context: RequestContext
    ) throws(Errno) {
        guard offset >= 0 else { throw .invalid }
        let items = try locked { () throws(Errno) -> [(String, InodeNumber, FileType)] in
            let directory = try path(of: inode)
            let base = prefix + (directory.isEmpty ? "" : directory + "/")
            let names = try connection.call { (client) throws(VineyardClientError) in
                try client.names(matching: Self.glob(base) + "*")
            }
            var children: [String: FileType] = [:]
            if directory.isEmpty {
                children[VolumeFileSystem.socketFileName] = .regular
                children[VolumeFileSystem.vineyardConfigFileName] = .regular
            }
            for (name, _) in names {
                let rest = name.dropFirst(base.count)
                if rest.isEmpty { continue }  // the directory's own marker
                if let slash = rest.firstIndex(of: "/") {
                    children[String(rest[..<slash])] = .directory
                } else {
                    children[String(rest)] = children[String(rest)] ?? .regular
                }
            }
            for path in state.writing.keys where Self.parent(of: path) == directory {
                let name = String(path.dropFirst(directory.isEmpty ? 0 : directory.count + 1))
                if !name.contains("/") { children[name] = children[name] ?? .regular }
            }
            // Entries the kernel has not looked up get no inode of their own: a listing is not
            // a lookup, and numbers given out here would never be forgotten.
            let directoryNode = try node(inode)
            let parentInode = directoryNode.parent?.inode ?? inode
            var items: [(String, InodeNumber, FileType)] = [(".", inode, .directory), ("..", parentInode, .directory)]
            for (name, type) in children.sorted(by: { $0.key < $1.key }) {
                let known = state.inodes.child(of: directoryNode, named: FileName(name))?.inode
                items.append((name, known ?? VolumeFileSystem.unknownInode, type))
            }
            return items
        }
        for (index, item) in items.enumerated().dropFirst(Int(offset)) {
            guard buffer.add(name: item.0, inode: item.1, type: item.2, nextOffset: Int64(index) + 1) else { break }
        }
    }

    public func makeDirectory(parent: InodeNumber, name: String, mode: UInt32, context: RequestContext) throws(Errno) -> EntryReply {
        guard !readOnly else { throw .readOnlyFileSystem }
        return try locked { () throws(Errno) in
            let path = try Self.child(try path(of: parent), name)
            guard try entry(path) == nil else { throw .exists }
            try connection.call { (client) throws(VineyardClientError) in
                let marker = try client.createData([
                    "typename": .string(Self.directoryTypeName), "instance_id": JSONValue(integer: client.server.instanceID),
                    "nbytes": 0, "transient": true, "global": false,
                ])
                try client.persist(marker)
                try client.putName(prefix + path + "/", marker)
            }
            return try entryReply(parent: parent, name: name, path: path)
        }
    }

    public func removeDirectory(parent: InodeNumber, name: String, context: RequestContext) throws(Errno) {
        guard !readOnly else { throw .readOnlyFileSystem }
        try locked { () throws(Errno) in
            let path = try Self.child(try path(of: parent), name)
            guard case .directory? = try entry(path) else { throw .notDirectory }
            let marker = prefix + path + "/"
            let removed = try connection.call { (client) throws(VineyardClientError) -> Bool in
                let below = try client.names(matching: Self.glob(marker) + "*", limit: 2)
                guard below.allSatisfy({ $0.name == marker }) else { return false }
                if let id = try client.object(named: marker) {
                    try client.dropName(marker)
                    try client.delete([id])
                }
                return true
            }
            guard removed else { throw .notEmpty }
            detachInode(parent: parent, name: name)
        }
    }

    // MARK: - Names

    public func unlink(parent: InodeNumber, name: String, context: RequestContext) throws(Errno) {
        guard !readOnly else { throw .readOnlyFileSystem }
        try locked { () throws(Errno) in
            let path = try Self.child(try path(of: parent), name)
            guard !Self.isReserved(path) else { throw .notPermitted }
            guard case .file(let size)? = try entry(path) else { throw .noEntry }
            let removed = try connection.call { (client) throws(VineyardClientError) -> ObjectID? in
                let id = try client.object(named: prefix + path)
                try client.dropName(prefix + path)
                return id
            }
            detachInode(parent: parent, name: name)
            if let removed {
                quotaRemoved(size)
                try deleteWhenUnread(path, [removed])
            }
        }
    }

    public func rename(
        parent: InodeNumber, name: String, newParent: InodeNumber, newName: String, flags: RenameFlags,
        context: RequestContext
    ) throws(Errno) {
        guard !readOnly else { throw .readOnlyFileSystem }
        guard flags.isEmpty || flags == .noReplace else { throw .invalid }
        try locked { () throws(Errno) in
            let from = try Self.child(try path(of: parent), name)
            let to = try Self.child(try path(of: newParent), newName)
            guard !Self.isReserved(from), !Self.isReserved(to) else { throw .notPermitted }
            guard let source = try entry(from) else { throw .noEntry }
            let target = try entry(to)
            if target != nil && flags == .noReplace { throw .exists }
            guard state.writing[from] == nil else { throw .busy }
            switch source {
            case .file:
                let replaced = try connection.call { (client) throws(VineyardClientError) -> ObjectID? in
                    guard let id = try client.object(named: prefix + from) else { return nil }
                    let old = try client.object(named: prefix + to)
                    try client.putName(prefix + to, id)
                    try client.dropName(prefix + from)
                    return old
                }
                if let replaced {
                    if case .file(let size)? = target { quotaRemoved(size) }
                    try deleteWhenUnread(to, [replaced])
                }
            case .directory:
                if case .file? = target { throw .notDirectory }
                if to.hasPrefix(from + "/") { throw .invalid }
                let oldBase = prefix + from + "/"
                let targetEmpty = try connection.call { (client) throws(VineyardClientError) -> Bool in
                    try client.names(matching: Self.glob(prefix + to + "/") + "*", limit: 2).allSatisfy { $0.name == prefix + to + "/" }
                }
                guard targetEmpty else { throw .notEmpty }
                try connection.call { (client) throws(VineyardClientError) in
                    for (name, id) in try client.names(matching: Self.glob(oldBase) + "*") {
                        try client.putName(prefix + to + "/" + name.dropFirst(oldBase.count), id)
                        try client.dropName(name)
                    }
                }
            case .socket, .config:
                throw .notPermitted
            }
            moveInode(parent: parent, name: name, newParent: newParent, newName: newName)
        }
    }

    /// Moves the renamed node in the inode table (its descendants follow, as paths are built
    /// from parents); whatever had the new name is detached.
    private func moveInode(parent: InodeNumber, name: String, newParent: InodeNumber, newName: String) {
        guard let target = state.inodes.node(newParent) else { return }
        if let source = state.inodes.node(parent), let node = state.inodes.child(of: source, named: FileName(name)) {
            state.inodes.move(node, to: target, name: FileName(newName))
        } else {
            detachInode(parent: newParent, name: newName)
        }
    }

    /// Deletes replaced or removed objects now, or when the path's last reader closes.
    /// `deep: false` keeps the blobs (a newer version of the file still uses them).
    func deleteWhenUnread(_ path: String, _ objects: [ObjectID], deep: Bool = true) throws(Errno) {
        if state.readers[path, default: 0] > 0 {
            state.deferredDeletions[path, default: []] += objects.map { ($0, deep) }
            return
        }
        guard !objects.isEmpty else { return }
        try connection.call { (client) throws(VineyardClientError) in try client.delete(objects, deep: deep) }
    }
}

extension VineyarddFileSystem {
    /// The open handle of ``VolumeFileSystem/vineyardConfigFileName`` (never a file's).
    static let configHandle = UInt64.max

    /// Names at the root that are the driver's, not the volume's.
    static func isReserved(_ path: String) -> Bool {
        path == VolumeFileSystem.socketFileName || path == VolumeFileSystem.vineyardConfigFileName
    }

    /// The volume's vineyard-config.yaml on this node: the socket next to it and this node's
    /// vineyardd's RPC endpoint. Made on demand rather than stored: names are the whole
    /// deployment's, the endpoint is this node's.
    func vineyardConfig() throws(Errno) -> [UInt8] {
        let (client, _) = try connection.currentClient()
        return Array(VolumeFileSystem.vineyardConfigText(rpcEndpoint: client.server.rpcEndpoint).utf8)
    }
}
