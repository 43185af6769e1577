//
// vineyard-csi: FUSEKit
//
// The protocol a FUSE file system implements.

/// A file system served by a ``FUSESession`` through libfuse's low-level (inode based) API.
///
/// ## Threading
/// Methods are synchronous and are called on libfuse worker threads, several at a time
/// (``FUSECapabilities/asyncRead`` and ``FUSECapabilities/parallelDirectoryOperations`` are on
/// by default). They are not Swift concurrency threads: never block them waiting on `async`
/// work or an actor; keep shared state behind a `Mutex` or a lock. Every call produces exactly
/// one reply: the returned value, or the thrown ``Errno``.
///
/// ## Lookup counts
/// Every successful ``lookup(parent:name:context:)``, ``makeDirectory(parent:name:mode:context:)``,
/// ``create(parent:name:mode:flags:context:)``, ``makeNode(parent:name:mode:device:context:)``,
/// ``symbolicLink(target:parent:name:context:)``, ``link(inode:newParent:newName:context:)``
/// and every entry accepted by a ``DirectoryPlusBuffer`` (other than "." and "..") adds one
/// to the inode's lookup count; ``forget(inode:lookups:)`` subtracts. An inode must stay valid
/// while its count is above zero, even after unlink. Entries FUSEKit could not deliver are
/// forgotten by FUSEKit itself.
///
/// ## Defaults
/// Only lookup, getattr, readdir and read are required. Mutating operations default to
/// throwing ``Errno/notImplemented``; open/opendir succeed with handle 0; flush, fsync and
/// release are no-ops; access throws ``Errno/notImplemented`` so that the kernel stops asking.
public protocol FileSystem: Sendable {
    // MARK: Lifecycle

    /// The connection is initialised (INIT). Called once, before any other request.
    func initialize(connection: ConnectionInfo)

    /// The session is being destroyed (after unmount). Called at most once.
    func destroy()

    // MARK: Names and attributes

    /// Looks up `name` in directory `parent`; counts as one lookup of the returned inode.
    /// Throw ``Errno/noEntry`` or return ``EntryReply/negative(timeout:)`` when it does not exist.
    func lookup(parent: InodeNumber, name: String, context: RequestContext) throws(Errno) -> EntryReply

    /// The kernel dropped `lookups` references to `inode`. No reply is possible, so no error.
    func forget(inode: InodeNumber, lookups: UInt64)

    /// Attributes of `inode`; `handle` is set when the request came through an open file.
    func getAttributes(inode: InodeNumber, handle: UInt64?, context: RequestContext) throws(Errno) -> AttributeReply

    /// Changes attributes (chmod, chown, truncate, utimes) and returns the new ones.
    func setAttributes(
        inode: InodeNumber, _ changes: SetAttributes, handle: UInt64?, context: RequestContext
    ) throws(Errno) -> AttributeReply

    /// Permission check for `access(2)`; only sent without `default_permissions`.
    func access(inode: InodeNumber, mask: AccessMask, context: RequestContext) throws(Errno)

    /// File system statistics for `statfs(2)`.
    func statistics(inode: InodeNumber, context: RequestContext) throws(Errno) -> FileSystemStatistics

    // MARK: Directories

    /// Opens a directory; the handle comes back in readdir and releasedir.
    func openDirectory(inode: InodeNumber, flags: OpenFlags, context: RequestContext) throws(Errno) -> OpenReply

    /// Fills `buffer` with entries after `offset` (0 = start; otherwise a `nextOffset` given
    /// earlier). Stop when ``DirectoryBuffer/add(name:inode:type:nextOffset:)`` returns `false`;
    /// adding nothing means end of directory.
    func readDirectory(
        inode: InodeNumber, handle: UInt64, offset: Int64, into buffer: inout DirectoryBuffer,
        context: RequestContext
    ) throws(Errno)

