import ArgumentParser
import FoundationEssentials
import Glibc
import POSIXCore

extension DeployCommand {
    /// `vctl deploy csidriver`: render the driver's manifests and `kubectl apply` them.
    struct CSIDriverCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "csidriver",
            abstract: "Deploy the vineyard CSI driver: CSIDriver, RBAC, the driver on every node, StorageClasses and VolumeSnapshotClasses.",
            discussion: """
                The manifests are applied with `kubectl apply -f -` (kubectl must be on PATH and reach a \
                cluster). --dry-run or -o yaml prints them; --render-to writes them as a kustomize \
                directory, which is how deploy/ in the repository is produced.

                Example:
                  vctl deploy csidriver --clusters vineyard-system/vineyardd-sample,default/vineyardd-sample
                """
        )

        @OptionGroup var installation: InstallationOptions
        @OptionGroup var driver: DriverImageOptions
        @OptionGroup var kubectl: KubectlOptions

        @Option(
            name: .customLong("render-to"),
            help: ArgumentHelp(
                "Write the manifests and a kustomization.yaml into this directory instead of applying them.",
                valueName: "directory"
            )
        )
        var renderTo: String?

        func validate() throws {
            if let renderTo, renderTo.isEmpty { throw ValidationError("--render-to must name a directory") }
        }

        /// The installation the flags describe.
        func resolvedInstallation() throws -> CSIDriverInstallation {
            driver.apply(to: try installation.installation())
        }

        func run() throws {
            let installation = try resolvedInstallation()
            if let renderTo {
                try Self.write(CSIDriverManifests.files(installation), to: renderTo)
                if kubectl.output == .yaml { print(CSIDriverManifests.render(installation).yamlStream, terminator: "") }
                return
            }
            let printsManifests = kubectl.dryRun || kubectl.output == .yaml
            // Find kubectl before printing anything: a missing kubectl fails the command whole.
            let client = kubectl.dryRun ? nil : try kubectl.kubectl()
            let manifests = CSIDriverManifests.render(installation)
            if printsManifests { print(manifests.yamlStream, terminator: "") }
            guard let client else { return }
            let (required, snapshotClasses) = manifests.splitBySnapshotCRDs
            try client.run(["apply", "-f", "-"], input: required.yamlStream, outputToStandardError: printsManifests)
            // Without the snapshot CRDs the driver works, without snapshots: say so, don't fail.
            do {
                try client.run(["apply", "-f", "-"], input: snapshotClasses.yamlStream, outputToStandardError: printsManifests)
            } catch {
                FileIO.writeToStandardError(Self.snapshotClassWarning(error))
            }
        }

        static func snapshotClassWarning(_ error: any Error) -> String {
            """
            warning: the VolumeSnapshotClasses were not applied (\(error)).
            Volume snapshots need the external-snapshotter CRDs and its snapshot-controller running with
            --enable-distributed-snapshotting (deploy/README.md); run this command again once they are installed.

            """
        }

        /// Writes each file into `directory`, creating it if needed; other files there are kept.
        static func write(_ files: [(name: String, contents: String)], to directory: String) throws {
            var base = directory
            while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
            let paths = files.map { base == "/" ? "/" + $0.name : base + "/" + $0.name }
            do throws(Errno) {
                try FileIO.createDirectories(atPath: base)
                for (file, path) in zip(files, paths) {
                    try FileIO.replaceContents(atPath: path, with: Array(file.contents.utf8))
                }
            } catch {
                throw RenderError(directory: directory, reason: "\(error)")
            }
            for path in paths { print("wrote \(path)") }
        }
    }
}

/// `--render-to` could not write its files.
struct RenderError: Error, CustomStringConvertible {
    var directory: String
    var reason: String

    var description: String { "cannot write the manifests to \(directory): \(reason)" }
}
