import ArgumentParser
import CSIProto
import Testing

@testable import VCtl

@Suite struct ArgumentTests {
    @Test func createVolumeParsesItsOptions() throws {
        let command = try VCtl.parseAsRoot([
            "csi", "create-volume", "pvc-1", "--size", "2Gi", "--cluster", "ml/store", "--node", "n1",
            "--access-mode", "multi-node-multi-writer", "--endpoint", "unix:///tmp/x.sock",
        ])
        let create = try #require(command as? CSICommand.CreateVolume)
        #expect(create.name == "pvc-1")
        #expect(create.size == "2Gi")
        #expect(create.capability.capability.accessMode.mode == .multiNodeMultiWriter)
        #expect(create.client.endpoint == "unix:///tmp/x.sock")
    }

    @Test(arguments: [
        (["csi", "create-volume", "x", "--size", "lots"], "--size lots"),
        (["csi", "create-volume", "x", "--cluster", "no-slash"], "--cluster no-slash"),
        (["csi", "create-volume", "x", "--parameter", "novalue"], "--parameter novalue"),
        (["csi", "probe", "--endpoint", "http://x"], "--endpoint http://x"),
        (["csi", "probe", "--timeout", "0"], "--timeout"),
        (["csi", "list-volumes", "--page-size", "-1"], "--page-size"),
    ])
    func badInputNamesTheProblem(_ arguments: [String], _ expected: String) {
        do {
            _ = try VCtl.parseAsRoot(arguments)
            Issue.record("\(arguments) parsed")
        } catch {
            #expect(VCtl.message(for: error).contains(expected))
            #expect(VCtl.exitCode(for: error) == .validationFailure)
        }
    }
}
