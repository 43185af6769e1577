import ArgumentParser
import Foundation
import Testing

@testable import VCtl

/// `deploy/*.yaml` are the builders' output for the default installation; they must not drift.
@Suite struct DeployDriftTests {
    static let renderCommand =
        "swift run vctl deploy csidriver --clusters \(CSIDriverInstallation.defaultCluster) --render-to deploy/"

    @Test func checkedInManifestsAreTheRenderedDefaults() throws {
        let deploy = DeployFixtures.repositoryRoot.appendingPathComponent("deploy")
        let rendered = CSIDriverManifests.files(CSIDriverInstallation(clusters: [CSIDriverInstallation.defaultCluster]))
        for file in rendered {
            let path = deploy.appendingPathComponent(file.name)
            let checkedIn = try? String(contentsOf: path, encoding: .utf8)
            #expect(checkedIn == file.contents, "deploy/\(file.name) is out of date: run `\(Self.renderCommand)`")
        }
        // A file the builders no longer write must not linger in deploy/.
        let yamlFiles = try FileManager.default.contentsOfDirectory(atPath: deploy.path).filter { $0.hasSuffix(".yaml") }
        #expect(Set(yamlFiles) == Set(rendered.map(\.name)), "deploy/ has YAML the builders do not write")
    }

    @Test func renderToWritesTheFilesAndKeepsOthers() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vctl-render-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try "keep me".write(to: directory.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)

        let command = try #require(
            try VCtl.parseAsRoot(["deploy", "csidriver", "--clusters", "a/b", "--render-to", directory.path])
                as? DeployCommand.CSIDriverCommand
        )
        try command.run()
        let written = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(written == (Manifest.File.allCases.map(\.fileName) + ["kustomization.yaml", "README.md"]).sorted())
        let storageClass = try String(contentsOf: directory.appendingPathComponent("storageclass.yaml"), encoding: .utf8)
        #expect(try DeployFixtures.parse(storageClass).first?.name == "a.b.csi")
        #expect(try String(contentsOf: directory.appendingPathComponent("README.md"), encoding: .utf8) == "keep me")
    }
}
