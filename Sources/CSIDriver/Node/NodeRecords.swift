import POSIXCore

/// A volume staged on this node: one file-system session at `stagingPath`.
struct StagedVolumeRecord: DurableRecord, Equatable {
    var volume: VolumeDescriptor
    var stagingPath: String
    var key: String { volume.volumeID }
}

/// A target path a volume is published at: a bind mount of its staging path, or for an
/// ephemeral volume its own file-system session.
struct PublishedTargetRecord: DurableRecord, Equatable {
    var volume: VolumeDescriptor
    var targetPath: String
    /// nil for ephemeral volumes, which are served at the target directly.
    var stagingPath: String?
    var readOnly: Bool
    /// The capability's `mount_flags`, applied to the bind mount (re-applied after a restart).
    var mountFlags: [String] = []

    var bindFlags: BindMountFlags {
        var flags = (try? BindMountFlags.parse(mountFlags).get()) ?? []
        if readOnly { flags.insert(.readOnly) }
        return flags
    }

    /// One file per target; the path hashed so the key is a safe file name.
    var key: String { Self.key(volumeID: volume.volumeID, targetPath: targetPath) }

    static func key(volumeID: String, targetPath: String) -> String {
        "\(volumeID)-\(PathHash(targetPath))"
    }
}
