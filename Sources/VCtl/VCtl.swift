import ArgumentParser

/// `vctl`: the command-line tool of vineyard-csi.
@main
struct VCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vctl",
        abstract: "Command-line tool for the vineyard CSI driver.",
        subcommands: [CSICommand.self, DeployCommand.self, DeleteCommand.self]
    )
}
