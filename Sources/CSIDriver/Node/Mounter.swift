import Glibc

/// Mount-table operations the node plugin needs, behind a protocol so the logic can be tested
/// where mounting is impossible.
public protocol Mounter: Sendable {
    /// Bind-mounts `source` on `target`, then remounts it with `flags` (read-only and the
    /// like) when any are asked for.
    func bindMount(source: String, target: String, flags: BindMountFlags) throws(MountError)
    /// Unmounts `target`; `lazy` detaches it even while busy or when its server is gone.
    func unmount(_ target: String, lazy: Bool) throws(MountError)
    /// The mount whose mount point is exactly `path`, if any.
    func mount(at path: String) -> MountEntry?
}

/// Per-mount flags a bind mount can carry: read-only and the volume capability's `mount_flags`.
public struct BindMountFlags: OptionSet, Sendable, CustomStringConvertible {
    public var rawValue: UInt
    public init(rawValue: UInt) { self.rawValue = rawValue }

    public static let readOnly = BindMountFlags(rawValue: UInt(MS_RDONLY))
    public static let noSetUID = BindMountFlags(rawValue: UInt(MS_NOSUID))
    public static let noDevices = BindMountFlags(rawValue: UInt(MS_NODEV))
    public static let noExecute = BindMountFlags(rawValue: UInt(MS_NOEXEC))
    public static let noAccessTime = BindMountFlags(rawValue: UInt(MS_NOATIME))
    public static let relativeAccessTime = BindMountFlags(rawValue: UInt(MS_RELATIME))

    /// `mount_flags` spellings, as mount(8) writes them.
    static let byName: [String: BindMountFlags] = [
        "ro": .readOnly, "nosuid": .noSetUID, "nodev": .noDevices, "noexec": .noExecute,
        "noatime": .noAccessTime, "relatime": .relativeAccessTime,
    ]
    /// Flags that are the default and need nothing.
    static let defaults: Set<String> = ["rw", "suid", "dev", "exec", "bind", "defaults"]

    /// Parses a capability's `mount_flags`; nil names the first flag a bind mount cannot carry.
    static func parse(_ names: [String]) -> Result<BindMountFlags, UnsupportedMountFlag> {
        var flags: BindMountFlags = []
        for name in names where !defaults.contains(name) {
            guard let flag = byName[name] else { return .failure(UnsupportedMountFlag(name: name)) }
            flags.insert(flag)
        }
        return .success(flags)
    }

    public var description: String {
        Self.byName.filter { contains($0.value) }.keys.sorted().joined(separator: ",")
    }
}

struct UnsupportedMountFlag: Error {
    var name: String
}

/// One line of `/proc/self/mountinfo`.
public struct MountEntry: Equatable, Sendable {
    public var mountPoint: String
    public var fileSystemType: String
    public var source: String
    /// Per-mount options (`ro`, `nosuid`, …).
    public var options: [String]
    /// The file system's own options (tmpfs's `size=`, `huge=`, …).
    public var superOptions: [String] = []

    public init(mountPoint: String, fileSystemType: String, source: String, options: [String], superOptions: [String] = []) {
        self.mountPoint = mountPoint
        self.fileSystemType = fileSystemType
        self.source = source
        self.options = options
        self.superOptions = superOptions
    }

    public var isReadOnly: Bool { options.contains("ro") }
}

/// A failed mount-table operation, with the errno and what was attempted.
public struct MountError: Error, CustomStringConvertible, Sendable {
    public init(operation: String, path: String, errno: Int32) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    public var operation: String
    public var path: String
    public var errno: Int32

    public var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }
}

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
