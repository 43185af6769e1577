public import CSIDriver
import Glibc
import POSIXCore

/// ``Mounter`` over Linux's mount(2) and umount2(2).
public struct LinuxMounter: Mounter {
    public init() {}

    public func bindMount(source: String, target: String, flags: BindMountFlags) throws(MountError) {
        // Recursive, so mounts inside the source (the volume's vineyard.sock) come along.
        do {
            try syscall { Glibc.mount(source, target, nil, UInt(MS_BIND) | UInt(MS_REC), nil) }
        } catch {
            throw MountError(operation: "bind-mount \(source) on", path: target, errno: error)
        }
        guard !flags.isEmpty else { return }
        // A bind mount takes the source's flags; per-mount flags need a second, remount call.
        do {
            try syscall { Glibc.mount(source, target, nil, UInt(MS_BIND) | UInt(MS_REMOUNT) | flags.rawValue, nil) }
        } catch {
            _ = try? syscall { umount2(target, Int32(MNT_DETACH)) }
            throw MountError(operation: "remount with \(flags)", path: target, errno: error)
        }
    }

    public func unmount(_ target: String, lazy: Bool) throws(MountError) {
        do {
            try syscall { umount2(target, lazy ? Int32(MNT_DETACH) : 0) }
        } catch {
            throw MountError(operation: "unmount", path: target, errno: error)
        }
    }

    /// The last mount at exactly `path` (the visible one).
    public func mount(at path: String) -> MountEntry? {
        guard let entry = (try? MountTable.read())?.topmost(at: path) else { return nil }
        return MountEntry(
            mountPoint: entry.mountPoint, fileSystemType: entry.fileSystemType, source: entry.source,
            options: entry.options, superOptions: entry.superOptions)
    }
}
