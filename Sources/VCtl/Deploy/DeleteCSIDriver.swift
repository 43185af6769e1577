import ArgumentParser
import FoundationEssentials
import Glibc
import POSIXCore

extension DeleteCommand {
    /// `vctl delete csidriver`: delete what `vctl deploy csidriver` created, by rendering the
    /// same manifests and handing them to `kubectl delete`.
    struct CSIDriverCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "csidriver",
            abstract: "Delete the vineyard CSI driver that vctl deploy csidriver installed.",
            discussion: """
                Pass the --clusters, --name, --namespace and --storageClassName the driver was deployed \
                with: the objects are found by name (`kubectl delete --ignore-not-found -f -`). The \
                namespace is kept, since it may hold the vineyard clusters; persistent volumes of the \
                driver are not touched.
                """
        )

        @OptionGroup var installation: InstallationOptions
        @OptionGroup var kubectl: KubectlOptions

        func run() throws {
            let installation = try installation.installation()
            let manifests = CSIDriverManifests.deletable(installation)
            let keptNamespace = """
                namespace \(installation.namespace) is kept: it may hold vineyard clusters \
                (`kubectl delete namespace \(installation.namespace)` removes it)

                """
            if kubectl.dryRun {
                if kubectl.output == .yaml {
                    print(manifests.yamlStream, terminator: "")
                } else {
                    manifests.forEach { print("would delete \(Self.describe($0))") }
                }
                FileIO.writeToStandardError(keptNamespace)
                return
            }
            let client = try kubectl.kubectl()
            if kubectl.output == .yaml { print(manifests.yamlStream, terminator: "") }
            let quiet = kubectl.output == .yaml
            // A cluster without the snapshot CRDs has no VolumeSnapshotClass to delete, and
            // kubectl fails on the unknown kind: those go in a call of their own.
            let (others, snapshotClasses) = manifests.splitBySnapshotCRDs
            do {
                try client.run(
                    ["delete", "--ignore-not-found", "-f", "-"], input: snapshotClasses.yamlStream,
                    outputToStandardError: quiet)
            } catch {
                FileIO.writeToStandardError("note: no VolumeSnapshotClass deleted (\(error))\n")
            }
            try client.run(
                ["delete", "--ignore-not-found", "-f", "-"],
                input: others.yamlStream, outputToStandardError: quiet
            )
            FileIO.writeToStandardError(keptNamespace)
        }

        /// `kind/name`, with the namespace of a namespaced object.
        static func describe(_ manifest: Manifest) -> String {
            manifest.namespace.map { "\(manifest.reference) -n \($0)" } ?? manifest.reference
        }
    }
}
