import ArgumentParser
import CSIModel
import Testing

@testable import VCtl

/// `vctl deploy csidriver` / `vctl delete csidriver` flags: vineyardctl's spellings, defaults,
/// and bad input rejected with a message and exit status 64.
@Suite struct DeployArgumentTests {
    @Test func clustersAreCommaSeparatedOrRepeated() throws {
        let commaSeparated = try DeployFixtures.installation(["--clusters", "a/b,c/d"])
        let repeated = try DeployFixtures.installation(["--clusters", "a/b", "--clusters", "c/d"])
        let expected = [ClusterReference(namespace: "a", name: "b"), ClusterReference(namespace: "c", name: "d")]
        #expect(commaSeparated.clusters == expected)
        #expect(repeated.clusters == expected)
    }

    @Test func defaultsAreTheInstallationDeployIsRenderedFor() throws {
        let installation = try DeployFixtures.installation(["--clusters", "vineyard-system/vineyardd-sample"])
        #expect(installation == CSIDriverInstallation(clusters: [CSIDriverInstallation.defaultCluster]))
        #expect(installation.name == "vineyard-csi-driver")
        #expect(installation.namespace == "vineyard-system")
        #expect(installation.volumeBindingMode == .waitForFirstConsumer)
        #expect(installation.imagePullPolicy == .ifNotPresent)
        #expect(!installation.enableToleration && !installation.verbose)
    }

    @Test func vineyardctlSpellingsAndShortNamesParse() throws {
        let installation = try DeployFixtures.installation([
            "--clusters", "ml/store", "-i", "x/driver:1", "--imagePullPolicy", "Never", "-s", "memory",
            "-m", "Immediate", "--provisionerImage", "p:1", "--attacherImage", "a:1", "--nodeRegistrarImage", "r:1",
            "--livenessProbeImage", "l:1", "--sidecar.imagePullPolicy", "Always", "--enableToleration", "--verbose",
            "-n", "storage", "--name", "csi",
        ])
        #expect(installation.image == "x/driver:1")
        #expect(installation.imagePullPolicy == .never)
        #expect(installation.storageClassName == "memory")
        #expect(installation.volumeBindingMode == .immediate)
        // --attacherImage is accepted for vineyardctl's scripts; no csi-attacher runs.
        #expect(
            installation.sidecars
                == SidecarImages(
                    provisioner: "p:1", snapshotter: SidecarImages().snapshotter, resizer: SidecarImages().resizer,
                    nodeRegistrar: "r:1", livenessProbe: "l:1"))
        #expect(installation.sidecarImagePullPolicy == .always)
        #expect(installation.enableToleration && installation.verbose)
        #expect(installation.namespace == "storage" && installation.name == "csi")
    }

    @Test func sidecarImagesAlsoTakeTheSidecarPrefix() throws {
        let installation = try DeployFixtures.installation([
            "--clusters", "a/b", "--sidecar.provisionerImage", "p:2", "--sidecar.snapshotterImage", "s:2",
            "--sidecar.resizerImage", "z:2", "--sidecar.nodeRegistrarImage", "r:2", "--sidecar.livenessProbeImage", "l:2",
        ])
        #expect(
            installation.sidecars
                == SidecarImages(provisioner: "p:2", snapshotter: "s:2", resizer: "z:2", nodeRegistrar: "r:2", livenessProbe: "l:2"))
    }

    @Test func outputAndDryRunParse() throws {
        let command = try VCtl.parseAsRoot(["deploy", "csidriver", "--clusters", "a/b", "--dry-run", "-o", "yaml"])
        let deploy = try #require(command as? DeployCommand.CSIDriverCommand)
        #expect(deploy.kubectl.dryRun && deploy.kubectl.output == .yaml)
        let delete = try #require(
            try VCtl.parseAsRoot(["delete", "csidriver", "--clusters", "a/b", "--name", "csi", "--dry-run"])
                as? DeleteCommand.CSIDriverCommand
        )
        #expect(try delete.installation.installation().name == "csi")
        #expect(delete.kubectl.dryRun)
    }

    @Test(arguments: [
        (["deploy", "csidriver"], "--clusters is required"),
        (["deploy", "csidriver", "--clusters", ""], "--clusters: \"\""),
        (["deploy", "csidriver", "--clusters", "no-slash"], "\"no-slash\" is not namespace/name"),
        (["deploy", "csidriver", "--clusters", "a/b/c"], "\"a/b/c\" is not namespace/name"),
        (["deploy", "csidriver", "--clusters", "a/b,Upper/case"], "\"Upper/case\""),
        (["deploy", "csidriver", "--clusters", "a/b,"], "--clusters: \"\""),
        (["deploy", "csidriver", "--clusters", "a/b,a/b"], "a/b is named twice"),
        (["deploy", "csidriver", "--clusters", "a/b,c/d", "--storageClassName", "x"], "--storageClassName names one StorageClass"),
        (["deploy", "csidriver", "--clusters", "a/b", "--storageClassName", "Bad_Name"], "--storageClassName Bad_Name"),
        (["deploy", "csidriver", "--clusters", "a/b", "--name", "Bad"], "--name Bad"),
        (["deploy", "csidriver", "--clusters", "a/b", "--name", String(repeating: "x", count: 52)], "longer than 51"),
        (["deploy", "csidriver", "--clusters", "a/b", "--namespace", "x-"], "--namespace x-"),
        (["deploy", "csidriver", "--clusters", "a/b", "--volumeBindingMode", "Later"], "Later"),
        (["deploy", "csidriver", "--clusters", "a/b", "--imagePullPolicy", "Sometimes"], "Sometimes"),
        (["deploy", "csidriver", "--clusters", "a/b", "--image", ""], "--image \"\""),
        (["deploy", "csidriver", "--clusters", "a/b", "--storeSize", "lots"], "--storeSize lots"),
        (["deploy", "csidriver", "--clusters", "a/b", "-o", "json"], "json"),
        (["deploy", "csidriver", "--clusters", "a/b", "--render-to", ""], "--render-to"),
        (["deploy", "csidriver", "--clusters", "a/b", "--bogus"], "--bogus"),
        (["deploy", "csidriver", "--clusters", "a/b", "--provisionerImage"], "--provisionerImage"),
        (["delete", "csidriver"], "--clusters is required"),
        (["delete", "csidriver", "--clusters", "nope"], "\"nope\" is not namespace/name"),
        (["delete", "csidriver", "--clusters", "a/b", "--image", "x"], "--image"),
    ])
    func badInputNamesTheProblemAndExits64(_ arguments: [String], _ expected: String) {
        do {
            _ = try VCtl.parseAsRoot(arguments)
            Issue.record("\(arguments) parsed")
        } catch {
            #expect(VCtl.message(for: error).contains(expected), "\(VCtl.message(for: error))")
            #expect(VCtl.exitCode(for: error) == .validationFailure)
        }
    }

    @Test func missingKubectlIsAnErrorThatSaysWhatToDo() throws {
        let options = try KubectlOptions.parse([])
        #expect(throws: KubectlError.notFound(searchPath: "/nonexistent")) {
            try options.kubectl(searchPath: "/nonexistent")
        }
        let message = KubectlError.notFound(searchPath: "/nonexistent").description
        #expect(message.contains("kubectl was not found on PATH (/nonexistent)"))
        #expect(message.contains("--dry-run -o yaml"))
        #expect(VCtl.exitCode(for: KubectlError.notFound(searchPath: "")) != .success)
    }
}
