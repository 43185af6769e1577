//
// vineyard-csi: FUSEKit
//

internal import CFUSE
import Glibc

/// The kind of a node, taken from the `S_IFMT` bits of a mode.
public enum FileType: Sendable, Hashable, CaseIterable {
    case regular
    case directory
    case symbolicLink
    case characterDevice
    case blockDevice
    case fifo
    case socket

    /// The `S_IFMT` bits of this type.
    public var modeBits: UInt32 {
        switch self {
        case .regular: return S_IFREG
        case .directory: return S_IFDIR
        case .symbolicLink: return S_IFLNK
        case .characterDevice: return S_IFCHR
        case .blockDevice: return S_IFBLK
        case .fifo: return S_IFIFO
        case .socket: return S_IFSOCK
        }
    }

    /// The type encoded in `mode`, or `nil` when the type bits are not a known type.
    public init?(mode: UInt32) {
        switch mode & S_IFMT {
        case S_IFREG: self = .regular
        case S_IFDIR: self = .directory
        case S_IFLNK: self = .symbolicLink
        case S_IFCHR: self = .characterDevice
        case S_IFBLK: self = .blockDevice
        case S_IFIFO: self = .fifo
        case S_IFSOCK: self = .socket
        default: return nil
        }
    }

    /// A full mode: these type bits plus `permissions & 0o7777`.
    public func mode(permissions: UInt32) -> UInt32 {
        modeBits | (permissions & 0o7777)
    }
}

/// The attributes of a node, i.e. the fields of `struct stat` FUSE transmits.
public struct FileAttributes: Hashable, Sendable {
    /// The node id (`st_ino`).
    public var inode: InodeNumber
    /// File type and permission bits (`st_mode`), see ``FileType/mode(permissions:)``.
    public var mode: UInt32
    /// Number of hard links (`st_nlink`).
    public var linkCount: UInt32
    /// Owner (`st_uid`).
    public var uid: UInt32
    /// Group (`st_gid`).
    public var gid: UInt32
    /// Device number for device nodes (`st_rdev`).
    public var rdev: UInt64
    /// Size in bytes (`st_size`).
    public var size: UInt64
    /// Allocated 512-byte blocks (`st_blocks`).
    public var blocks: UInt64
    /// Preferred I/O size (`st_blksize`). The kernel uses it for `stat` only.
    public var blockSize: UInt32
    /// Last access (`st_atim`).
    public var accessTime: Timespec
    /// Last data modification (`st_mtim`).
    public var modificationTime: Timespec
    /// Last status change (`st_ctim`).
    public var changeTime: Timespec

    /// Creates attributes; `blocks` defaults to `size` rounded up to 512-byte blocks.
    public init(
        inode: InodeNumber,
        mode: UInt32,
        linkCount: UInt32 = 1,
        uid: UInt32 = 0,
        gid: UInt32 = 0,
        rdev: UInt64 = 0,
        size: UInt64 = 0,
        blocks: UInt64? = nil,
        blockSize: UInt32 = 4096,
        accessTime: Timespec = .zero,
        modificationTime: Timespec = .zero,
        changeTime: Timespec = .zero
    ) {
        self.inode = inode
        self.mode = mode
        self.linkCount = linkCount
        self.uid = uid
        self.gid = gid
        self.rdev = rdev
        self.size = size
        self.blocks = blocks ?? (size + 511) / 512
        self.blockSize = blockSize
        self.accessTime = accessTime
        self.modificationTime = modificationTime
        self.changeTime = changeTime
    }

    /// The type encoded in ``mode``.
    public var type: FileType? {
        FileType(mode: mode)
    }

    /// The permission bits of ``mode`` (`mode & 0o7777`).
    public var permissions: UInt32 {
        mode & 0o7777
    }
}

extension FileAttributes {
    init(_ st: stat) {
        self.init(
            inode: InodeNumber(rawValue: UInt64(st.st_ino)),
            mode: UInt32(st.st_mode),
            linkCount: UInt32(truncatingIfNeeded: st.st_nlink),
            uid: UInt32(st.st_uid),
            gid: UInt32(st.st_gid),
            rdev: UInt64(st.st_rdev),
            size: UInt64(max(0, st.st_size)),
            blocks: UInt64(max(0, st.st_blocks)),
            blockSize: UInt32(truncatingIfNeeded: st.st_blksize),
            accessTime: Timespec(st.st_atim),
            modificationTime: Timespec(st.st_mtim),
            changeTime: Timespec(st.st_ctim)
        )
    }

    var stat: Glibc.stat {
        var st = Glibc.stat()
        st.st_ino = ino_t(inode.rawValue)
        st.st_mode = mode_t(mode)
        st.st_nlink = nlink_t(linkCount)
        st.st_uid = uid_t(uid)
        st.st_gid = gid_t(gid)
        st.st_rdev = dev_t(rdev)
        st.st_size = off_t(clamping: size)
        st.st_blocks = blkcnt_t(clamping: blocks)
        st.st_blksize = blksize_t(blockSize)
        st.st_atim = accessTime.timespec
        st.st_mtim = modificationTime.timespec
        st.st_ctim = changeTime.timespec
        return st
    }
}