    /// Like ``readDirectory(inode:handle:offset:into:context:)`` with full entries; used only when
    /// ``FUSECapabilities/readDirectoryPlus`` is enabled. Each accepted entry other than "." and
    /// ".." counts as one lookup.
    func readDirectoryPlus(
        inode: InodeNumber, handle: UInt64, offset: Int64, into buffer: inout DirectoryPlusBuffer,
        context: RequestContext
    ) throws(Errno)

    /// Closes a directory handle.
    func releaseDirectory(inode: InodeNumber, handle: UInt64)

    /// `fsync` on a directory.
    func synchronizeDirectory(inode: InodeNumber, handle: UInt64, dataOnly: Bool, context: RequestContext) throws(Errno)

    /// Creates a directory; counts as one lookup of the new inode.
    func makeDirectory(parent: InodeNumber, name: String, mode: UInt32, context: RequestContext) throws(Errno) -> EntryReply

    /// Removes an empty directory (``Errno/notEmpty`` otherwise).
    func removeDirectory(parent: InodeNumber, name: String, context: RequestContext) throws(Errno)

    // MARK: Files

    /// Creates and opens a regular file; counts as one lookup of the new inode.
    func create(
        parent: InodeNumber, name: String, mode: UInt32, flags: OpenFlags, context: RequestContext
    ) throws(Errno) -> CreateReply

    /// Creates a node (regular file, fifo, device); used when create is not implemented.
    func makeNode(
        parent: InodeNumber, name: String, mode: UInt32, device: UInt64, context: RequestContext
    ) throws(Errno) -> EntryReply

    /// Opens a file.
    func open(inode: InodeNumber, flags: OpenFlags, context: RequestContext) throws(Errno) -> OpenReply

    /// Reads up to `size` bytes at `offset`. Returning fewer bytes means end of file (unless
    /// the file was opened with ``OpenReply/directIO``).
    func read(
        inode: InodeNumber, handle: UInt64, offset: Int64, size: Int, context: RequestContext
    ) throws(Errno) -> ReadReply

    /// Writes `data` at `offset` and returns the number of bytes written. `data` is only valid
    /// during the call.
    func write(
        inode: InodeNumber, handle: UInt64, offset: Int64, data: UnsafeRawBufferPointer, context: RequestContext
    ) throws(Errno) -> Int

    /// Called on every `close(2)` of a descriptor for the handle (possibly several times).
    func flush(inode: InodeNumber, handle: UInt64, lockOwner: UInt64, context: RequestContext) throws(Errno)

    /// `fsync`/`fdatasync`.
    func synchronize(inode: InodeNumber, handle: UInt64, dataOnly: Bool, context: RequestContext) throws(Errno)

    /// `fallocate(2)` on an open file: `mode` holds its flags (`FALLOC_FL_KEEP_SIZE`,
    /// `FALLOC_FL_PUNCH_HOLE`, ...). Unimplemented, the kernel answers `EOPNOTSUPP` from then on.
    func allocate(
        inode: InodeNumber, handle: UInt64, offset: Int64, length: Int64, mode: Int32, context: RequestContext
    ) throws(Errno)

    /// The last reference to the open file went away; at most once per successful open/create.
    /// The kernel sends it asynchronously after the last close and drops it if the file system
    /// is unmounted first, so release whatever is left in ``destroy()``.
    func release(inode: InodeNumber, handle: UInt64, flags: OpenFlags)

    /// Removes a name (not a directory).
    func unlink(parent: InodeNumber, name: String, context: RequestContext) throws(Errno)

    /// Renames `parent/name` to `newParent/newName`, replacing a target unless `flags` says
    /// otherwise (``RenameFlags/noReplace``, ``RenameFlags/exchange``).
    func rename(
        parent: InodeNumber, name: String, newParent: InodeNumber, newName: String, flags: RenameFlags,
        context: RequestContext
    ) throws(Errno)

    // MARK: Links

    /// Creates a hard link; counts as one lookup of `inode`.
    func link(inode: InodeNumber, newParent: InodeNumber, newName: String, context: RequestContext) throws(Errno) -> EntryReply

    /// Creates a symbolic link; counts as one lookup of the new inode.
    func symbolicLink(target: String, parent: InodeNumber, name: String, context: RequestContext) throws(Errno) -> EntryReply

