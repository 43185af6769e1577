// vineyard-csi: VineyarddTestSupport
// VineyarddProcess.swift: a real vineyardd (from the vineyard wheel in .venv) for client tests.

import Foundation
import Glibc

/// A vineyardd started with local metadata and no RPC, on a socket in a fresh directory;
/// killed (by its pid) and removed by ``stop()`` or at deinit.
public final class VineyarddProcess {
    /// The vineyardd binary `scripts/install-deps.sh` installs with the `vineyard` wheel, or nil.
    public static let executable: String? = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let lib = root.appendingPathComponent(".venv/lib")
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: lib.path)) ?? []
        for version in versions.sorted() where version.hasPrefix("python3") {
            let path = lib.appendingPathComponent("\(version)/site-packages/vineyard/bdist/vineyardd").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }()

    public static var available: Bool { executable != nil }

    public let directory: String
    public let socket: String
    private var process: Process?

    public init(size: String = "64Mi") throws {
        guard let executable = Self.executable else { throw CocoaError(.fileNoSuchFile) }
        var template = Array("/tmp/vineyardd-test-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else { throw CocoaError(.fileWriteUnknown) }
        directory = String(cString: created)
        socket = directory + "/vineyard.sock"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--socket", socket, "--size", size, "--meta", "local", "--rpc", "false"]
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: "/dev/null"))
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(30)
        while access(socket, F_OK) != 0 {
            guard process.isRunning, Date() < deadline else {
                stop()
                throw CocoaError(.fileReadUnknown)
            }
            usleep(50_000)
        }
    }

    deinit { stop() }

    /// Kills vineyardd (SIGKILL: the tests model a crash) and waits for it.
    public func kill() {
        guard let process, process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    public func stop() {
        kill()
        process = nil
        try? FileManager.default.removeItem(atPath: directory)
    }
}
