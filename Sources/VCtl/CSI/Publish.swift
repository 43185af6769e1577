import ArgumentParser
import CSIProto

extension CSICommand {
    /// `vctl csi publish ID --node NODE`: ControllerPublishVolume, as csi-attacher would call it.
    struct Publish: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Publish (attach) a volume to a node.")

        @OptionGroup var client: CSIClientOptions
        @OptionGroup var capability: VolumeCapabilityOptions

        @Argument(help: "The volume id.")
        var volumeID: String

        @Option(help: "The node id to publish to.")
        var node: String

        @Flag(help: "Publish read-only.")
        var readonly = false

        func run() throws {
            var request = Csi_V1_ControllerPublishVolumeRequest()
            request.volumeID = volumeID
            request.nodeID = node
            request.readonly = readonly
            request.volumeCapability = capability.capability
            let response: Csi_V1_ControllerPublishVolumeResponse = try client.call(
                "Controller", "ControllerPublishVolume", request)
            client.print(response) { _ in ["published \(volumeID) to \(node)\(readonly ? " (read-only)" : "")"] }
        }
    }
}
