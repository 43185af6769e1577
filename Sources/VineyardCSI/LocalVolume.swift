import CSIDriver
import CSIProto
import FoundationEssentials
import Glibc
import GRPCTransport
import SwiftProtobuf

/// Local mode: one volume published on a local directory through the driver's own CSI
/// services, in the order kubelet would call them (CreateVolume, NodeStage, NodePublish).
struct LocalVolume: Sendable {
    static let volumeName = "local"

    let router: CSIRouter
    let nodeID: String
    let stateDirectory: String
    let target: String

    init(router: CSIRouter, nodeID: String, stateDirectory: String, target: String) {
        self.router = router
        self.nodeID = nodeID
        self.stateDirectory = stateDirectory
        self.target = URL(fileURLWithPath: target).standardizedFileURL.path
    }

    private var stagingPath: String { "\(URL(fileURLWithPath: stateDirectory).standardizedFileURL.path)/local-staging" }

    func publish() async throws {
        var create = Csi_V1_CreateVolumeRequest()
        create.name = Self.volumeName
        create.volumeCapabilities = [Self.capability]
        let volume: Csi_V1_CreateVolumeResponse = try await call("Controller", "CreateVolume", create)

        var stage = Csi_V1_NodeStageVolumeRequest()
        stage.volumeID = volume.volume.volumeID
        stage.stagingTargetPath = stagingPath
        stage.volumeCapability = Self.capability
        stage.volumeContext = volume.volume.volumeContext
        let _: Csi_V1_NodeStageVolumeResponse = try await call("Node", "NodeStageVolume", stage)

        var publish = Csi_V1_NodePublishVolumeRequest()
        publish.volumeID = volume.volume.volumeID
        publish.stagingTargetPath = stagingPath
        publish.targetPath = target
        publish.volumeCapability = Self.capability
        publish.volumeContext = volume.volume.volumeContext
        let _: Csi_V1_NodePublishVolumeResponse = try await call("Node", "NodePublishVolume", publish)
    }

    func unpublish() async throws {
        var create = Csi_V1_CreateVolumeRequest()
        create.name = Self.volumeName
        create.volumeCapabilities = [Self.capability]
        let volume: Csi_V1_CreateVolumeResponse = try await call("Controller", "CreateVolume", create)

        var unpublish = Csi_V1_NodeUnpublishVolumeRequest()
        unpublish.volumeID = volume.volume.volumeID
        unpublish.targetPath = target
        let _: Csi_V1_NodeUnpublishVolumeResponse = try await call("Node", "NodeUnpublishVolume", unpublish)

        var unstage = Csi_V1_NodeUnstageVolumeRequest()
        unstage.volumeID = volume.volume.volumeID
        unstage.stagingTargetPath = stagingPath
        let _: Csi_V1_NodeUnstageVolumeResponse = try await call("Node", "NodeUnstageVolume", unstage)
    }

    private static var capability: Csi_V1_VolumeCapability {
        var capability = Csi_V1_VolumeCapability()
        capability.mount = Csi_V1_VolumeCapability.MountVolume()
        capability.accessMode.mode = .singleNodeMultiWriter
        return capability
    }

    private func call<Response: SwiftProtobuf.Message>(
        _ service: String, _ method: String, _ request: some SwiftProtobuf.Message
    ) async throws -> Response {
        let request = UnaryRequest(method: "/csi.v1.\(service)/\(method)", payload: try request.serializedBytes())
        switch await router.handle(request) {
        case .success(let bytes): return try Response(serializedBytes: bytes)
        case .failure(let status): throw LocalVolumeError(method: method, status: status)
        }
    }
}

struct LocalVolumeError: Error, CustomStringConvertible {
    var method: String
    var status: RPCStatus

    var description: String { "local volume: \(method): \(status.code): \(status.message)" }
}
