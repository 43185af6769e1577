//
// vineyard-csi: FUSEKit
//

internal import CFUSE
import Glibc
import POSIXCore

/// Mounting `/dev/fuse` directly, for sessions started on a descriptor
/// (``FUSESession/init(fileSystem:fileDescriptor:mountPoint:options:)``): a privileged
/// process mounts and hands the descriptor to the server, or keeps a `dup` of it.
public enum FUSEDevice {
    /// Kernel mount flags understood in ``MountOptions/extraOptions``.
    private static let flagOptions: [String: UInt] = [
        "ro": 1, "nosuid": 2, "nodev": 4, "noexec": 8, "sync": 16, "dirsync": 128, "noatime": 1024,
        "nodiratime": 2048, "relatime": 1 << 21, "lazytime": 1 << 25,
    ]
    /// Options that clear a default flag.
    private static let clearingOptions: [String: UInt] = ["rw": 1, "suid": 2, "dev": 4, "exec": 8]

    /// Opens `/dev/fuse` and mounts it at `mountPoint` with `mount(2)` (needs `CAP_SYS_ADMIN`).
    ///
    /// Uses `fsname`, `subtype`, `allowOther`, `defaultPermissions`, `readOnly`, `maxRead` and
    /// the flag-like ``MountOptions/extraOptions`` (`noatime`, `noexec`, ...); other extra
    /// options are passed to the kernel as data. Like libfuse, mounts `nosuid,nodev` unless
    /// `suid`/`dev` is given.
    /// - Returns: the `/dev/fuse` descriptor (close-on-exec), connected to the new mount and
    ///   not yet initialised; pass it to a ``FUSESession``.
    public static func mount(at mountPoint: String, options: MountOptions = MountOptions()) throws(FUSEError) -> Int32 {
        var st = stat()
        do { try syscall { stat(mountPoint, &st) } } catch {
            throw FUSEError(code: .mount, errno: error, message: "cannot stat mount point \(mountPoint)")
        }
        let fd: Int32
        do { fd = try syscall { open("/dev/fuse", O_RDWR | O_CLOEXEC) } } catch {
            throw FUSEError(code: .mount, errno: error, message: "cannot open /dev/fuse")
        }

        var flags: UInt = 2 | 4  // MS_NOSUID | MS_NODEV
        if options.readOnly { flags |= 1 }
        var data = [
            "fd=\(fd)", "rootmode=\(String(st.st_mode & S_IFMT, radix: 8))", "user_id=\(getuid())",
            "group_id=\(getgid())",
        ]
        if options.allowOther { data.append("allow_other") }
        if options.defaultPermissions { data.append("default_permissions") }
        if let maxRead = options.maxRead, maxRead > 0 { data.append("max_read=\(maxRead)") }
        for extra in options.extraOptions.flatMap({ $0.split(separator: ",").map(String.init) }) {
            if let flag = flagOptions[extra] {
                flags |= flag
            } else if let flag = clearingOptions[extra] {
                flags &= ~flag
            } else {
                data.append(extra)
            }
        }
        let type = options.subtype.map { "fuse.\($0)" } ?? "fuse"
        let source = options.fsName ?? options.subtype ?? "fuse"
        do { try syscall { Glibc.mount(source, mountPoint, type, flags, data.joined(separator: ",")) } } catch {
            close(fd)
            throw FUSEError(code: .mount, errno: error, message: "mount(\(source), \(mountPoint), \(type))")
        }
        return fd
    }

    /// Lazily unmounts `mountPoint` (`umount2(MNT_DETACH)`, or `fusermount3 -u -z` without
    /// privileges). Not mounted is not an error.
    public static func unmount(_ mountPoint: String) throws(FUSEError) {
        try Unmounter.detach(mountPoint)
    }
}
