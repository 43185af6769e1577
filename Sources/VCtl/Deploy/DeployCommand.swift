import ArgumentParser

/// `vctl deploy …`: install the driver on a Kubernetes cluster.
struct DeployCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Deploy vineyard-csi on Kubernetes.",
        subcommands: [CSIDriverCommand.self]
    )
}
