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
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a: stable across runs, unlike Hasher
        for byte in targetPath.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        let digits = String(hash, radix: 16)
        return "\(volumeID)-\(String(repeating: "0", count: 16 - digits.count))\(digits)"
    }
}
