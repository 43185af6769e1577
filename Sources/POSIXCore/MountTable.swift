//
// vineyard-csi: POSIXCore
//
// MountTable.swift: a process's mounts, from /proc/<pid>/mountinfo.

import Glibc

/// The mounts a process sees, parsed from `/proc/<pid>/mountinfo` (proc(5)).
///
/// Reading the table never touches the mounts themselves, so a hung FUSE mount (whose `stat`
/// would block) is found and handled like any other. Later entries are mounted on top of
/// earlier ones: the last entry for a mount point is the visible one.
public struct MountTable: Sendable {
    /// A device number, `major:minor`.
    public struct Device: Hashable, Sendable {
        public var major: UInt32
        public var minor: UInt32

        public init(major: UInt32, minor: UInt32) {
            self.major = major
            self.minor = minor
        }
    }

    /// One line: `36 35 98:0 /root /mnt rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
    /// (mount id, parent id, device, root, mount point, options, optional fields, `-`, type,
    /// source, super options).
    public struct Entry: Hashable, Sendable {
        public var mountID: Int
        public var parentID: Int
        public var device: Device
        /// The directory of the file system this mount shows (`/` for all of it; a bind mount
        /// of a subdirectory shows that subdirectory).
        public var root: String
        public var mountPoint: String
        /// Per-mount options (`ro`, `nosuid`, …).
        public var options: [String]
        public var fileSystemType: String
        /// The file system's source (`/dev/sda1`, a FUSE `fsname`, `tmpfs`).
        public var source: String
        /// The file system's own options (tmpfs's `size=`, `huge=`, …).
        public var superOptions: [String]

        public var isReadOnly: Bool { options.contains("ro") }

        /// Parses one line; nil when it is not a mountinfo line.
        public init?(parsing line: Substring) {
            let fields = line.split(separator: " ")
            // The optional fields end at a lone "-", after the six fixed fields.
            guard fields.count >= 9, let separator = fields[6...].firstIndex(of: "-"), separator + 2 < fields.count,
                let mountID = Int(fields[0]), let parentID = Int(fields[1])
            else { return nil }
            let numbers = fields[2].split(separator: ":")
            guard numbers.count == 2, let major = UInt32(numbers[0]), let minor = UInt32(numbers[1]) else { return nil }
            self.mountID = mountID
            self.parentID = parentID
            device = Device(major: major, minor: minor)
            root = MountTable.unescape(fields[3])
            mountPoint = MountTable.unescape(fields[4])
            options = fields[5].split(separator: ",").map(String.init)
            fileSystemType = MountTable.unescape(fields[separator + 1])
            source = MountTable.unescape(fields[separator + 2])
            superOptions = separator + 3 < fields.count ? fields[separator + 3].split(separator: ",").map(String.init) : []
        }
    }

    /// Every mount, in the kernel's order (parents before what is mounted on them).
    public var entries: [Entry]

    /// Parses the text of a mountinfo file; lines that do not parse are skipped.
    public init(parsing text: String) {
        entries = text.split(separator: "\n").compactMap { Entry(parsing: $0) }
    }

    /// Reads this process's table, or that of process `pid` (whose mounts are seen in its own
    /// mount namespace and root).
    ///
    /// - Throws: the ``Errno`` of opening or reading the file: ``Errno/noEntry`` for a process
    ///   that does not exist or lives in a PID namespace this process cannot see.
    public static func read(process pid: Int32? = nil) throws(Errno) -> MountTable {
        let path = pid.map { "/proc/\($0)/mountinfo" } ?? "/proc/self/mountinfo"
        return MountTable(parsing: String(decoding: try FileIO.readAll(atPath: path), as: UTF8.self))
    }

    /// The visible mount at `mountPoint` (the last one mounted there), compared as written:
    /// see ``canonicalMountPoint(_:)``.
    public func topmost(at mountPoint: String) -> Entry? {
        entries.last { $0.mountPoint == mountPoint }
    }

    /// The visible mount at `path` in this process's table (after ``canonicalMountPoint(_:)``);
    /// nil when nothing is mounted there or the table cannot be read.
    public static func visibleMount(at path: String) -> Entry? {
        (try? read())?.topmost(at: canonicalMountPoint(path))
    }

    /// `path` as the kernel writes mount points: the parent's `realpath` plus the last
    /// component, so that the (possibly hung) mount itself is never resolved.
    public static func canonicalMountPoint(_ path: String) -> String {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return trimmed }
        let parent = slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
        let last = trimmed[trimmed.index(after: slash)...]
        guard let resolved = realpath(parent, nil) else { return trimmed }
        defer { free(resolved) }
        let base = String(cString: resolved)
        return base == "/" ? "/\(last)" : "\(base)/\(last)"
    }

    /// Undoes mountinfo's escapes: space, tab, newline and backslash are written as a backslash
    /// and three octal digits (`\040` for a space).
    public static func unescape(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var bytes: [UInt8] = []
        var rest = Array(field.utf8)[...]
        while let byte = rest.popFirst() {
            let digits = rest.prefix(3)
            if byte == UInt8(ascii: "\\"), digits.count == 3,
                digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") })
            {
                let value = digits.reduce(0) { $0 * 8 + Int($1 - UInt8(ascii: "0")) }
                bytes.append(UInt8(truncatingIfNeeded: value))
                rest = rest.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
