//
// vineyard-csi: FUSEKit
//

internal import CFUSE
import Glibc

/// The reply buffer of one readdir request, sized by the kernel.
///
/// Entries are packed with `fuse_add_direntry` straight into the buffer that is then sent
/// with `fuse_reply_buf`.
public struct DirectoryBuffer: ~Copyable {
    let request: OpaquePointer
    let base: UnsafeMutableRawPointer
    /// Total size in bytes the kernel asked for.
    public let capacity: Int
    /// Bytes used so far.
    public private(set) var used: Int = 0
    /// Entries added so far.
    public private(set) var count: Int = 0

    init(request: OpaquePointer, base: UnsafeMutableRawPointer, capacity: Int) {
        self.request = request
        self.base = base
        self.capacity = capacity
    }

    /// Whether nothing has been added yet.
    public var isEmpty: Bool { count == 0 }

    /// Appends an entry. `nextOffset` is the offset the kernel passes back to continue after
    /// this entry (it must be non-zero and unique within the directory listing).
    /// - Returns: `false` when the entry did not fit; it was not added and the listing should
    ///   stop here (the kernel asks again from the last accepted `nextOffset`).
    public mutating func add(name: String, inode: InodeNumber, type: FileType, nextOffset: Int64) -> Bool {
        var st = stat()
        st.st_ino = ino_t(inode.rawValue)
        st.st_mode = mode_t(type.modeBits)
        let remaining = capacity - used
        let needed = name.withCString { cName in
            fuse_add_direntry(
                request, base.advanced(by: used).assumingMemoryBound(to: CChar.self), remaining, cName, &st,
                off_t(nextOffset))
        }
        guard needed <= remaining else { return false }
        used += needed
        count += 1
        return true
    }
}

/// The reply buffer of one readdirplus request: entries with full attributes.
///
/// Every accepted entry other than "." and ".." counts as one lookup of its inode (as if
/// ``FileSystem/lookup(parent:name:context:)`` had returned it); if the reply cannot be sent,
/// FUSEKit forgets them again.
public struct DirectoryPlusBuffer: ~Copyable {
    let request: OpaquePointer
    let base: UnsafeMutableRawPointer
    /// Total size in bytes the kernel asked for.
    public let capacity: Int
    /// Bytes used so far.
    public private(set) var used: Int = 0
    /// Entries added so far.
    public private(set) var count: Int = 0
    /// Inodes whose lookup count was taken by an accepted entry.
    var counted: [InodeNumber] = []

    init(request: OpaquePointer, base: UnsafeMutableRawPointer, capacity: Int) {
        self.request = request
        self.base = base
        self.capacity = capacity
    }

    /// Whether nothing has been added yet.
    public var isEmpty: Bool { count == 0 }

    /// Appends an entry with attributes; see ``DirectoryBuffer/add(name:inode:type:nextOffset:)``.
    /// - Returns: `false` when the entry did not fit (and took no lookup count).
    public mutating func add(name: String, entry: EntryReply, nextOffset: Int64) -> Bool {
        var param = fuse_entry_param(entry)
        let remaining = capacity - used
        let needed = name.withCString { cName in
            fuse_add_direntry_plus(
                request, base.advanced(by: used).assumingMemoryBound(to: CChar.self), remaining, cName, &param,
                off_t(nextOffset))
        }
        guard needed <= remaining else { return false }
        used += needed
        count += 1
        if !entry.isNegative && name != "." && name != ".." {
            counted.append(entry.attributes.inode)
        }
        return true
    }
}

extension fuse_entry_param {
    init(_ entry: EntryReply) {
        self.init()
        self.ino = fuse_ino_t(entry.attributes.inode.rawValue)
        self.generation = entry.generation
        self.attr = entry.attributes.stat
        self.attr_timeout = entry.attributeTimeout
        self.entry_timeout = entry.entryTimeout
    }
}
