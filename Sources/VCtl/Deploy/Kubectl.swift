import Dispatch
import Foundation
import POSIXCore

/// Runs kubectl with manifests on its standard input.
struct Kubectl: Sendable {
    /// Absolute path of the kubectl binary.
    var executable: String
    /// Passed as `--kubeconfig` when set.
    var kubeconfig: String?

    static var environmentSearchPath: String? { ProcessInfo.processInfo.environment["PATH"] }

    /// The first executable `kubectl` in the `:`-separated `searchPath`.
    ///
    /// - Throws: ``KubectlError/notFound(searchPath:)`` when there is none.
    static func locate(searchPath: String?) throws(KubectlError) -> String {
        for directory in (searchPath ?? "").split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/kubectl"
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
                access(candidate, X_OK) == 0
            {
                return candidate
            }
        }
        throw .notFound(searchPath: searchPath ?? "")
    }

    /// Runs `kubectl arguments...` with `input` on its standard input.
    ///
    /// kubectl's standard output goes to ours (to our standard error with
    /// `outputToStandardError`, so a YAML stream on standard output stays clean); its standard
    /// error is passed on when it succeeds and becomes the error's message when it fails.
    ///
    /// - Throws: ``KubectlError/failed(command:status:message:)`` when kubectl exits non-zero,
    ///   ``KubectlError/cannotRun(_:)`` when it cannot be started.
    func run(_ arguments: [String], input: String, outputToStandardError: Bool = false) throws(KubectlError) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = (kubeconfig.map { ["--kubeconfig", $0] } ?? []) + arguments
        let standardInput = Pipe()
        let standardError = Pipe()
        process.standardInput = standardInput
        process.standardOutput = outputToStandardError ? FileHandle.standardError : FileHandle.standardOutput
        process.standardError = standardError
        // What we printed so far must come out before kubectl's own output. (kubectl may exit
        // before reading all its input: the write to the closed pipe fails with EPIPE, see
        // `VCtl.main`.)
        fflush(nil)
        do { try process.run() } catch { throw .cannotRun("\(executable): \(error.localizedDescription)") }

        let writer = DispatchGroup()
        let inputHandle = standardInput.fileHandleForWriting
        let data = Data(input.utf8)
        DispatchQueue.global().async(group: writer) {
            try? inputHandle.write(contentsOf: data)
            try? inputHandle.close()
        }
        let errorOutput = standardError.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        writer.wait()

        let message = String(decoding: errorOutput, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            throw .failed(
                command: (["kubectl"] + arguments).joined(separator: " "), status: process.terminationStatus,
                message: message
            )
        }
        if !message.isEmpty { FileIO.writeToStandardError(message + "\n") }
    }
}

/// Why kubectl did not do what vctl asked.
enum KubectlError: Error, Equatable, CustomStringConvertible {
    case notFound(searchPath: String)
    case cannotRun(String)
    case failed(command: String, status: Int32, message: String)

    var description: String {
        switch self {
        case .notFound(let searchPath):
            return """
                kubectl was not found on PATH (\(searchPath.isEmpty ? "PATH is empty" : searchPath)). \
                Install kubectl, or print the manifests with --dry-run -o yaml and apply them with kubectl elsewhere.
                """
        case .cannotRun(let reason):
            return "cannot run kubectl: \(reason)"
        case .failed(let command, let status, let message):
            var text = "`\(command)` failed with exit status \(status)"
            text += message.isEmpty ? "." : ":\n\(message)"
            if Self.meansUnreachable(message) {
                text += "\nNo Kubernetes cluster is reachable: check `kubectl config current-context`, or pass --kubeconfig."
            }
            return text
        }
    }

    /// Whether kubectl's message says it could not reach an API server.
    static func meansUnreachable(_ message: String) -> Bool {
        let signs = [
            "connection refused", "The connection to the server", "Unable to connect to the server", "couldn't get current server API group list",
            "no configuration has been provided", "dial tcp", "i/o timeout", "no such host",
        ]
        return signs.contains { message.localizedCaseInsensitiveContains($0) }
    }
}
