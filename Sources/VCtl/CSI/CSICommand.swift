import ArgumentParser

/// `vctl csi …`: call the driver's CSI services over its socket.
struct CSICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "csi",
        abstract: "Call a running vineyard-csi driver's CSI services.",
        discussion: "Errors print the gRPC status code and message and exit with status 1.",
        subcommands: [
            Info.self, Probe.self, CreateVolume.self, DeleteVolume.self, ListVolumes.self, GetVolume.self,
            Publish.self, Unpublish.self, Validate.self, Capacity.self, NodeInfo.self,
        ]
    )
}
