import ArgumentParser
import CSIProto

extension CSICommand {
    /// `vctl csi delete-volume ID`: DeleteVolume (succeeds for a volume that is already gone).
    struct DeleteVolume: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "delete-volume", abstract: "Delete a volume (idempotent).")

        @OptionGroup var client: CSIClientOptions

        @Argument(help: "The volume id.")
        var volumeID: String

        func run() throws {
            var request = Csi_V1_DeleteVolumeRequest()
            request.volumeID = volumeID
            let response: Csi_V1_DeleteVolumeResponse = try client.call("Controller", "DeleteVolume", request)
            client.print(response) { _ in ["deleted \(volumeID)"] }
        }
    }
}
