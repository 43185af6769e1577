//
// vineyard-csi: FUSEKit
//
// Unmounting and aborting without going through a session's descriptor.

import Glibc

enum Unmounter {
    private static let mntDetach: Int32 = 2  // MNT_DETACH
    private static let umountNoFollow: Int32 = 8  // UMOUNT_NOFOLLOW

    /// Lazily detaches the mount at `path`. Not mounted is success. With `expecting`, only the
    /// mount with that device is detached (nothing if another mount is on top now).
    static func detach(_ path: String, expecting device: MountTable.Device? = nil) throws(FUSEError) {
        if let device {
            guard MountTable.device(ofMountPoint: path) == device else { return }
        }
        if umount2(path, mntDetach | umountNoFollow) == 0 { return }
        let error = Errno.current
        switch error {
        case .invalid, .noEntry:
            return  // not a mount point (any more)
        case .notPermitted:
            try fusermount(["-u", "-z", "-q", path])
        default:
            throw FUSEError(code: .unmount, errno: error, message: "umount2(\(path), MNT_DETACH)")
        }
    }

    /// Runs `fusermount3` (setuid helper) for unprivileged unmounts.
    private static func fusermount(_ arguments: [String]) throws(FUSEError) {
        let candidates = ["/usr/bin/fusermount3", "/bin/fusermount3", "/usr/local/bin/fusermount3"]
        guard let tool = candidates.first(where: { Glibc.access($0, X_OK) == 0 }) else {
            throw FUSEError(code: .unmount, errno: .notPermitted, message: "not privileged and fusermount3 not found")
        }
        let argv = [tool] + arguments
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) }
        cArgs.append(nil)
        defer { for arg in cArgs { free(arg) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, tool, nil, nil, cArgs, environ)
        guard spawned == 0 else {
            throw FUSEError(code: .unmount, errno: Errno(rawValue: spawned), message: "cannot run \(tool)")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && Glibc.errno == EINTR {}
        // WIFEXITED && WEXITSTATUS == 0
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            throw FUSEError(code: .unmount, message: "\(argv.joined(separator: " ")) failed (status \(status))")
        }
    }

    /// Writes to `/sys/fs/fuse/connections/<minor>/abort` for the FUSE mount at `mountPoint`.
    static func abortConnection(mountPoint: String, device known: MountTable.Device? = nil) throws(FUSEError) {
        guard let device = known ?? MountTable.device(ofMountPoint: mountPoint) else {
            throw FUSEError(code: .unmount, errno: .noEntry, message: "\(mountPoint) is not a mount point")
        }
        let controlRoot = "/sys/fs/fuse/connections"
        let abortPath = "\(controlRoot)/\(device.minor)/abort"
        if Glibc.access(abortPath, F_OK) != 0 {
            // fusectl is not mounted everywhere (containers); mount it (needs CAP_SYS_ADMIN).
            if mount("fusectl", controlRoot, "fusectl", 0, nil) != 0, Glibc.errno != EBUSY {
                throw FUSEError(code: .unmount, errno: .current, message: "cannot mount fusectl at \(controlRoot)")
            }
        }
        let fd = open(abortPath, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw FUSEError(code: .unmount, errno: .current, message: "cannot open \(abortPath)")
        }
        defer { close(fd) }
        guard Glibc.write(fd, "1", 1) == 1 else {
            throw FUSEError(code: .unmount, errno: .current, message: "cannot write \(abortPath)")
        }
    }
}

/// Reads `/proc/self/mountinfo` without touching the mounts themselves (a stat of a hung FUSE
/// mount would block).
enum MountTable {
    struct Entry: Hashable, Sendable {
        var major: UInt32
        var minor: UInt32
        var mountPoint: String
        var fileSystemType: String
        var source: String
    }

    static func entries() -> [Entry] {
        guard let text = readFile("/proc/self/mountinfo") else { return [] }
        var result: [Entry] = []
        for line in text.split(separator: "\n") {
            // id parent major:minor root mountpoint options [optional...] - type source superoptions
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count >= 10, let dash = fields.firstIndex(of: "-"), dash + 2 < fields.count else { continue }
            let dev = fields[2].split(separator: ":")
            guard dev.count == 2, let major = UInt32(dev[0]), let minor = UInt32(dev[1]) else { continue }
            result.append(
                Entry(
                    major: major, minor: minor, mountPoint: unescape(fields[4]),
                    fileSystemType: unescape(fields[dash + 1]), source: unescape(fields[dash + 2])))
        }
        return result
    }

    struct Device: Hashable, Sendable {
        var major: UInt32
        var minor: UInt32
    }

    /// The device of the last (topmost) mount at `mountPoint`.
    static func device(ofMountPoint mountPoint: String) -> Device? {
        let path = canonical(mountPoint)
        guard let entry = entries().last(where: { $0.mountPoint == path }) else { return nil }
        return Device(major: entry.major, minor: entry.minor)
    }

    /// `realpath` of the parent plus the last component, so that the (possibly hung) mount
    /// itself is never resolved.
    static func canonical(_ path: String) -> String {
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

    /// Undoes mountinfo's octal escapes (`\040` for space, ...).
    static func unescape(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var bytes: [UInt8] = []
        let utf8 = Array(field.utf8)
        var i = 0
        while i < utf8.count {
            if utf8[i] == UInt8(ascii: "\\"), i + 3 < utf8.count {
                let digits = utf8[(i + 1)...(i + 3)]
                if digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }) {
                    let value = digits.reduce(0) { $0 * 8 + Int($1 - UInt8(ascii: "0")) }
                    bytes.append(UInt8(truncatingIfNeeded: value))
                    i += 4
                    continue
                }
            }
            bytes.append(utf8[i])
            i += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                return nil
            }
            if n == 0 { break }
            data.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: data, as: UTF8.self)
    }
}
