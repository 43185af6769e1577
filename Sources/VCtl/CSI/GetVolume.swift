import ArgumentParser
import CSIProto

extension CSICommand {
    /// `vctl csi get-volume ID`: ControllerGetVolume.
    struct GetVolume: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "get-volume", abstract: "Show one volume, its published nodes and its condition.")

        @OptionGroup var client: CSIClientOptions

        @Argument(help: "The volume id.")
        var volumeID: String

        func run() throws {
            var request = Csi_V1_ControllerGetVolumeRequest()
            request.volumeID = volumeID
            let response: Csi_V1_ControllerGetVolumeResponse = try client.call("Controller", "ControllerGetVolume", request)
            client.print(response) { response in
                VolumeSummary.lines(response.volume) + [
                    "published to: \(response.status.publishedNodeIds.joined(separator: ", "))",
                    "condition: \(response.status.volumeCondition.abnormal ? "abnormal" : "normal")"
                        + (response.status.volumeCondition.message.isEmpty ? "" : " (\(response.status.volumeCondition.message))"),
                ]
            }
        }
    }
}
