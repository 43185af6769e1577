import CSIDriver
import NodeHost
import CSIProto
import Foundation
import GRPCTransport
import Logging
import SharedMemoryStore
import Testing

/// Snapshots and clones through the in-process router over a real store: the trees share
/// objects, never bytes.
@Suite struct ControllerSnapshotTests {
    static let cluster = ClusterReference(namespace: "vineyard-system", name: "vineyardd-sample")

    func controller(_ directory: String, registry: StoreRegistry?) throws -> ControllerService {
        try ControllerService(
            configuration: ControllerConfiguration(
                nodeID: "node-a", stateDirectory: directory + "/state", storeCapacity: 64 << 20,
                defaultVolumeSize: 1 << 20, defaultCluster: Self.cluster),
            content: registry.map { EmbeddedVolumeContent(registry: $0) },
            logger: Logger(label: "test"))
    }

    static func registry(_ directory: String) -> StoreRegistry {
        StoreRegistry(
            rootDirectory: directory + "/shm",
            defaults: StoreConfiguration(directory: directory + "/shm", capacity: 64 << 20))
    }

    /// Seals `bytes` bytes under `name`, as the node plugin does for a file written through a mount.
    static func writeFile(_ store: ObjectStore, _ name: String, bytes: Int) throws -> ObjectID {
        let writer = try store.createBlob(expectedSize: bytes)
        try writer.append([UInt8](repeating: 7, count: bytes))
        return try store.seal(writer, name: name)
    }

    func createVolume(_ controller: ControllerService, _ name: String, from source: Csi_V1_VolumeContentSource? = nil)
        async throws -> Csi_V1_Volume
    {
        var request = Csi_V1_CreateVolumeRequest()
        request.name = name
        request.volumeCapabilities = [mountCapability()]
        if let source { request.volumeContentSource = source }
        return try await controller.createVolume(request).volume
    }

    @Test func withoutTheStoreSnapshotsAreNotOffered() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let controller = try controller(directory, registry: nil)
            let capabilities = try await controller.controllerGetCapabilities(.init()).capabilities.map(\.rpc.type)
            #expect(capabilities.contains(.expandVolume))
            #expect(!capabilities.contains(.createDeleteSnapshot) && !capabilities.contains(.cloneVolume))
            var request = Csi_V1_CreateSnapshotRequest()
            request.name = "s"
            request.sourceVolumeID = "vol-1"
            do {
                _ = try await controller.createSnapshot(request)
                Issue.record("CreateSnapshot succeeded without a store")
            } catch let status as RPCStatus {
                #expect(status.code == .unimplemented)
            }
        }
    }

    @Test func snapshotAndRestoreShareTheObjects() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let registry = Self.registry(directory)
            let controller = try controller(directory, registry: registry)
            let volume = try await createVolume(controller, "pvc-1")
            let store = try registry.store(namespace: Self.cluster.namespace, name: Self.cluster.name)
            let emptyUsage = store.usage.bytesUsed
            let file = try Self.writeFile(store, volume.volumeID + "/data.bin", bytes: 1000)

            var request = Csi_V1_CreateSnapshotRequest()
            request.name = "snap-1"
            request.sourceVolumeID = volume.volumeID
            let snapshot = try await controller.createSnapshot(request).snapshot
            #expect(snapshot.sizeBytes == 1000 && snapshot.readyToUse)
            #expect(store.name(snapshot.snapshotID + "/data.bin") == file)

            var source = Csi_V1_VolumeContentSource()
            source.snapshot.snapshotID = snapshot.snapshotID
            let restored = try await createVolume(controller, "pvc-2", from: source)
            #expect(store.name(restored.volumeID + "/data.bin") == file)
            let usedByOneFile = store.usage.bytesUsed
            #expect(usedByOneFile > emptyUsage && usedByOneFile - emptyUsage < 2000)  // one copy of the bytes

            // Deleting the source and the snapshot keeps the object for the restored volume.
            var delete = Csi_V1_DeleteVolumeRequest()
            delete.volumeID = volume.volumeID
            _ = try await controller.deleteVolume(delete)
            var deleteSnapshot = Csi_V1_DeleteSnapshotRequest()
            deleteSnapshot.snapshotID = snapshot.snapshotID
            _ = try await controller.deleteSnapshot(deleteSnapshot)
            #expect(store.object(file) != nil)
            delete.volumeID = restored.volumeID
            _ = try await controller.deleteVolume(delete)
            #expect(store.object(file) == nil)
            #expect(store.usage.bytesUsed == emptyUsage)
        }
    }

    @Test func aRestartRemovesSnapshotTreesNoRecordNames() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let registry = Self.registry(directory)
            let first = try controller(directory, registry: registry)
            let volume = try await createVolume(first, "pvc-1")
            let store = try registry.store(namespace: Self.cluster.namespace, name: Self.cluster.name)
            let file = try Self.writeFile(store, volume.volumeID + "/data.bin", bytes: 1000)
            var request = Csi_V1_CreateSnapshotRequest()
            request.name = "kept"
            request.sourceVolumeID = volume.volumeID
            let kept = try await first.createSnapshot(request).snapshot
            // What a crash between CreateSnapshot's copy and its record leaves behind.
            let orphan = "snap-" + String(repeating: "ab", count: 16)
            _ = try store.copyNames(withPrefix: volume.volumeID + "/", to: orphan + "/")
            #expect(store.name(orphan + "/data.bin") == file)

            _ = try controller(directory, registry: registry)
            #expect(store.name(orphan + "/data.bin") == nil)
            #expect(store.name(kept.snapshotID + "/data.bin") == file)
            #expect(store.name(volume.volumeID + "/data.bin") == file)
            #expect(store.object(file) != nil)
        }
    }
}
