// vineyard-csi: VineyardSocket
// ClientMounts.swift: where a connected process sees a volume, from its mountinfo.

import POSIXCore

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
        guard pid > 0, let table = try? MountTable.read(process: pid) else { return [] }
        return mounts(in: table, source: source)
    }

    /// The mounts of `source` in mountinfo text (see ``MountTable``).
    public static func mounts(mountinfo: String, source: String) -> [Mount] {
        mounts(in: MountTable(parsing: mountinfo), source: source)
    }

    private static func mounts(in table: MountTable, source: String) -> [Mount] {
        table.entries.filter { $0.source == source }.map {
            Mount(mountPoint: $0.mountPoint, root: $0.root.split(separator: "/").joined(separator: "/"), readOnly: $0.isReadOnly)
        }
    }
}
