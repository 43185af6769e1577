import ArgumentParser

/// `vctl delete …`: remove what `vctl deploy` installed.
struct DeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete what vctl deploy installed on Kubernetes.",
        subcommands: [CSIDriverCommand.self]
    )
}
