public import CSIProto
public import GRPCTransport

/// The CSI Identity service: who the plugin is and whether it is ready.
public protocol CSIIdentityService: Sendable {
    func getPluginInfo(_ request: Csi_V1_GetPluginInfoRequest) async throws(RPCStatus) -> Csi_V1_GetPluginInfoResponse
    func getPluginCapabilities(_ request: Csi_V1_GetPluginCapabilitiesRequest) async throws(RPCStatus)
        -> Csi_V1_GetPluginCapabilitiesResponse
    func probe(_ request: Csi_V1_ProbeRequest) async throws(RPCStatus) -> Csi_V1_ProbeResponse
}

/// The CSI Controller service: volume lifecycle independent of any node.
///
/// RPCs that are not listed here answer UNIMPLEMENTED and are not advertised.
public protocol CSIControllerService: Sendable {
    func createVolume(_ request: Csi_V1_CreateVolumeRequest) async throws(RPCStatus) -> Csi_V1_CreateVolumeResponse
    func deleteVolume(_ request: Csi_V1_DeleteVolumeRequest) async throws(RPCStatus) -> Csi_V1_DeleteVolumeResponse
    func controllerPublishVolume(_ request: Csi_V1_ControllerPublishVolumeRequest) async throws(RPCStatus)
        -> Csi_V1_ControllerPublishVolumeResponse
    func controllerUnpublishVolume(_ request: Csi_V1_ControllerUnpublishVolumeRequest) async throws(RPCStatus)
        -> Csi_V1_ControllerUnpublishVolumeResponse
    func validateVolumeCapabilities(_ request: Csi_V1_ValidateVolumeCapabilitiesRequest) async throws(RPCStatus)
        -> Csi_V1_ValidateVolumeCapabilitiesResponse
    func listVolumes(_ request: Csi_V1_ListVolumesRequest) async throws(RPCStatus) -> Csi_V1_ListVolumesResponse
    func getCapacity(_ request: Csi_V1_GetCapacityRequest) async throws(RPCStatus) -> Csi_V1_GetCapacityResponse
    func controllerGetCapabilities(_ request: Csi_V1_ControllerGetCapabilitiesRequest) async throws(RPCStatus)
        -> Csi_V1_ControllerGetCapabilitiesResponse
    func controllerGetVolume(_ request: Csi_V1_ControllerGetVolumeRequest) async throws(RPCStatus)
        -> Csi_V1_ControllerGetVolumeResponse
    func createSnapshot(_ request: Csi_V1_CreateSnapshotRequest) async throws(RPCStatus) -> Csi_V1_CreateSnapshotResponse
    func deleteSnapshot(_ request: Csi_V1_DeleteSnapshotRequest) async throws(RPCStatus) -> Csi_V1_DeleteSnapshotResponse
    func listSnapshots(_ request: Csi_V1_ListSnapshotsRequest) async throws(RPCStatus) -> Csi_V1_ListSnapshotsResponse
    func getSnapshot(_ request: Csi_V1_GetSnapshotRequest) async throws(RPCStatus) -> Csi_V1_GetSnapshotResponse
    func controllerExpandVolume(_ request: Csi_V1_ControllerExpandVolumeRequest) async throws(RPCStatus)
        -> Csi_V1_ControllerExpandVolumeResponse
}

/// The CSI Node service: making a volume usable on the node that runs it.
public protocol CSINodeService: Sendable {
    func nodeStageVolume(_ request: Csi_V1_NodeStageVolumeRequest) async throws(RPCStatus)
        -> Csi_V1_NodeStageVolumeResponse
    func nodeUnstageVolume(_ request: Csi_V1_NodeUnstageVolumeRequest) async throws(RPCStatus)
        -> Csi_V1_NodeUnstageVolumeResponse
    func nodePublishVolume(_ request: Csi_V1_NodePublishVolumeRequest) async throws(RPCStatus)
        -> Csi_V1_NodePublishVolumeResponse
    func nodeUnpublishVolume(_ request: Csi_V1_NodeUnpublishVolumeRequest) async throws(RPCStatus)
        -> Csi_V1_NodeUnpublishVolumeResponse
    func nodeGetVolumeStats(_ request: Csi_V1_NodeGetVolumeStatsRequest) async throws(RPCStatus)
        -> Csi_V1_NodeGetVolumeStatsResponse
    func nodeGetCapabilities(_ request: Csi_V1_NodeGetCapabilitiesRequest) async throws(RPCStatus)
        -> Csi_V1_NodeGetCapabilitiesResponse
    func nodeGetInfo(_ request: Csi_V1_NodeGetInfoRequest) async throws(RPCStatus) -> Csi_V1_NodeGetInfoResponse
    func nodeExpandVolume(_ request: Csi_V1_NodeExpandVolumeRequest) async throws(RPCStatus)
        -> Csi_V1_NodeExpandVolumeResponse
}
