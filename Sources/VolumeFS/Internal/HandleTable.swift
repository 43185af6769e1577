//
// vineyard-csi: VolumeFS
//
// HandleTable.swift: open file and directory handles.

import FUSEKit
import SharedMemoryStore
import StoreBackend
import Synchronization

/// Open handles by number, in shards so that concurrent opens, reads and releases of
/// different files rarely meet on one lock.
final class HandleTable<Value: AnyObject & Sendable>: Sendable {
    private static var shardCount: Int { 16 }
    /// One shard's handles (a class: `Mutex` cannot be copied into an array).
    private final class Shard: Sendable {
        let entries = Mutex<[UInt64: Value]>([:])
    }

    private let shards: [Shard]
    private let next = Atomic<UInt64>(1)

    init() {
        shards = (0..<Self.shardCount).map { _ in Shard() }
    }

    /// A fresh handle number (never 0, never reused).
    func makeHandle() -> UInt64 {
        next.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    func insert(_ value: Value, as handle: UInt64) {
        shard(handle).entries.withLock { $0[handle] = value }
    }

    func get(_ handle: UInt64) -> Value? {
        shard(handle).entries.withLock { $0[handle] }
    }

    func remove(_ handle: UInt64) -> Value? {
        shard(handle).entries.withLock { $0.removeValue(forKey: handle) }
    }

    /// Makes the next handles `first`, `first + 1`, ... (a process taking a mount over
    /// numbers its handles above every handle of the processes before it).
    func startNumbering(at first: UInt64) {
        next.store(first, ordering: .relaxed)
    }

    /// Every handle still open.
    var handles: [UInt64] {
        shards.flatMap { shard in shard.entries.withLock { Array($0.keys) } }
    }

    private func shard(_ handle: UInt64) -> Shard {
        shards[Int(handle % UInt64(Self.shardCount))]
    }
}

/// An open regular file.
final class OpenFile: Sendable {
    let node: Node
    let writable: Bool
    /// Opened write-only, so served with `direct_io`: writes skip the page cache (one copy
    /// fewer). Such a descriptor can neither read nor be mapped, so nothing is lost.
    let directIO: Bool
    /// Answered with the inode's backing file (FUSE passthrough); counted in its opens.
    let passthrough: Bool

    /// - Parameters:
    ///   - passthrough: answered with the inode's backing file.
    ///   - directPassthrough: reads and writes of that passthrough open still come here.
    init(node: Node, flags: OpenFlags, passthrough: Bool = false, directPassthrough: Bool = false) {
        self.node = node
        self.writable = flags.isWritable
        self.directIO = flags.accessMode == .writeOnly || directPassthrough
        self.passthrough = passthrough
    }
}

/// An open directory and its listing so far.
///
/// The listing is fetched from the store page by page, each page continuing after the last
/// entry of the previous one, and appended to `entries`. The readdir offset of an entry is its
/// position in that array (plus "." and ".."), so offsets stay valid however the directory
/// changes while it is read: every entry is returned at most once, and entries that exist
/// during the whole listing are returned exactly once.
final class DirectoryHandle: Sendable {
    let node: Node
    let listing = Mutex(DirectoryListing())

    init(node: Node) {
        self.node = node
    }
}

struct DirectoryListing {
    struct Entry: Sendable {
        var name: FileName
        var kind: NodeKind
    }

    var entries: [Entry] = []
    /// Files of this mount still being written (not in the store yet), listed first.
    var pendingNames: Set<FileName> = []
    /// The last store entry fetched.
    var cursor: ListedName?
    var exhausted = false
}
