//
// vineyard-csi: FUSEKit
//
// BackingFiles.swift: files the kernel serves opens from by itself (FUSE passthrough).

internal import CFUSE
import Glibc
import POSIXCore

/// The id the kernel gave a registered backing file; valid for the FUSE connection, so it
/// survives a hand-over of the connection's descriptor to another process.
public struct BackingID: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public var description: String { "backing \(rawValue)" }
}

/// Registers files with the kernel so that opens answered with ``OpenReply/passthrough`` are
/// served by the kernel from them: reads, writes, splices and shared mappings of such an open
/// file never reach the file system, and a mapping maps the backing file's own pages.
///
/// Byte N of the FUSE file is byte N of the backing file (the kernel has no offset to apply),
/// so each file served this way needs a file or memfd of its own. Registering needs
/// `CAP_SYS_ADMIN` in the initial user namespace, and the kernel performs I/O on the backing
/// file with the credentials of the registering process.
///
/// Present in ``ConnectionInfo/backingFiles`` when INIT agreed to `FUSE_PASSTHROUGH`
/// (``MountOptions/passthrough``). A file system keeps one id per inode, reference-counted over
/// its opens, and releases it after the last RELEASE: all opens of an inode that is open in
/// passthrough mode must use the same backing file.
public final class BackingFiles: Sendable, Hashable {
    /// The connection's `/dev/fuse` descriptor (not owned).
    let device: Int32

    init(device: Int32) {
        self.device = device
    }

    /// `FUSE_DEV_IOC_BACKING_OPEN`: `_IOW(229, 1, struct fuse_backing_map)`.
    static let openRequest: UInt = 0x4010_E501
    /// `FUSE_DEV_IOC_BACKING_CLOSE`: `_IOW(229, 2, uint32_t)`.
    static let closeRequest: UInt = 0x4004_E502

    /// `struct fuse_backing_map`: the descriptor, then flags and padding that must be zero.
    private struct BackingMap {
        var fd: Int32
        var flags: UInt32 = 0
        var padding: UInt64 = 0
    }

    /// Registers the open file `fd` (a regular file; the kernel takes its own reference, so
    /// `fd` may be closed afterwards).
    ///
    /// - Throws: `EPERM` without `CAP_SYS_ADMIN` in the initial user namespace,
    ///   `EOPNOTSUPP` when the connection did not agree to passthrough, `EINVAL` for a file
    ///   that cannot back another (not regular, or stacked too deep).
    public func register(_ fd: Int32) throws(Errno) -> BackingID {
        var map = BackingMap(fd: fd)
        return BackingID(rawValue: try syscall { ioctl(device, Self.openRequest, &map) })
    }

    /// Releases an id; opens already answered with it keep their backing file until closed.
    public func release(_ id: BackingID) {
        var raw = UInt32(bitPattern: id.rawValue)
        _ = ioctl(device, Self.closeRequest, &raw)
    }

    /// Whether this process may register backing files on the connection: registers an empty
    /// memfd and releases it at once.
    public func probe() -> Result<Void, Errno> {
        let fd = cfuse_memfd_create("fusekit-passthrough-probe", 1 /* MFD_CLOEXEC */)
        guard fd >= 0 else { return .failure(.current) }
        defer { close(fd) }
        do {
            release(try register(fd))
            return .success(())
        } catch {
            return .failure(error)
        }
    }

    public static func == (lhs: BackingFiles, rhs: BackingFiles) -> Bool { lhs === rhs }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}
