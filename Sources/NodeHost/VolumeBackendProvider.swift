import CSIDriver
import FUSEKit
import Logging
import VineyardSocket

/// What differs between the stores a volume can live in; everything else about serving a
/// volume is ``NodeVolumeHost``'s, once.
protocol VolumeBackendProvider: Sendable {
    /// Whether its file systems can outlive this process (they keep their inode table in a
    /// file), so their mounts can be handed over across restarts: the backend's
    /// `.restartAdoption` capability.
    var survivesRestarts: Bool { get }

    /// Whether the backend of the volumes it serves now answers.
    func isReady(serving volumes: [VolumeDescriptor]) -> Bool

    /// Opens `volume`'s file system, ready to mount.
    ///
    /// - Parameters:
    ///   - survival: where a file system that outlives this process keeps its inode table;
    ///     `nil` for one that ends with its mount.
    ///   - withSocket: the volume gets a `vineyard.sock`: its placeholder must be in the tree.
    func open(_ volume: VolumeDescriptor, survival: SurvivalFile?, withSocket: Bool) throws(VolumeHostError)
        -> BackendFileSystem

    /// The server of the volume's `vineyard.sock`, scoped to the volume.
    func socketServer(for volume: VolumeDescriptor, scope: VolumeScope, socketPath: String, advertisedPath: String)
        throws(VolumeHostError) -> VineyardSocketServer

    /// Usage of the volume; `mountedCapacity` is the largest quota its mounts enforce now.
    func statistics(of volume: VolumeDescriptor, mountedCapacity: Int?) -> VolumeStatistics?

    /// Removes every object of the volume.
    func purge(_ volume: VolumeDescriptor) throws(VolumeHostError)

    /// Releases connections at shutdown.
    func close()
}

/// Where a surviving file system keeps its inode table, and whether to take it back.
struct SurvivalFile: Sendable {
    var path: String
    var resume: Bool
}

/// A volume's file system as its backend opened it.
struct BackendFileSystem: Sendable {
    let fileSystem: any FileSystem
    let mountOptions: MountOptions
    /// The quota it enforces now.
    let capacityBytes: @Sendable () -> Int
    /// Applies a new quota (expansion).
    let resize: @Sendable (Int) throws(VolumeHostError) -> Void
    /// Removes the inode-table file of a surviving file system whose mount ended for good.
    let removeStateFile: @Sendable () -> Void
    /// What a file system reopened from its inode table took back, for the log.
    var resumed: Logger.Metadata = [:]
    /// Who serves the bytes of its files (``VolumeFileSystem/fileServing``); `nil` when the
    /// backend has no choice.
    var fileServing: @Sendable () -> String? = { nil }
}

extension VolumeStatistics {
    /// Free inodes reported by NodeGetVolumeStats: files cost metadata, not inode slots.
    static let reportedFreeInodes = 1 << 20

    /// Statistics with the fixed inode headroom: no store has an inode table to run out of.
    init(totalBytes: Int, usedBytes: Int, availableBytes: Int, usedInodes: Int) {
        self.init(
            totalBytes: totalBytes, usedBytes: usedBytes, availableBytes: availableBytes,
            totalInodes: usedInodes + Self.reportedFreeInodes, usedInodes: usedInodes,
            availableInodes: Self.reportedFreeInodes)
    }
}