    /// The target of a symbolic link.
    func readLink(inode: InodeNumber, context: RequestContext) throws(Errno) -> String
}

// MARK: - Defaults

extension FileSystem {
    public func initialize(connection: ConnectionInfo) {}

    public func destroy() {}

    public func forget(inode: InodeNumber, lookups: UInt64) {}

    public func setAttributes(
        inode: InodeNumber, _ changes: SetAttributes, handle: UInt64?, context: RequestContext
    ) throws(Errno) -> AttributeReply {
        throw .notImplemented
    }

    public func access(inode: InodeNumber, mask: AccessMask, context: RequestContext) throws(Errno) {
        throw .notImplemented
    }

    public func statistics(inode: InodeNumber, context: RequestContext) throws(Errno) -> FileSystemStatistics {
        FileSystemStatistics(blockSize: 512, maximumNameLength: 255)
    }

    public func openDirectory(inode: InodeNumber, flags: OpenFlags, context: RequestContext) throws(Errno) -> OpenReply {
        OpenReply()
    }

    public func readDirectoryPlus(
        inode: InodeNumber, handle: UInt64, offset: Int64, into buffer: inout DirectoryPlusBuffer,
        context: RequestContext
    ) throws(Errno) {
        throw .notImplemented
    }

    public func releaseDirectory(inode: InodeNumber, handle: UInt64) {}

    public func synchronizeDirectory(
        inode: InodeNumber, handle: UInt64, dataOnly: Bool, context: RequestContext
    ) throws(Errno) {}

    public func makeDirectory(
        parent: InodeNumber, name: String, mode: UInt32, context: RequestContext
    ) throws(Errno) -> EntryReply {
        throw .notImplemented
    }

    public func removeDirectory(parent: InodeNumber, name: String, context: RequestContext) throws(Errno) {
        throw .notImplemented
    }

    public func create(
        parent: InodeNumber, name: String, mode: UInt32, flags: OpenFlags, context: RequestContext
    ) throws(Errno) -> CreateReply {
        throw .notImplemented
    }

    public func makeNode(
        parent: InodeNumber, name: String, mode: UInt32, device: UInt64, context: RequestContext
    ) throws(Errno) -> EntryReply {
        throw .notImplemented
    }

    public func open(inode: InodeNumber, flags: OpenFlags, context: RequestContext) throws(Errno) -> OpenReply {
        OpenReply()
    }

    public func write(
        inode: InodeNumber, handle: UInt64, offset: Int64, data: UnsafeRawBufferPointer, context: RequestContext
    ) throws(Errno) -> Int {
        throw .notImplemented
    }

    public func flush(inode: InodeNumber, handle: UInt64, lockOwner: UInt64, context: RequestContext) throws(Errno) {}

    public func synchronize(inode: InodeNumber, handle: UInt64, dataOnly: Bool, context: RequestContext) throws(Errno) {}

    public func allocate(
        inode: InodeNumber, handle: UInt64, offset: Int64, length: Int64, mode: Int32, context: RequestContext
    ) throws(Errno) {
        throw .notImplemented
    }

    public func release(inode: InodeNumber, handle: UInt64, flags: OpenFlags) {}

    public func unlink(parent: InodeNumber, name: String, context: RequestContext) throws(Errno) {
        throw .notImplemented
    }

    public func rename(
        parent: InodeNumber, name: String, newParent: InodeNumber, newName: String, flags: RenameFlags,
        context: RequestContext
    ) throws(Errno) {
        throw .notImplemented
    }

    public func link(
        inode: InodeNumber, newParent: InodeNumber, newName: String, context: RequestContext
    ) throws(Errno) -> EntryReply {
        throw .notImplemented
    }

    public func symbolicLink(
        target: String, parent: InodeNumber, name: String, context: RequestContext
    ) throws(Errno) -> EntryReply {
        throw .notImplemented
    }

    public func readLink(inode: InodeNumber, context: RequestContext) throws(Errno) -> String {
        throw .notImplemented
    }
}
