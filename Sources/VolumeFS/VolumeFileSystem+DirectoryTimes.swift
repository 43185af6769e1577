//
// vineyard-csi: VolumeFS
//
// VolumeFileSystem+DirectoryTimes.swift: a directory's times follow its entries.

import FUSEKit
import StoreBackend
import VineyardObjects

extension VolumeFileSystem {
    /// How recent a directory's times may be and still stand for a change made now: entries
    /// created or removed in a burst cost one metadata record per directory and window
    /// instead of one each. Well below the kernel's one-second attribute cache and the
    /// one-second steps of `make`-style comparisons.
    static let directoryTimeWindow: Int64 = 10_000_000

    /// Sets the modification and change times of the directory holding `path` to now, as an
    /// entry was added, removed or renamed there (POSIX: create, mkdir, mknod, link, symlink,
    /// unlink, rmdir and rename mark their directories), unless they are already within
    /// ``directoryTimeWindow`` of now. A directory without a marker object has no times to
    /// keep, nor has a backend where an edit is a new object (``BackendCapabilities/inPlaceMetadata``).
    /// Best effort: the change itself already succeeded.
    func touchParent(of path: String) {
        guard backend.capabilities.contains(.inPlaceMetadata) else { return }
        let parent = path.utf8.lastIndex(of: UInt8(ascii: "/")).map { String(path[..<$0]) } ?? ""
        let name = naming.directoryName(parent)
        guard let id = (try? backend.lookUp(name)) ?? nil, let current = (try? backend.meta(id)) ?? nil else { return }
        let now = Timespec.now
        let recorded = PosixAttributes(meta: current, defaultPermissions: NodeMetadata.defaultDirectoryPermissions)
        if Self.nanoseconds(from: recorded.modificationTime, to: now) < Self.directoryTimeWindow,
            Self.nanoseconds(from: recorded.changeTime, to: now) < Self.directoryTimeWindow
        {
            return
        }
        try? backend.updateMeta(id, name: name) { meta in
            var posix = PosixAttributes(meta: meta, defaultPermissions: NodeMetadata.defaultDirectoryPermissions)
            posix.modificationTime = now
            posix.changeTime = now
            posix.encode(into: &meta.fields)
        }
    }

    /// Nanoseconds from `start` to `end`; negative when `end` is earlier.
    static func nanoseconds(from start: Timespec, to end: Timespec) -> Int64 {
        (end.seconds &- start.seconds) &* 1_000_000_000 &+ (end.nanoseconds &- start.nanoseconds)
    }
}
