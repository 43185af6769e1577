import Dispatch
import FoundationEssentials
import Glibc
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
            var status = stat()
            if stat(candidate, &status) == 0, status.st_mode & S_IFMT != S_IFDIR, access(candidate, X_OK) == 0 {
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
        let argv = ["kubectl"] + (kubeconfig.map { ["--kubeconfig", $0] } ?? []) + arguments
        // What we printed so far must come out before kubectl's own output.
        fflush(nil)
        let result: ChildProcess.Result
        do {
            result = try ChildProcess.run(
                executable, arguments: argv, input: Array(input.utf8),
                standardOutput: outputToStandardError ? STDERR_FILENO : STDOUT_FILENO)
        } catch {
            throw .cannotRun("\(executable): \(error)")
        }
        let message = String(decoding: result.standardError, as: UTF8.self).trimmingWhitespace
        guard result.exitStatus == 0 else {
            throw .failed(
                command: (["kubectl"] + arguments).joined(separator: " "), status: result.exitStatus ?? -1,
                message: message
            )
        }
        if !message.isEmpty { FileIO.writeToStandardError(message + "\n") }
    }
}

/// A program run to completion with bytes on its standard input and its standard error captured.
enum ChildProcess {
    struct Result {
        /// The exit status; `nil` when a signal ended it.
        var exitStatus: Int32?
        var standardError: [UInt8]
    }

    /// Runs `executable` with `arguments` (`argv[0]` first) and this process's environment.
    /// `input` is written from a thread of its own while standard error is read, so neither
    /// pipe can fill up and stall the child; a child that exits before reading all its input
    /// just ends the write (EPIPE: SIGPIPE is ignored by the process's signal policy).
    static func run(
        _ executable: String, arguments: [String], input: [UInt8], standardOutput: Int32
    ) throws(Errno) -> Result {
        var inputPipe: [Int32] = [-1, -1]
        var errorPipe: [Int32] = [-1, -1]
        try syscall { pipe(&inputPipe) }
        defer { for fd in inputPipe where fd >= 0 { close(fd) } }
        try syscall { pipe(&errorPipe) }
        defer { for fd in errorPipe where fd >= 0 { close(fd) } }
        // The child gets only the ends dup2 puts on 0 and 2: holding the input's write end itself
        // would keep it from ever seeing the end of its input.
        for fd in inputPipe + errorPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inputPipe[0], STDIN_FILENO)
        posix_spawn_file_actions_adddup2(&actions, standardOutput, STDOUT_FILENO)
        posix_spawn_file_actions_adddup2(&actions, errorPipe[1], STDERR_FILENO)
        var cArguments: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        cArguments.append(nil)
        defer { for argument in cArguments { free(argument) } }
        var pid: pid_t = 0
        try syscallReturningErrno { posix_spawn(&pid, executable, &actions, nil, cArguments, environ) }
        close(inputPipe[0])
        inputPipe[0] = -1
        close(errorPipe[1])
        errorPipe[1] = -1

        let writer = DispatchGroup()
        let inputEnd = inputPipe[1]
        inputPipe[1] = -1
        writer.enter()
        do {
            try DetachedThread.start(name: "child input") {
                _ = try? FileIO.writeAll(inputEnd, input)
                close(inputEnd)
                writer.leave()
            }
        } catch {
            close(inputEnd)
            writer.leave()
        }
        var standardError: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while let count = try? syscall({ buffer.withUnsafeMutableBytes { read(errorPipe[0], $0.baseAddress, $0.count) } }),
            count > 0
        {
            standardError += buffer[0..<count]
        }
        var status: Int32 = 0
        _ = try? syscall { waitpid(pid, &status, 0) }
        writer.wait()
        // The wait status: an exit code in bits 8-15 when the low 7 bits (the signal) are 0.
        let exitStatus: Int32? = status & 0x7f == 0 ? (status >> 8) & 0xff : nil
        return Result(exitStatus: exitStatus, standardError: standardError)
    }
}

extension StringProtocol {
    /// Without leading and trailing white space and newlines.
    var trimmingWhitespace: String {
        guard let first = firstIndex(where: { !$0.isWhitespace }), let last = lastIndex(where: { !$0.isWhitespace }) else {
            return ""
        }
        return String(self[first...last])
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
        let lowercased = message.lowercased()
        return signs.contains { lowercased.contains($0.lowercased()) }
    }
}
