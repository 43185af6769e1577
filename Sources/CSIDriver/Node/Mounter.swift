import Glibc
public import POSIXCore

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
    public init(operation: String, path: String, errno: Errno) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    public var operation: String
    public var path: String
    public var errno: Errno

    public var description: String { "\(operation) \(path): \(errno)" }
}
