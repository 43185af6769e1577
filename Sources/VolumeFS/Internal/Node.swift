//
// vineyard-csi: VolumeFS
//
// Node.swift: one inode of a mounted volume.

import FUSEKit
import SharedMemoryStore
import StoreBackend
import Synchronization

/// What a file system keeps per inode beside the table's bookkeeping.
protocol NodeContent {
    /// The content of a node just created.
    init()
}

/// The node of the volume file system: a file's open handles and version.
typealias Node = InodeNode<FileState>

/// An inode: a path of the volume as the kernel knows it.
///
/// Identity (`inode`, `kind`) never changes. The place in the tree (`parent`, `name`) and the
/// reference counts are guarded by the ``InodeTable``'s lock; the file system's content of
/// the node (`file`) is guarded by the node's own ``lock``. Lock order: the volume's namespace
/// lock, then a node's lock, then the table's lock, then the backend's.
final class InodeNode<Content: NodeContent>: @unchecked Sendable {
    let inode: InodeNumber
    let kind: NodeKind

    // MARK: Guarded by `lock`

    /// Guards ``file`` (held around calls that read or change it, so the value lives outside).
    let lock = Mutex<Void>(())
    /// What the file system keeps for this inode (open handles and the version being written).
    var file = Content()

    // MARK: Guarded by the inode table's lock

    /// The directory holding this node; `nil` for the root and for detached nodes.
    var parent: InodeNode?
    var name: FileName
    /// The kernel's lookup count.
    var lookups: UInt64 = 0
    /// Open file and directory handles.
    var opens = 0
    /// Attached child nodes in the table.
    var children = 0
    /// Whether `parent/name` still names this node (false after unlink, rmdir, being
    /// replaced by a rename, or deletion noticed in the store).
    var isAttached = true
    /// A file created here whose first version is still being written: it has no store
    /// name yet, so directory listings and emptiness checks must take it from the table.
    var isPending = false

    init(inode: InodeNumber, kind: NodeKind, parent: InodeNode?, name: FileName) {
        self.inode = inode
        self.kind = kind
        self.parent = parent
        self.name = name
    }
}

/// The state of a regular file's contents in this mount, guarded by ``InodeNode/lock``.
struct FileState: NodeContent {
    /// The sealed object reads are served from. Held only while the file is open, so a
    /// file deleted or replaced elsewhere stays readable through open descriptors, and a
    /// merely cached inode does not pin the memory of a deleted object.
    var current: (any SealedFile)?
    /// The version being written, shared by every handle of the inode.
    var writer: PendingVersion?
    /// Open handles of this inode.
    var openCount = 0
    /// Open handles that may write.
    var writableCount = 0
    /// Writable handles that wrote or truncated since their last flush, with the thread id
    /// that did it last.
    ///
    /// FLUSH comes with every `close(2)` of every copy of a descriptor, so it publishes the
    /// version only when it clears its handle's mark — it comes from the thread that wrote
    /// last, i.e. the writer closing its descriptor — and no other handle is marked. Other
    /// FLUSHes are copies being closed while the writer goes on: a forked child's
    /// close-on-exec, or the original descriptor after `dup2` (`cmd > file`, `dd`). Versions
    /// not published by a FLUSH (a created or `O_TRUNC`-opened file never written, a writer
    /// closing from another thread) are published at RELEASE, the last close of all copies.
    var dirtyHandles: [UInt64: Int32] = [:]
    /// The object whose bytes the kernel's page cache holds for this inode, if known; an open
    /// keeps the cache (`keep_cache`) only when it still serves that object.
    var cachedObjectID: ObjectID?
    /// The backing file the kernel serves this inode's passthrough opens from.
    var backing: BackingFile?
}

/// A new version of a file, written in place in the backend, that becomes the file when it
/// is published.
struct PendingVersion {
    let blob: any FileVersion
    /// The size of the version this one replaces, as counted in the volume's usage when the
    /// writer started. The volume's usage counts `size` instead while the writer is open.
    let baseline: Int
    /// The blob's size (kept here so that the writer's lock is not needed to read it).
    var size: Int
    var attributes: PosixAttributes
    /// Whether the page cache holds exactly this version's bytes (every change went through
    /// the kernel after a coherent start).
    var cacheCoherent: Bool
    /// A write failed for lack of space: the version is discarded at close, so the file stays
    /// as it was (absent, or the previous version).
    var failure: Errno?
}
