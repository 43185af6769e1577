import ArgumentParser
import CSIModel
import CSIProto

extension CSICommand {
    /// `vctl csi capacity`: GetCapacity for a cluster, optionally on one node.
    struct Capacity: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show how many bytes can still be provisioned.")

        @OptionGroup var client: CSIClientOptions

        @Option(help: "Vineyard cluster namespace/name (default: the driver's default cluster).")
        var cluster: String?

        @Option(help: "Node whose embedded store to ask about (default: unpinned volumes).")
        var node: String?

        func validate() throws {
            if let cluster, ClusterReference(parsing: cluster) == nil {
                throw ValidationError("--cluster \(cluster) is not namespace/name with Kubernetes names")
            }
        }

        func run() throws {
            var request = Csi_V1_GetCapacityRequest()
            if let cluster = cluster.flatMap(ClusterReference.init(parsing:)) {
                request.parameters = [
                    VolumeParameterKey.vineyardNamespace: cluster.namespace, VolumeParameterKey.vineyardName: cluster.name,
                ]
            }
            if let node { request.accessibleTopology.segments = [DriverInfo.nodeTopologyKey: node] }
            let response: Csi_V1_GetCapacityResponse = try client.call("Controller", "GetCapacity", request)
            client.print(response) { response in
                ["available: \(response.availableCapacity) bytes (\(ByteCount.format(Int(response.availableCapacity))))"]
            }
        }
    }
}
