//
// vineyard-csi: VolumeFS
//
// VolumeFileSystem+DirectoryTimes.swift: a directory's times follow its entries.

import FUSEKit
import SharedMemoryStore

extension VolumeFileSystem {
    /// Sets the modification and change times of the directory holding `path` to now, as an
    /// entry was added, removed or renamed there (POSIX: create, mkdir, mknod, link, symlink,
    /// unlink, rmdir and rename mark their directories). A directory without a marker object
    /// has no times to keep. Best effort: the change itself already succeeded.
    func touchParent(of path: String) {
        let parent = path.utf8.lastIndex(of: UInt8(ascii: "/")).map { String(path[..<$0]) } ?? ""
        guard let id = store.name(naming.directoryName(parent)) else { return }
        let now = Timespec.now
        try? store.updateMeta(id) { meta in
            var posix = PosixAttributes(meta: meta, defaultPermissions: NodeMetadata.defaultDirectoryPermissions)
            posix.modificationTime = now
            posix.changeTime = now
            posix.encode(into: &meta.fields)
        }
    }
}
