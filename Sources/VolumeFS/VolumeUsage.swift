//
// vineyard-csi: VolumeFS
//
// VolumeUsage.swift: what a volume holds.

/// The contents of a volume, as counted for statistics and quotas.
public struct VolumeUsage: Sendable, Equatable, Hashable {
    /// Bytes in the volume's files (their logical sizes; a file being rewritten counts with
    /// the size of its new version).
    public var bytes: Int
    /// Regular files and symbolic links.
    public var files: Int
    /// Directories with a marker object, not counting the volume's root.
    public var directories: Int

    /// Creates a usage value.
    ///
    /// - Parameters:
    ///   - bytes: bytes in files.
    ///   - files: regular files and symbolic links.
    ///   - directories: directories other than the root.
    public init(bytes: Int, files: Int, directories: Int) {
        self.bytes = bytes
        self.files = files
        self.directories = directories
    }
}
