import ArgumentParser

/// How `deploy` and `delete` talk to the cluster, or print instead.
struct KubectlOptions: ParsableArguments {
    @Flag(name: .customLong("dry-run"), help: "Print the manifests instead of applying or deleting them.")
    var dryRun = false

    @Option(name: [.customShort("o"), .long], help: "Print the rendered manifests in this format (yaml).")
    var output: OutputFormat?

    @Option(help: "kubeconfig file for kubectl (default: kubectl's own: $KUBECONFIG or ~/.kube/config).")
    var kubeconfig: String?

    enum OutputFormat: String, CaseIterable, ExpressibleByArgument {
        case yaml
    }

    func validate() throws {
        if let kubeconfig, kubeconfig.isEmpty { throw ValidationError("--kubeconfig must not be empty") }
    }

    /// kubectl on `PATH`, with `--kubeconfig` when given.
    ///
    /// - Throws: ``KubectlError/notFound(searchPath:)`` when `PATH` has no kubectl.
    func kubectl(searchPath: String? = Kubectl.environmentSearchPath) throws -> Kubectl {
        Kubectl(executable: try Kubectl.locate(searchPath: searchPath), kubeconfig: kubeconfig)
    }
}
