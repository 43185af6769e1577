//
// vineyard-csi: VolumeFSTests
//
// Harness.swift: a store in a fresh directory, and volumes mounted over it on background
// threads, always torn down (unmounted, loop joined, store closed, directories removed).

import FUSEKit
import Foundation
import Glibc
import SharedMemoryStore
import Testing
import VolumeFS

enum TestEnvironment {
    /// Mount tests need /dev/fuse and root (CAP_SYS_ADMIN for mount(2)).
    static let canMount: Bool = access("/dev/fuse", R_OK | W_OK) == 0 && geteuid() == 0

    static let subtype = "vineyard-test"
    static let mountPrefix = "/tmp/vfs-test-"
    static let storePrefix = "/dev/shm/vfs-test-"

    /// Detaches mounts and removes stores left by earlier test processes that died (their
    /// fsname carries the pid). Runs once per process.
    static let staleStateCleaned: Bool = {
        for entry in MountInfo.entries()
        where entry.type == "fuse.\(subtype)" && entry.mountPoint.hasPrefix(mountPrefix) {
            guard let pid = Int32(entry.source.split(separator: "-").last ?? ""), pid != getpid(), processIsGone(pid)
            else { continue }
            MountInfo.abortConnection(minor: entry.minor)
            _ = umount2(entry.mountPoint, Int32(MNT_DETACH))
            _ = rmdir(entry.mountPoint)
        }
        // Stores and scratch directories carry the pid of the process that made them.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? []
        where name.hasPrefix("vfs-test-") || name.hasPrefix("vfs-scratch-") {
            guard let pid = Int32(name.split(separator: "-").dropLast().last ?? ""), pid != getpid(), processIsGone(pid)
            else { continue }
            _ = try? FileManager.default.removeItem(atPath: "/dev/shm/" + name)
        }
        return true
    }()

    static func processIsGone(_ pid: Int32) -> Bool {
        if kill(pid, 0) != 0 && errno == ESRCH { return true }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return true }
        return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
    }

    /// A python3 that can import numpy (/usr/bin/python3 first, then python3 on PATH).
    static let numpyPython: String? = {
        var candidates = ["/usr/bin/python3"]
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            candidates.append("\(directory)/python3")
        }
        candidates.append("/root/.pyenv/shims/python3")
        for candidate in candidates where access(candidate, X_OK) == 0 {
            if let result = try? Sys.run(candidate, ["-c", "import numpy"]), result.status == 0 { return candidate }
        }
        return nil
    }()
}

/// Lines of /proc/self/mountinfo.
enum MountInfo {
    struct Entry {
        var minor: String
        var mountPoint: String
        var type: String
        var source: String
    }

    static func entries() -> [Entry] {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { return nil }
            let left = halves[0].split(separator: " ")
            let right = halves[1].split(separator: " ")
            guard left.count >= 5, right.count >= 2 else { return nil }
            let device = left[2].split(separator: ":")
            return Entry(
                minor: device.count == 2 ? String(device[1]) : "", mountPoint: String(left[4]), type: String(right[0]),
                source: String(right[1]))
        }
    }

    static func isMounted(_ path: String) -> Bool {
        entries().contains { $0.mountPoint == path }
    }

    /// Aborts a FUSE connection so that nothing waits on a dead server.
    static func abortConnection(minor: String) {
        let fd = open("/sys/fs/fuse/connections/\(minor)/abort", O_WRONLY)
        guard fd >= 0 else { return }
        _ = write(fd, "1", 1)
        close(fd)
    }
}

/// An object store in a fresh directory under /dev/shm.
final class TestStore: @unchecked Sendable {
    let directory: String
    let capacity: Int
    private var storage: ObjectStore?

    var store: ObjectStore { storage! }

    let blobFileThreshold: Int?

    private var configuration: StoreConfiguration {
        var configuration = StoreConfiguration(directory: directory + "/store", capacity: capacity)
        configuration.blobFileThreshold = blobFileThreshold
        return configuration
    }

