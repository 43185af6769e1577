import CSIDriver
import FUSEKit
import Logging
import SharedMemoryStore
import StoreBackend
import VineyardSocket
import VolumeFS

/// The node's embedded shared-memory stores, one per vineyard cluster: ``VolumeFileSystem``
/// over the cluster's store, and a `vineyard.sock` that serves the store zero-copy.
struct EmbeddedStoreProvider: VolumeBackendProvider {
    let registry: StoreRegistry
    /// Read-only opens bypass the page cache (see ``VolumeFileSystem/directReads``).
    let directReads: Bool
    /// Mounts ask the kernel for FUSE passthrough (see ``VolumeFileSystem/fileServing``).
    let passthrough: Bool

    var survivesRestarts: Bool { BackendCapabilities.embedded.contains(.restartAdoption) }

    func isReady(serving volumes: [VolumeDescriptor]) -> Bool { true }

    func open(_ volume: VolumeDescriptor, survival: SurvivalFile?, withSocket: Bool) throws(VolumeHostError)
        -> BackendFileSystem
    {
        let store = try store(of: volume)
        if withSocket {
            // Before the file system opens, so the placeholder and the client configuration that
            // names the socket are counted with it.
            do {
                try VolumeFileSystem.ensureSocketPlaceholder(store: store, volumeID: volume.volumeID)
                try VolumeFileSystem.ensureVineyardConfig(store: store, volumeID: volume.volumeID)
            } catch {
                throw VolumeHostError(.failed, "cannot prepare the vineyard socket of volume \(volume.volumeID): \(error)")
            }
        }
        let fileSystem: VolumeFileSystem
        var resumption: VolumeFileSystem.Resumption?
        do {
            if let survival {
                (fileSystem, resumption) = try VolumeFileSystem.surviving(
                    store: store, volumeID: volume.volumeID, quotaBytes: volume.capacityBytes, readOnly: false,
                    stateFile: survival.path, resume: survival.resume)
            } else {
                fileSystem = try VolumeFileSystem(
                    store: store, volumeID: volume.volumeID, quotaBytes: volume.capacityBytes, readOnly: false)
            }
        } catch {
            throw VolumeHostError(.failed, "cannot open the file system of volume \(volume.volumeID): \(error)")
        }
        fileSystem.allowPassthrough(passthrough)
        var opened = Self.backendFileSystem(
            fileSystem, volume: volume, directReads: directReads, passthrough: passthrough)
        if let resumption {
            opened.resumed = [
                "inodes": "\(resumption.inodes)", "writers": "\(resumption.writers)",
                "lostWriters": "\(resumption.lostWriters)",
            ]
        }
        return opened
    }

    private static func backendFileSystem(
        _ fileSystem: VolumeFileSystem, volume: VolumeDescriptor, directReads: Bool, passthrough: Bool
    ) -> BackendFileSystem {
        let volumeID = volume.volumeID
        var opened = BackendFileSystem(
            fileSystem: fileSystem,
            mountOptions: VolumeFileSystem.recommendedMountOptions(
                volumeID: volumeID, readOnly: false, directReads: directReads,
                backend: fileSystem.backendCapabilities, passthrough: passthrough),
            capacityBytes: { volume.capacityBytes },
            resize: { (capacityBytes: Int) throws(VolumeHostError) in
                do { try fileSystem.resize(quotaBytes: capacityBytes) } catch {
                    throw VolumeHostError(.failed, "cannot resize volume \(volumeID): \(error)")
                }
            },
            removeStateFile: { fileSystem.removeStateFile() })
        opened.fileServing = { fileSystem.fileServing.description }
        return opened
    }

    func socketServer(for volume: VolumeDescriptor, scope: VolumeScope, socketPath: String, advertisedPath: String)
        throws(VolumeHostError) -> VineyardSocketServer
    {
        let store = try store(of: volume)
        let volumeID = volume.volumeID
        do {
            return try VineyardSocketServer(
                backend: EmbeddedBackend(store: store), scope: scope, socketPath: socketPath, advertisedSocket: advertisedPath,
                namesChanged: { VolumeFileSystem.refreshUsage(store: store, volumeID: volumeID) })
        } catch {
            throw VolumeHostError(.failed, "cannot serve the vineyard socket of volume \(volumeID): \(error)")
        }
    }

    func statistics(of volume: VolumeDescriptor, mountedCapacity: Int?) -> VolumeStatistics? {
        guard let store = try? store(of: volume) else { return nil }
        let used = VolumeFileSystem.usage(store: store, volumeID: volume.volumeID)
        let storeUsage = store.usage
        let total = volume.capacityBytes > 0 ? min(volume.capacityBytes, storeUsage.capacity) : storeUsage.capacity
        let available = max(0, min(total - used.bytes, storeUsage.bytesAvailable))
        return VolumeStatistics(
            totalBytes: total, usedBytes: used.bytes, availableBytes: available, usedInodes: used.files + used.directories)
    }

    func purge(_ volume: VolumeDescriptor) throws(VolumeHostError) {
        let store = try store(of: volume)
        do {
            try VolumeFileSystem.purge(backend: EmbeddedBackend(store: store), volumeID: volume.volumeID)
        } catch {
            throw VolumeHostError(.failed, "cannot delete the objects of volume \(volume.volumeID): \(error)")
        }
    }

    func close() {}

    /// Removes the files of unsealed blobs that no resumed mount took back.
    func removeOrphanedBlobFiles() {
        for key in registry.openKeys {
            registry.openStore(namespace: key.namespace, name: key.name)?.removeOrphanedBlobFiles()
        }
    }

    func store(of volume: VolumeDescriptor) throws(VolumeHostError) -> ObjectStore {
        do {
            return try registry.store(namespace: volume.cluster.namespace, name: volume.cluster.name)
        } catch {
            throw VolumeHostError(.failed, "cannot open the store of vineyard cluster \(volume.cluster): \(error)")
        }
    }
}
