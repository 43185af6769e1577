import ArgumentParser
import POSIXCore

/// `vctl`: the command-line tool of vineyard-csi.
@main
struct VCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vctl",
        abstract: "Command-line tool for the vineyard CSI driver.",
        subcommands: [CSICommand.self, DeployCommand.self, DeleteCommand.self]
    )

    /// The package's signal policy first: kubectl may exit before reading all its input, and a
    /// write to the closed pipe must fail with EPIPE instead of killing vctl.
    static func main() {
        ProcessSignals.applyPolicy()
        main(nil)
    }
}