    /// - Parameter blobFileThreshold: blobs of at least this size get a file of their own.
    init(capacity: Int = 256 << 20, blobFileThreshold: Int? = nil) throws {
        _ = TestEnvironment.staleStateCleaned
        var template = Array((TestEnvironment.storePrefix + "\(getpid())-XXXXXX").utf8CString)
        guard let created = mkdtemp(&template) else { throw Errno.current }
        directory = String(cString: created)
        self.capacity = capacity
        self.blobFileThreshold = blobFileThreshold
        do {
            storage = try ObjectStore.open(configuration)
        } catch {
            _ = try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// Closes the store and opens it again from its directory, as a restarted driver does.
    /// Every other reference to the old instance must be dropped first (unmount); its lock is
    /// released when it deinitializes, which this waits for (up to 10 s).
    func reopen() throws {
        storage?.close()
        storage = nil
        var attempts = 0
        while true {
            do {
                storage = try ObjectStore.open(configuration)
                return
            } catch {
                guard case .storeLocked = error, attempts < 200 else { throw error }
                attempts += 1
                usleep(50_000)
            }
        }
    }

    func tearDown() {
        storage?.close()
        storage = nil
        _ = try? FileManager.default.removeItem(atPath: directory)
    }
}

/// A ``VolumeFileSystem`` mounted on a fresh directory and served on its own thread.
final class TestMount: @unchecked Sendable {
    let path: String
    let volumeID: String
    private(set) var fileSystem: VolumeFileSystem?
    private var session: FUSESession?
    private let finished = DispatchSemaphore(value: 0)
    private var tornDown = false

    /// Mounts volume `volumeID` of `store`, with the recommended options (the fsname carries
    /// the pid so that a later test process can clean up after a crash).
    init(
        store: ObjectStore, volumeID: String, quotaBytes: Int = 0, readOnly: Bool = false,
        mountReadOnly: Bool? = nil, options: ((inout MountOptions) -> Void)? = nil
    ) throws {
        _ = TestEnvironment.staleStateCleaned
        let fileSystem = try VolumeFileSystem(
            store: store, volumeID: volumeID, quotaBytes: quotaBytes, readOnly: readOnly)
        var mountOptions = VolumeFileSystem.recommendedMountOptions(
            volumeID: volumeID, readOnly: mountReadOnly ?? readOnly)
        mountOptions.fsName = "vfstest-\(getpid())"
        mountOptions.subtype = TestEnvironment.subtype
        options?(&mountOptions)
        var template = Array((TestEnvironment.mountPrefix + "XXXXXX").utf8CString)
        guard let created = mkdtemp(&template) else { throw Errno.current }
        let path = String(cString: created)
        let session: FUSESession
        do {
            session = try FUSESession(fileSystem: fileSystem, mountPoint: path, options: mountOptions)
        } catch {
            rmdir(path)
            throw error
        }
        self.path = path
        self.volumeID = volumeID
        self.fileSystem = fileSystem
        self.session = session
        let finished = self.finished
        let thread = Thread {
            try? session.run(threads: 8)
            finished.signal()
        }
        thread.name = "vfs-test-loop"
        thread.start()
    }

    func url(_ name: String) -> String {
        "\(path)/\(name)"
    }

    /// Unmounts (lazily if busy), joins the loop, drops the session and the file system, and
    /// removes the mount point. Safe to call twice.
    func tearDown(sourceLocation: SourceLocation = #_sourceLocation) {
        guard !tornDown, let session else { return }
        tornDown = true
        do {
            try session.unmount()
        } catch {
            Issue.record("unmount failed: \(error); detaching", sourceLocation: sourceLocation)
            _ = umount2(path, Int32(MNT_DETACH))
        }
        if finished.wait(timeout: .now() + 15) == .timedOut {
            Issue.record("session loop did not return after unmount; aborting", sourceLocation: sourceLocation)
            try? session.abortConnection()
            _ = umount2(path, Int32(MNT_DETACH))
            _ = finished.wait(timeout: .now() + 5)
        }
        self.session = nil
        self.fileSystem = nil
        rmdir(path)
    }
}

/// Creates a store, mounts `volumes` (one mount each; repeat an ID for two mounts of one
/// volume), runs `body`, and tears everything down whatever happens.
func withVolumes<T>(
    _ volumes: [String] = ["vol-1"], capacity: Int = 256 << 20, quotaBytes: Int = 0,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: (TestStore, [TestMount]) throws -> T
) throws -> T {
    let store = try TestStore(capacity: capacity)
    defer { store.tearDown() }
    var mounts: [TestMount] = []
    defer { for mount in mounts.reversed() { mount.tearDown(sourceLocation: sourceLocation) } }
    for volume in volumes {
        mounts.append(try TestMount(store: store.store, volumeID: volume, quotaBytes: quotaBytes))
    }
    return try body(store, mounts)
}

/// One volume, one mount.
func withVolume<T>(
    capacity: Int = 256 << 20, quotaBytes: Int = 0, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: (TestStore, TestMount) throws -> T
) throws -> T {
    try withVolumes(["vol-1"], capacity: capacity, quotaBytes: quotaBytes, sourceLocation: sourceLocation) {
        store, mounts in try body(store, mounts[0])
    }
}

/// Waits (up to 5 s) until no version is being written any more: files created or truncated
/// but never written are published at RELEASE, which the kernel sends after close returns.
func waitForPublication(_ store: ObjectStore) {
    for _ in 0..<250 where store.usage.unsealedCount > 0 { usleep(20_000) }
}
