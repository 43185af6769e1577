//
// vineyard-csi: VolumeFS
//
// VolumeNaming.swift: how a volume's paths map to store names.

import SharedMemoryStore

/// The store names of one volume (see the VolumeFS documentation for the scheme):
///
/// - the volume's root directory is `"<volumeID>/"`;
/// - a regular file (or symbolic link) at `a/b.pkl` is `"<volumeID>/a/b.pkl"`;
/// - a directory at `a/c` is `"<volumeID>/a/c/"` (trailing slash).
///
/// Paths are relative to the volume root, without leading or trailing slashes; the root is
/// the empty path. Because a directory's name ends in `/`, the store's delimiter listing of
/// `"<volumeID>/a/"` yields each subdirectory exactly once, whether it has a marker object or
/// only names below it.
struct VolumeNaming: Sendable {
    let volumeID: String
    /// `"<volumeID>/"`: the prefix of every name of the volume, and the root's marker name.
    let rootPrefix: String

    init(volumeID: String) {
        self.volumeID = volumeID
        self.rootPrefix = volumeID + "/"
    }

    /// The name of the file (or symbolic link) at `path` (non-empty).
    func objectName(_ path: String) -> String {
        rootPrefix + path
    }

    /// The name of the directory at `path`, which is also the prefix of everything in it.
    func directoryName(_ path: String) -> String {
        path.isEmpty ? rootPrefix : rootPrefix + path + "/"
    }

    /// `parent/name`, or `name` in the root.
    static func join(_ parent: String, _ name: FileName) -> String {
        parent.isEmpty ? name.string : parent + "/" + name.string
    }

    /// Whether a store name of `byteCount` bytes is acceptable.
    static func fits(_ name: String) -> Bool {
        name.utf8.count <= StoreLimits.maximumNameLength
    }
}
