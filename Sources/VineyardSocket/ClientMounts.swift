// vineyard-csi: VineyardSocket
// ClientMounts.swift: where a connected process sees a volume, from its mountinfo.

import VineyardIPC
import Glibc

/// The mount points at which a process sees a volume, read from `/proc/<pid>/mountinfo`.
///
/// `vineyard.csi.write` names objects by the path the *client* sees (`/vineyard/x_train` in a
/// pod that mounts the volume at `/vineyard`). The socket's peer credentials give the
/// client's pid, and its mountinfo lists the volume's mounts with their mount points in the
/// client's own mount namespace and root, and the volume path each shows (`/` for the whole
/// volume, `/sub` for a `subPath` mount).
public enum ClientMounts {
    public struct Mount: Hashable, Sendable {
        /// Where the client sees the mount.
        public var mountPoint: String
        /// The volume path the mount shows, without slashes at either end (empty: the root).
        public var root: String
        /// Whether the mount is read-only (`ro` among its per-mount options).
        public var readOnly: Bool

        public init(mountPoint: String, root: String, readOnly: Bool = false) {
            self.mountPoint = mountPoint
            self.root = root
            self.readOnly = readOnly
        }
    }

    /// The mounts of `source` (e.g. `vineyard:<volumeID>`) that process `pid` sees; empty when
    /// the process is not visible (pid 0, another PID namespace) or its table is unreadable.
    public static func mounts(pid: Int32, source: String) -> [Mount] {
        guard pid > 0, let table = readFile("/proc/\(pid)/mountinfo") else { return [] }
        return mounts(mountinfo: table, source: source)
    }

    /// Parses mountinfo text: `id parent major:minor root mount-point options [optional…] - type source super-options`.
    public static func mounts(mountinfo: String, source: String) -> [Mount] {
        var result: [Mount] = []
        for line in mountinfo.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard let dash = fields.firstIndex(of: "-"), dash >= 6, fields.count > dash + 2,
                decodeOctalEscapes(fields[dash + 2]) == source
            else { continue }
            let root = decodeOctalEscapes(fields[3]).split(separator: "/").joined(separator: "/")
            let readOnly = fields[5].split(separator: ",").contains("ro")
            result.append(Mount(mountPoint: decodeOctalEscapes(fields[4]), root: root, readOnly: readOnly))
        }
        return result
    }

    /// mountinfo escapes space, tab, newline and backslash as `\ooo`.
    static func decodeOctalEscapes(_ field: Substring) -> String {
        var output: [UInt8] = []
        let bytes = Array(field.utf8)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\\"), index + 3 < bytes.count,
                let value = UInt8(String(decoding: bytes[(index + 1)...(index + 3)], as: UTF8.self), radix: 8)
            {
                output.append(value)
                index += 4
            } else {
                output.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    private static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
