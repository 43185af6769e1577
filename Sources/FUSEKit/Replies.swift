//
// vineyard-csi: FUSEKit
//
// Values a file system returns for a request.

/// Attributes plus how long the kernel may cache them (`fuse_reply_attr`).
public struct AttributeReply: Hashable, Sendable {
    public var attributes: FileAttributes
    /// Seconds the kernel may cache ``attributes``.
    public var timeout: Double

    public init(attributes: FileAttributes, timeout: Double = 1.0) {
        self.attributes = attributes
        self.timeout = timeout
    }
}

/// A directory entry for lookup, mkdir, create, ... (`struct fuse_entry_param`).
///
/// Every entry replied with a non-zero inode increments that inode's lookup count by one;
/// the kernel gives it back through ``FileSystem/forget(inode:lookups:)``. If the reply cannot
/// be delivered (the request was interrupted), FUSEKit calls `forget(inode:lookups: 1)` itself.
public struct EntryReply: Hashable, Sendable {
    public var attributes: FileAttributes
    /// Generation number; (inode, generation) must be unique over the file system's lifetime
    /// if it is exported (NFS).
    public var generation: UInt64
    /// Seconds the kernel may cache the name → inode mapping.
    public var entryTimeout: Double
    /// Seconds the kernel may cache ``attributes``.
    public var attributeTimeout: Double

    public init(
        attributes: FileAttributes,
        generation: UInt64 = 0,
        entryTimeout: Double = 1.0,
        attributeTimeout: Double = 1.0
    ) {
        self.attributes = attributes
        self.generation = generation
        self.entryTimeout = entryTimeout
        self.attributeTimeout = attributeTimeout
    }

    /// A negative lookup result the kernel may cache for `timeout` seconds (inode 0).
    /// Does not touch any lookup count.
    public static func negative(timeout: Double) -> EntryReply {
        EntryReply(
            attributes: FileAttributes(inode: InodeNumber(rawValue: 0), mode: 0),
            entryTimeout: timeout,
            attributeTimeout: 0
        )
    }

    /// Whether this is a negative entry (inode 0).
    public var isNegative: Bool {
        attributes.inode.rawValue == 0
    }
}

/// The answer to open, opendir and the open half of create (`struct fuse_file_info` fields).
public struct OpenReply: Hashable, Sendable {
    /// Opaque file handle handed back in read, write, flush, release, readdir, ...
    public var handle: UInt64
    /// Keep the page cache of this file from previous opens (`keep_cache`).
    public var keepCache: Bool
    /// Bypass the page cache for this open file (`direct_io`); reads and writes then reach the
    /// file system with the caller's sizes and offsets.
    public var directIO: Bool
    /// The file is not seekable (`nonseekable`).
    public var nonSeekable: Bool
    /// Directories only: let the kernel cache readdir results (`cache_readdir`).
    public var cacheDirectory: Bool
    /// No flush is needed on close (`noflush`).
    public var noFlush: Bool
    /// Allow parallel direct writes to this file (`parallel_direct_writes`, libfuse >= 3.15;
    /// ignored by older libfuse).
    public var parallelDirectWrites: Bool
    /// Serve this open file from a backing file (``BackingFiles/register(_:)``): the kernel
    /// reads, writes and maps it without asking the file system. ``keepCache`` does not apply;
    /// with ``directIO`` reads and writes still come to the file system and only mappings go
    /// to the backing file. Every open of an inode open in passthrough mode must name the same
    /// backing file.
    public var passthrough: BackingID?

    public init(
        handle: UInt64 = 0,
        keepCache: Bool = false,
        directIO: Bool = false,
        nonSeekable: Bool = false,
        cacheDirectory: Bool = false,
        noFlush: Bool = false,
        parallelDirectWrites: Bool = false,
        passthrough: BackingID? = nil
    ) {
        self.handle = handle
        self.keepCache = keepCache
        self.directIO = directIO
        self.nonSeekable = nonSeekable
        self.cacheDirectory = cacheDirectory
        self.noFlush = noFlush
        self.parallelDirectWrites = parallelDirectWrites
        self.passthrough = passthrough
    }
}

