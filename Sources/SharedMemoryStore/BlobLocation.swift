// vineyard-csi: SharedMemoryStore
// BlobLocation.swift: where a blob's bytes are, for zero-copy hand-off.

/// Where a blob's bytes live: a range of one arena file, or a file of the blob's own.
///
/// **Arena.** Another process maps the bytes from the arena's file descriptor
/// (``ArenaInfo/fileDescriptor``, passed with `SCM_RIGHTS`): `mmap(NULL, size, PROT_READ,
/// MAP_SHARED, fd, 0)` and read at `offset`. Vineyard's clients map the whole arena once and use
/// `offset` as `data_offset`.
///
/// **Own file** (``isOwnFile``; blobs at or above ``StoreConfiguration/blobFileThreshold``):
/// the bytes are the whole file at ``file``, byte 0 of the file being byte 0 of the blob
/// (``offset`` is 0). A sealed blob's file is exactly ``size`` bytes long. Get a descriptor with
/// ``ObjectStore/openBlobFile(_:)``, ``ObjectHandle/openFile()`` or ``BlobWriter/openFile()``:
/// it can back a FUSE passthrough file, or go to a vineyard client as the buffer's store fd with
/// `data_offset` 0.
public struct BlobLocation: Sendable, Hashable {
    /// ``arena`` of a blob in a file of its own.
    public static let ownFileArena = -1

    /// Index of the arena (0: a store has one arena), or ``ownFileArena``.
    public var arena: Int
    /// Byte offset of the blob in the arena file: 64-byte aligned, and 4 KiB aligned when the
    /// blob's memory was reserved in one piece of 64 KiB or more. 0 in a file of its own.
    public var offset: Int
    /// Length in bytes.
    public var size: Int
    /// The path of the blob's own file (`nil` in the arena). Open it through the store rather
    /// than by this path, so the file cannot be removed in between.
    public var file: String?

    /// Creates a location in the arena.
    public init(arena: Int, offset: Int, size: Int) {
        self.arena = arena
        self.offset = offset
        self.size = size
        self.file = nil
    }

    /// Creates the location of a blob in a file of its own.
    public init(file: String, size: Int) {
        self.arena = BlobLocation.ownFileArena
        self.offset = 0
        self.size = size
        self.file = file
    }

    /// Whether the bytes are in a file of their own rather than in the arena.
    public var isOwnFile: Bool { arena == BlobLocation.ownFileArena }
}

/// The shared-memory file behind an arena.
public struct ArenaInfo: Sendable, Hashable {
    /// The arena index.
    public var index: Int
    /// The arena file's path.
    public var path: String
    /// A read-write descriptor of the arena file, owned by the store and valid while the store
    /// (or any handle or writer of it) is alive. Do not close it; `dup` it to keep it longer.
    public var fileDescriptor: Int32
    /// The file's (and the mapping's) size in bytes. Every blob satisfies
    /// `offset + size <= size`. (vineyard's socket protocol reports `map_size = size + 8`,
    /// because its clients map `map_size - 8` bytes.)
    public var size: Int
}

/// What ``ObjectStore/open(_:)`` found and did.
public struct RecoveryReport: Sendable, Hashable {
    /// Sealed objects recovered from the metadata log.
    public var objects: Int
    /// Names recovered.
    public var names: Int
    /// Bytes at the end of the log that were not a complete, checksummed record (the trace of a
    /// crash in the middle of an append) and were cut off.
    public var discardedTailBytes: Int
    /// Names whose object no longer existed; they were dropped.
    public var danglingNames: Int
    /// The store's files were removed because they came from an earlier boot (or the arena was
    /// missing), so the store started empty.
    public var wipedStaleStore: Bool
    /// The store was created fresh.
    public var created: Bool
}

/// One entry of a directory-style listing (``ObjectStore/listDirectory(_:delimiter:after:limit:)``);
/// pass the last entry of a page as `after` to get the next page.
public enum DirectoryEntry: Sendable, Hashable {
    /// A name directly under the prefix, bound to an object.
    case object(name: String, id: ObjectID)
    /// A name component under the prefix that has further names below it (`prefix + name + "/"`).
    case directory(name: String)

    /// The entry's name relative to the listed prefix.
    public var name: String {
        switch self {
        case .object(let name, _), .directory(let name): return name
        }
    }
}
