import ArgumentParser
import Foundation
import POSIXCore
import Testing

@testable import VCtl

/// `Kubectl` against a fake kubectl: a shell script that records its arguments and input.
@Suite struct KubectlTests {
    /// vctl runs under the package's signal policy (`VCtl.main`): a kubectl that exits before
    /// reading its input makes the write fail with EPIPE instead of ending the process.
    init() {
        ProcessSignals.applyPolicy()
    }

    /// A directory holding an executable `kubectl` running `body`; removed by `cleanUp`.
    struct FakeKubectl {
        let directory: URL
        var path: String { directory.appendingPathComponent("kubectl").path }
        var recordedArguments: String { (try? String(contentsOf: directory.appendingPathComponent("args"), encoding: .utf8)) ?? "" }
        var recordedInput: String { (try? String(contentsOf: directory.appendingPathComponent("stdin"), encoding: .utf8)) ?? "" }

        init(_ body: String) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("vctl-kubectl-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let script = """
                #!/bin/sh
                here="$(dirname "$0")"
                echo "$@" > "$here/args"
                cat > "$here/stdin"
                \(body)

                """
            try script.write(toFile: path, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        }

        func cleanUp() { try? FileManager.default.removeItem(at: directory) }
    }

    @Test func locateFindsTheFirstExecutableKubectlOnThePath() throws {
        let fake = try FakeKubectl("exit 0")
        defer { fake.cleanUp() }
        let notExecutable = FileManager.default.temporaryDirectory.appendingPathComponent("vctl-noexec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: notExecutable, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: notExecutable) }
        try "".write(toFile: notExecutable.appendingPathComponent("kubectl").path, atomically: true, encoding: .utf8)

        #expect(try Kubectl.locate(searchPath: "/nonexistent:\(notExecutable.path):\(fake.directory.path)") == fake.path)
        #expect(throws: KubectlError.notFound(searchPath: notExecutable.path)) {
            try Kubectl.locate(searchPath: notExecutable.path)
        }
        #expect(throws: KubectlError.notFound(searchPath: "")) { try Kubectl.locate(searchPath: nil) }
    }

    @Test func applyPassesTheManifestsOnStandardInput() throws {
        let fake = try FakeKubectl("exit 0")
        defer { fake.cleanUp() }
        let manifests = CSIDriverManifests.render(try DeployFixtures.installation(["--clusters", "a/b"])).yamlStream
        try Kubectl(executable: fake.path, kubeconfig: "/tmp/config").run(["apply", "-f", "-"], input: manifests)
        #expect(fake.recordedArguments == "--kubeconfig /tmp/config apply -f -\n")
        #expect(fake.recordedInput == manifests)
    }

    @Test func failureCarriesKubectlsMessageAndSaysWhenNoClusterIsReachable() throws {
        let fake = try FakeKubectl(
            #"echo 'The connection to the server localhost:8080 was refused - did you specify the right host or port?' >&2; exit 1"#
        )
        defer { fake.cleanUp() }
        do {
            try Kubectl(executable: fake.path).run(["delete", "--ignore-not-found", "-f", "-"], input: "kind: X\n")
            Issue.record("kubectl's failure was not reported")
        } catch {
            guard case .failed(let command, let status, let message) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(command == "kubectl delete --ignore-not-found -f -")
            #expect(status == 1)
            #expect(message.contains("localhost:8080 was refused"))
            #expect(error.description.contains("No Kubernetes cluster is reachable"))
            #expect(VCtl.exitCode(for: error) != .success)
        }
    }

    @Test func otherFailuresAreNotBlamedOnTheConnection() {
        let error = KubectlError.failed(command: "kubectl apply -f -", status: 1, message: "forbidden: User cannot create")
        #expect(error.description.contains("forbidden"))
        #expect(!error.description.contains("No Kubernetes cluster"))
    }

    @Test func kubectlThatExitsWithoutReadingItsInputDoesNotKillVctl() throws {
        let fake = try FakeKubectl("exit 3")
        defer { fake.cleanUp() }
        // Replace the script with one that ignores its input entirely.
        try "#!/bin/sh\nexit 3\n".write(toFile: fake.path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fake.path)
        let large = String(repeating: "# filler line for a pipe larger than its buffer\n", count: 20_000)
        #expect(throws: KubectlError.failed(command: "kubectl apply -f -", status: 3, message: "")) {
            try Kubectl(executable: fake.path).run(["apply", "-f", "-"], input: large)
        }
    }
}