/// The answer to create: the new entry plus the open file.
public struct CreateReply: Hashable, Sendable {
    public var entry: EntryReply
    public var open: OpenReply

    public init(entry: EntryReply, open: OpenReply) {
        self.entry = entry
        self.open = open
    }
}

/// Where the bytes of a read reply come from.
///
/// Both cases reply without copying in Swift: ``buffer(_:keepAlive:)`` hands the memory to
/// `fuse_reply_buf` (one `writev` into /dev/fuse) and ``fileDescriptor(fd:offset:length:keepAlive:)``
/// hands a descriptor to `fuse_reply_data`, which splices it into /dev/fuse when the kernel
/// offers `FUSE_CAP_SPLICE_WRITE` (see ``FUSECapabilities/spliceWrite``) and `pread`s otherwise.
/// Replies longer than the requested size are truncated to it; shorter replies mean EOF.
public enum ReadReply {
    /// Reply from memory. `keepAlive` is retained until the reply has been written, so the
    /// memory may belong to an object that is released concurrently.
    case buffer(UnsafeRawBufferPointer, keepAlive: AnyObject?)
    /// Reply with `length` bytes of `fd` starting at `offset` (`FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK`).
    /// The descriptor must stay open until the reply is sent; `keepAlive` is retained until then.
    case fileDescriptor(fd: Int32, offset: Int, length: Int, keepAlive: AnyObject? = nil)
    /// Reply from several pieces of memory, in order (`fuse_reply_iov`): a range that spans
    /// buffers is sent without first gathering it into one. `keepAlive` as for ``buffer(_:keepAlive:)``.
    case buffers([UnsafeRawBufferPointer], keepAlive: AnyObject?)
    /// Reply with bytes owned by Swift (convenience; no further copy either).
    case bytes([UInt8])

    /// An empty reply (end of file).
    public static var empty: ReadReply {
        .buffer(UnsafeRawBufferPointer(start: nil, count: 0), keepAlive: nil)
    }
}

/// File system statistics for `statfs`/`statvfs` (`struct statvfs`).
public struct FileSystemStatistics: Hashable, Sendable {
    /// Preferred block size (`f_bsize`).
    public var blockSize: UInt64
    /// Fundamental block size; the unit of the block counts (`f_frsize`).
    public var fragmentSize: UInt64
    /// Total blocks (`f_blocks`).
    public var blocks: UInt64
    /// Free blocks (`f_bfree`).
    public var freeBlocks: UInt64
    /// Free blocks for unprivileged users (`f_bavail`).
    public var availableBlocks: UInt64
    /// Total inodes (`f_files`).
    public var files: UInt64
    /// Free inodes (`f_ffree`).
    public var freeFiles: UInt64
    /// Free inodes for unprivileged users (`f_favail`).
    public var availableFiles: UInt64
    /// Maximum file name length in bytes (`f_namemax`).
    public var maximumNameLength: UInt64

    public init(
        blockSize: UInt64 = 4096,
        fragmentSize: UInt64? = nil,
        blocks: UInt64 = 0,
        freeBlocks: UInt64 = 0,
        availableBlocks: UInt64? = nil,
        files: UInt64 = 0,
        freeFiles: UInt64 = 0,
        availableFiles: UInt64? = nil,
        maximumNameLength: UInt64 = 255
    ) {
        self.blockSize = blockSize
        self.fragmentSize = fragmentSize ?? blockSize
        self.blocks = blocks
        self.freeBlocks = freeBlocks
        self.availableBlocks = availableBlocks ?? freeBlocks
        self.files = files
        self.freeFiles = freeFiles
        self.availableFiles = availableFiles ?? freeFiles
        self.maximumNameLength = maximumNameLength
    }
}
