import ArgumentParser
import CSIProto
import SwiftProtobuf

extension CSICommand {
    /// `vctl csi probe`: whether the driver is ready; exits 1 when it is not.
    struct Probe: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check that the driver is ready (exit 1 if not).")

        @OptionGroup var client: CSIClientOptions

        func run() throws {
            let response: Csi_V1_ProbeResponse = try client.call("Identity", "Probe", Csi_V1_ProbeRequest())
            let ready = !response.hasReady || response.ready.value
            client.print(response) { _ in [ready ? "ready" : "not ready"] }
            if !ready { throw ExitCode.failure }
        }
    }
}
