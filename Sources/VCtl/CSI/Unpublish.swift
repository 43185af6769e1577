import ArgumentParser
import CSIProto

extension CSICommand {
    /// `vctl csi unpublish ID [--node NODE]`: ControllerUnpublishVolume.
    struct Unpublish: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Unpublish (detach) a volume from a node, or from every node without --node.")

        @OptionGroup var client: CSIClientOptions

        @Argument(help: "The volume id.")
        var volumeID: String

        @Option(help: "The node id (default: every node).")
        var node: String?

        func run() throws {
            var request = Csi_V1_ControllerUnpublishVolumeRequest()
            request.volumeID = volumeID
            request.nodeID = node ?? ""
            let response: Csi_V1_ControllerUnpublishVolumeResponse = try client.call(
                "Controller", "ControllerUnpublishVolume", request)
            client.print(response) { _ in ["unpublished \(volumeID) from \(node ?? "every node")"] }
        }
    }
}
