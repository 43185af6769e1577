//
// vineyard-csi: FUSEKit
//

import POSIXCore

extension FUSEDevice {
    /// Whether a FUSE file system (type `fuse` or `fuse.*`) is mounted exactly at `path`,
    /// from the mount table (the mount itself is not touched, so a hung one does not block).
    public static func fuseMountExists(at path: String) -> Bool {
        guard let entry = MountTable.visibleMount(at: path) else { return false }
        return entry.fileSystemType == "fuse" || entry.fileSystemType.hasPrefix("fuse.")
    }
}
