import ArgumentParser
import CSIModel
import CSIProto

extension CSICommand {
    /// `vctl csi create-volume NAME`: CreateVolume, as csi-provisioner would call it.
    struct CreateVolume: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create-volume", abstract: "Create a volume (idempotent by name).")

        @OptionGroup var client: CSIClientOptions
        @OptionGroup var capability: VolumeCapabilityOptions

        @Argument(help: "The volume's name (the CO's name, e.g. pvc-<uid>).")
        var name: String

        @Option(help: "Requested capacity, e.g. 1Gi (default: the driver's default volume size).")
        var size: String?

        @Option(help: "Vineyard cluster namespace/name (the StorageClass parameters).")
        var cluster: String?

        @Option(help: "Backend: auto, embedded or vineyardd (the StorageClass parameter k8s.v6d.io/vineyard/backend; default: the driver's --backend).")
        var backend: String?

        @Option(help: "Pin the volume to this node (topology requirement).")
        var node: String?

        @Option(name: .customLong("parameter"), help: "Extra StorageClass parameter key=value (repeatable).")
        var parameters: [String] = []

        func validate() throws {
            if let size, ByteCount.parse(size) == nil { throw ValidationError("--size \(size) is not a size such as 1Gi") }
            if let cluster, ClusterReference(parsing: cluster) == nil {
                throw ValidationError("--cluster \(cluster) is not namespace/name with Kubernetes names")
            }
            if let backend, BackendSelection.Mode(rawValue: backend) == nil {
                throw ValidationError("--backend \(backend) is not one of auto, embedded, vineyardd")
            }
            for parameter in parameters where !parameter.contains("=") {
                throw ValidationError("--parameter \(parameter) is not key=value")
            }
        }

        func run() throws {
            var request = Csi_V1_CreateVolumeRequest()
            request.name = name
            request.volumeCapabilities = [capability.capability]
            if let size { request.capacityRange.requiredBytes = Int64(ByteCount.parse(size)!) }
            if let cluster = cluster.flatMap(ClusterReference.init(parsing:)) {
                request.parameters[VolumeParameterKey.vineyardNamespace] = cluster.namespace
                request.parameters[VolumeParameterKey.vineyardName] = cluster.name
            }
            if let backend { request.parameters[VolumeParameterKey.backend] = backend }
            for parameter in parameters {
                let pair = parameter.split(separator: "=", maxSplits: 1)
                request.parameters[String(pair[0])] = pair.count > 1 ? String(pair[1]) : ""
            }
            if let node {
                var topology = Csi_V1_Topology()
                topology.segments = [DriverInfo.nodeTopologyKey: node]
                request.accessibilityRequirements.requisite = [topology]
                request.accessibilityRequirements.preferred = [topology]
            }
            let response: Csi_V1_CreateVolumeResponse = try client.call("Controller", "CreateVolume", request)
            client.print(response) { response in VolumeSummary.lines(response.volume) }
        }
    }
}

/// Human-readable lines for a volume.
enum VolumeSummary {
    static func lines(_ volume: Csi_V1_Volume) -> [String] {
        ["volume: \(volume.volumeID)", "capacity: \(volume.capacityBytes)", "backend: \(backend(volume))"]
            + volume.volumeContext.sorted { $0.key < $1.key }.map { "context: \($0.key)=\($0.value)" }
            + volume.accessibleTopology.flatMap { topology in
                topology.segments.sorted { $0.key < $1.key }.map { "topology: \($0.key)=\($0.value)" }
            }
    }

    /// The backend the volume context names (volumes of drivers before cluster mode: embedded).
    static func backend(_ volume: Csi_V1_Volume) -> String {
        volume.volumeContext[VolumeParameterKey.backend] ?? VolumeBackend.embedded.rawValue
    }
}
