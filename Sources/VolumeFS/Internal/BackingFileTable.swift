//
// vineyard-csi: VolumeFS
//
// BackingFileTable.swift: which opens of an inode the kernel serves from a backing file
// (FUSE passthrough), and the backing file each inode holds while it does.

import FUSEKit
import SharedMemoryStore
import StoreBackend

/// The backing file the kernel serves an inode's passthrough opens from: one per inode,
/// counted over those opens, released after the last of them (guarded by the node's lock).
struct BackingFile {
    let id: BackingID
    /// The sealed object whose file it is.
    let object: ObjectID
    /// Holds the object while the kernel may read it, so its bytes stay counted in the
    /// store (the kernel keeps the file itself alive anyway). `nil` after a restart when the
    /// object was deleted meanwhile.
    let handle: (any SealedFile)?
    /// Open handles of the inode answered with `FOPEN_PASSTHROUGH` and this id.
    var opens: Int
}

/// How an open is answered.
///
/// The kernel holds every open of an inode to one mode: while one open is passthrough, all
/// others must be passthrough with the same backing file, and a passthrough open fails while
/// the inode is open in cached mode (both fail the `open(2)` with `EIO`). Sealed objects never
/// change, so the backing file of a read-only open of a sealed file is that object's file;
/// whatever must still see other bytes (a version being written, a newer version published
/// since the backing file was chosen) or may change them (a writable open) gets the inode's
/// backing file with `FOPEN_DIRECT_IO`: its reads and writes come to the driver as before,
/// only mappings go to the backing file.
enum PassthroughChoice: Equatable {
    /// Served by the driver through the page cache, as without passthrough.
    case cached
    /// Register the current object's file and serve the open from it.
    case register
    /// Share the inode's backing file; `direct`: reads and writes still come to the driver.
    case share(BackingID, direct: Bool)

    /// The choice for one open.
    ///
    /// - Parameters:
    ///   - backing: the inode's backing file, if it has one.
    ///   - cachedOpens: open handles of the inode answered without passthrough.
    ///   - writable: the open may write.
    ///   - writing: a version of the file is being written (reads must see it).
    ///   - current: the sealed object the open serves, if any.
    ///   - currentHasFile: that object's bytes are a file of their own (a backing file needs
    ///     byte 0 of the file to be byte 0 of the object).
    static func choose(
        backing: BackingFile?, cachedOpens: Int, writable: Bool, writing: Bool, current: ObjectID?,
        currentHasFile: Bool
    ) -> PassthroughChoice {
        if let backing, backing.opens > 0 {
            let servesCurrent = !writable && !writing && current == backing.object
            return .share(backing.id, direct: !servesCurrent)
        }
        guard cachedOpens == 0, !writable, !writing, current != nil, currentHasFile else { return .cached }
        return .register
    }
}

/// The outcome of a passthrough open, for the reply and the handle.
struct PassthroughOpen {
    let id: BackingID
    /// Reads and writes of the handle still come to the driver (`FOPEN_DIRECT_IO`).
    let direct: Bool
}
