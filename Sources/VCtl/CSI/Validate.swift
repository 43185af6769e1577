import ArgumentParser
import CSIProto

extension CSICommand {
    /// `vctl csi validate ID`: ValidateVolumeCapabilities; exits 1 when not confirmed.
    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check that a volume supports an access mode (exit 1 if not confirmed).")

        @OptionGroup var client: CSIClientOptions
        @OptionGroup var capability: VolumeCapabilityOptions

        @Argument(help: "The volume id.")
        var volumeID: String

        func run() throws {
            var request = Csi_V1_ValidateVolumeCapabilitiesRequest()
            request.volumeID = volumeID
            request.volumeCapabilities = [capability.capability]
            let response: Csi_V1_ValidateVolumeCapabilitiesResponse = try client.call(
                "Controller", "ValidateVolumeCapabilities", request)
            client.print(response) { response in
                [response.hasConfirmed ? "confirmed" : "not confirmed: \(response.message)"]
            }
            if !response.hasConfirmed { throw ExitCode.failure }
        }
    }
}
