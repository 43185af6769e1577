import Glibc

/// Mount-table operations the node plugin needs, behind a protocol so the logic can be tested
/// where mounting is impossible.
public protocol Mounter: Sendable {
    /// Bind-mounts `source` on `target`, then remounts it read-only when asked.
    func bindMount(source: String, target: String, readOnly: Bool) throws(MountError)
    /// Unmounts `target`; `lazy` detaches it even while busy or when its server is gone.
    func unmount(_ target: String, lazy: Bool) throws(MountError)
    /// The mount whose mount point is exactly `path`, if any.
    func mount(at path: String) -> MountEntry?
}

/// One line of `/proc/self/mountinfo`.
public struct MountEntry: Equatable, Sendable {
    public var mountPoint: String
    public var fileSystemType: String
    public var source: String
    public var options: [String]

    public var isReadOnly: Bool { options.contains("ro") }
}

/// A failed mount-table operation, with the errno and what was attempted.
public struct MountError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var path: String
    public var errno: Int32

    public var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }
}

/// ``Mounter`` over Linux's mount(2) and umount2(2).
public struct LinuxMounter: Mounter {
    public init() {}

    public func bindMount(source: String, target: String, readOnly: Bool) throws(MountError) {
        guard Glibc.mount(source, target, nil, UInt(MS_BIND), nil) == 0 else {
            throw MountError(operation: "bind-mount \(source) on", path: target, errno: errno)
        }
        guard readOnly else { return }
        // A bind mount takes the source's flags; read-only needs a second, remount call.
        let flags = UInt(MS_BIND) | UInt(MS_REMOUNT) | UInt(MS_RDONLY)
        guard Glibc.mount(source, target, nil, flags, nil) == 0 else {
            let failure = MountError(operation: "remount read-only", path: target, errno: errno)
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
        let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard let separator = fields.firstIndex(of: "-"), separator >= 6, fields.count >= separator + 3 else {
            return nil
        }
        return MountEntry(
            mountPoint: unescape(fields[4]),
            fileSystemType: fields[separator + 1],
            source: unescape(fields[separator + 2]),
            options: fields[5].split(separator: ",").map(String.init)
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
