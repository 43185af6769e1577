import CSIDriver
import CSIProto
import Foundation
import Glibc
import GRPCTransport
import Logging
import Testing

/// `--backend` and `--vineyard-socket-root`: which store a new volume of a cluster uses.
@Suite struct BackendSelectionTests {
    static let cluster = ClusterReference(namespace: "vineyard-system", name: "vineyardd-sample")

    @Test func socketPathIsTheOperatorsLayout() {
        let selection = BackendSelection(mode: .auto, socketRoot: "/var/run/vineyard-kubernetes")
        #expect(selection.socketPath(for: Self.cluster) == "/var/run/vineyard-kubernetes/vineyard-system/vineyardd-sample/vineyard.sock")
        #expect(BackendSelection(mode: .auto).socketRoot == "/var/run/vineyard-kubernetes")
    }

    @Test func autoFollowsTheSocketAndFlagsForceEither() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("backend-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let auto = BackendSelection(mode: .auto, socketRoot: root)
        #expect(auto.choose(for: Self.cluster) == .embedded)
        #expect(BackendSelection(mode: .vineyardd, socketRoot: root).choose(for: Self.cluster) == .vineyardd)

        // A regular file where the socket should be is not a deployment.
        let path = auto.socketPath(for: Self.cluster)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        #expect(auto.choose(for: Self.cluster) == .embedded)
        try FileManager.default.removeItem(atPath: path)

        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0)
        #expect(auto.choose(for: Self.cluster) == .vineyardd)
        #expect(auto.choose(for: Self.cluster, requested: .embedded) == .embedded)
        #expect(BackendSelection(mode: .embedded, socketRoot: root).choose(for: Self.cluster) == .embedded)
    }

    @Test func vineyarddVolumesAreNotPinnedAndEmbeddedOnesAre() async throws {
        try await withTemporaryDirectoryAsync { directory in
            let controller = try ControllerService(
                configuration: ControllerConfiguration(
                    nodeID: "node-a", stateDirectory: directory, storeCapacity: 4 << 30, defaultVolumeSize: 1 << 30,
                    defaultCluster: Self.cluster, backendSelection: BackendSelection(mode: .vineyardd, socketRoot: directory)),
                logger: Logger(label: "test"))
            var request = Csi_V1_CreateVolumeRequest()
            request.name = "pvc-cluster"
            request.volumeCapabilities = [mountCapability()]
            var pinned = Csi_V1_Topology()
            pinned.segments = [DriverInfo.nodeTopologyKey: "node-a"]
            request.accessibilityRequirements.requisite = [pinned]
            let cluster = try await controller.createVolume(request).volume
            #expect(cluster.volumeContext[VolumeParameterKey.backend] == "vineyardd")
            #expect(cluster.accessibleTopology.isEmpty)

            request.name = "pvc-embedded"
            request.parameters = [VolumeParameterKey.backend: "embedded"]
            let embedded = try await controller.createVolume(request).volume
            #expect(embedded.volumeContext[VolumeParameterKey.backend] == "embedded")
            #expect(embedded.accessibleTopology.map(\.segments) == [[DriverInfo.nodeTopologyKey: "node-a"]])

            request.name = "pvc-bad"
            request.parameters = [VolumeParameterKey.backend: "nfs"]
            await #expect(throws: RPCStatus.self) { try await controller.createVolume(request) }
        }
    }
}
