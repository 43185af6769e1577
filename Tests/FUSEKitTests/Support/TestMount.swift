//
// vineyard-csi: FUSEKitTests
//
// Mounting the test file system on a fresh temporary directory, serving it on a background
// thread, and always cleaning up.

import Foundation
@testable import FUSEKit
import Glibc
import Synchronization
import Testing

enum TestEnvironment {
    /// Mount tests need /dev/fuse and root (CAP_SYS_ADMIN for mount(2)).
    static let canMount: Bool = access("/dev/fuse", R_OK | W_OK) == 0 && geteuid() == 0

    static let subtype = "fusekit-test"
    static let directoryPrefix = "/tmp/fusekit-test-"

    /// Cleans up mounts left behind by earlier test processes that died (their source names
    /// the pid): aborts the connection (a server that died with files open on its own mount
    /// can leave a thread stuck in FLUSH until then), detaches the mount and removes the
    /// directory. Runs once per process.
    static let staleMountsCleaned: Bool = {
        for entry in mountEntries() where entry.fileSystemType == "fuse.\(subtype)" {
            guard entry.mountPoint.hasPrefix(directoryPrefix),
                let pid = Int32(entry.source.split(separator: "-").last ?? ""), pid != getpid(),
                processIsGone(pid)
            else { continue }
            try? Unmounter.abortConnection(
                mountPoint: entry.mountPoint, device: entry.device)
            _ = umount2(entry.mountPoint, 2 /* MNT_DETACH */)
            _ = rmdir(entry.mountPoint)
        }
        return true
    }()

    /// Whether `pid` no longer runs (absent, or a zombie).
    static func processIsGone(_ pid: Int32) -> Bool {
        if kill(pid, 0) != 0 && errno == ESRCH { return true }
        guard let bytes = try? FileIO.readAll(atPath: "/proc/\(pid)/stat"),
            case let stat = String(decoding: bytes, as: UTF8.self),
            let close = stat.lastIndex(of: ")")
        else { return true }
        return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
    }
}

/// This process's mounts (none if the table cannot be read).
func mountEntries() -> [MountTable.Entry] {
    (try? MountTable.read())?.entries ?? []
}

/// A mounted ``InMemoryFileSystem`` served on its own thread.
final class TestMount: @unchecked Sendable {
    let path: String
    let fileSystem: InMemoryFileSystem
    let session: FUSESession
    private let finished = DispatchSemaphore(value: 0)
    let loopError = Mutex<FUSEError?>(nil)

    /// Mounts `fileSystem` on a new directory and starts serving it.
    init(
        fileSystem: InMemoryFileSystem = InMemoryFileSystem(), options: MountOptions = MountOptions(),
        threads: Int? = 4
    ) throws {
        _ = TestEnvironment.staleMountsCleaned
        var template = Array((TestEnvironment.directoryPrefix + "XXXXXX").utf8CString)
        guard let created = mkdtemp(&template) else { throw Errno.current }
        let path = String(cString: created)

        var options = options
        options.fsName = "fusekit-test-\(getpid())"
        options.subtype = TestEnvironment.subtype
        do {
            self.session = try FUSESession(fileSystem: fileSystem, mountPoint: path, options: options)
        } catch {
            rmdir(path)
            throw error
        }
        self.path = path
        self.fileSystem = fileSystem
        start(threads: threads)
    }

    /// Serves an existing session (e.g. one created on a descriptor).
    init(session: FUSESession, fileSystem: InMemoryFileSystem, path: String, threads: Int? = 4) {
        self.session = session
        self.fileSystem = fileSystem
        self.path = path
        start(threads: threads)
    }

    private func start(threads: Int?) {
        let thread = Thread { [self] in
            do throws(FUSEError) {
                try session.run(threads: threads)
            } catch {
                loopError.withLock { $0 = error }
            }
            finished.signal()
        }
        thread.name = "fusekit-test-loop"
        thread.start()
    }

    func url(_ name: String) -> String {
        "\(path)/\(name)"
    }

    /// Waits for the loop thread to end (a latch: true again on later calls).
    @discardableResult
    func waitForLoop(seconds: Double = 15) -> Bool {
        guard finished.wait(timeout: .now() + seconds) == .success else { return false }
        finished.signal()
        return true
    }

    /// Unmounts, joins the loop thread and removes the directory. Safe to call twice.
    func tearDown(sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try session.unmount()
        } catch {
            Issue.record("unmount failed: \(error)", sourceLocation: sourceLocation)
        }
        if !waitForLoop() {
            Issue.record("session loop did not return after unmount", sourceLocation: sourceLocation)
            try? session.abortConnection()
            _ = waitForLoop(seconds: 5)
        }
        rmdir(path)
    }
}

/// Mounts, runs `body`, and always tears the mount down.
func withMount<T>(
    fileSystem: InMemoryFileSystem = InMemoryFileSystem(), options: MountOptions = MountOptions(),
    sourceLocation: SourceLocation = #_sourceLocation, _ body: (TestMount) throws -> T
) throws -> T {
    let mount = try TestMount(fileSystem: fileSystem, options: options)
    defer { mount.tearDown(sourceLocation: sourceLocation) }
    return try body(mount)
}
