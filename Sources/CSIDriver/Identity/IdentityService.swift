public import CSIProto
public import GRPCTransport
import SwiftProtobuf

/// Answers who the plugin is, what it offers, and whether its backends are ready.
public struct IdentityService: CSIIdentityService {
    private let isReady: @Sendable () async -> Bool

    /// - Parameter isReady: reports whether every backend this process serves is usable;
    ///   Probe answers `ready: false` until it does.
    public init(isReady: @escaping @Sendable () async -> Bool) {
        self.isReady = isReady
    }

    public func getPluginInfo(_ request: Csi_V1_GetPluginInfoRequest) async throws(RPCStatus)
        -> Csi_V1_GetPluginInfoResponse
    {
        var response = Csi_V1_GetPluginInfoResponse()
        response.name = DriverInfo.name
        response.vendorVersion = DriverInfo.version
        return response
    }

    public func getPluginCapabilities(_ request: Csi_V1_GetPluginCapabilitiesRequest) async throws(RPCStatus)
        -> Csi_V1_GetPluginCapabilitiesResponse
    {
        var response = Csi_V1_GetPluginCapabilitiesResponse()
        let services: [Csi_V1_PluginCapability.Service.TypeEnum] = [.controllerService, .volumeAccessibilityConstraints]
        response.capabilities = services.map { kind in
            var service = Csi_V1_PluginCapability.Service()
            service.type = kind
            var capability = Csi_V1_PluginCapability()
            capability.service = service
            return capability
        }
        // Quotas grow while the volume is mounted and in use (NodeExpandVolume).
        var expansion = Csi_V1_PluginCapability()
        expansion.volumeExpansion.type = .online
        response.capabilities.append(expansion)
        return response
    }

    public func probe(_ request: Csi_V1_ProbeRequest) async throws(RPCStatus) -> Csi_V1_ProbeResponse {
        var response = Csi_V1_ProbeResponse()
        response.ready.value = await isReady()
        return response
    }
}
