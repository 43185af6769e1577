public import CSIDriver
import Glibc

/// ``Mounter`` over Linux's mount(2) and umount2(2).
public struct LinuxMounter: Mounter {
    public init() {}

    public func bindMount(source: String, target: String, flags: BindMountFlags) throws(MountError) {
        // Recursive, so mounts inside the source (the volume's vineyard.sock) come along.
        guard Glibc.mount(source, target, nil, UInt(MS_BIND) | UInt(MS_REC), nil) == 0 else {
            throw MountError(operation: "bind-mount \(source) on", path: target, errno: errno)
        }
        guard !flags.isEmpty else { return }
        // A bind mount takes the source's flags; per-mount flags need a second, remount call.
        guard Glibc.mount(source, target, nil, UInt(MS_BIND) | UInt(MS_REMOUNT) | flags.rawValue, nil) == 0 else {
            let failure = MountError(operation: "remount with \(flags)", path: target, errno: errno)
            umount2(target, Int32(MNT_DETACH))
            throw failure
        }
    }

    public func unmount(_ target: String, lazy: Bool) throws(MountError) {
        guard umount2(target, lazy ? Int32(MNT_DETACH) : 0) == 0 else {
            throw MountError(operation: "unmount", path: target, errno: errno)
        }
    }

    public func mount(at path: String) -> MountEntry? {
        Self.mountTable().last { $0.mountPoint == path }
    }

    /// Parses `/proc/self/mountinfo`; the last entry for a mount point is the visible one.
    static func mountTable() -> [MountEntry] {
        guard let file = fopen("/proc/self/mountinfo", "r") else { return [] }
        defer { fclose(file) }
        var entries: [MountEntry] = []
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            if let entry = parse(String(cString: line)) { entries.append(entry) }
        }
        return entries
    }

    /// `36 35 98:0 /root /mnt rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
    static func parse(_ line: String) -> MountEntry? {
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        guard let separator = fields.firstIndex(of: "-"), separator >= 6, fields.count >= separator + 3 else {
            return nil
        }
        return MountEntry(
            mountPoint: unescape(fields[4]),
            fileSystemType: fields[separator + 1],
            source: unescape(fields[separator + 2]),
            options: fields[5].split(separator: ",").map(String.init),
            superOptions: fields.count > separator + 3 ? fields[separator + 3].split(separator: ",").map(String.init) : []
        )
    }

    /// mountinfo writes space, tab, newline and backslash as three-digit octal escapes.
    static func unescape(_ field: String) -> String {
        guard field.contains("\\") else { return field }
        var bytes: [UInt8] = []
        var utf8 = Array(field.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "\\"), utf8.count >= 3,
                let value = UInt8(String(decoding: utf8.prefix(3), as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                utf8 = utf8.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
