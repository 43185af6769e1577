// vineyard-csi: SharedMemoryStoreTests
// TestSupport.swift: temporary stores, deterministic bytes, threads and child processes.

import Foundation
import Glibc
import Testing

@testable import SharedMemoryStore

/// A failure raised by test plumbing.
struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body` with a fresh directory on `/dev/shm` (tmpfs, like production) that is removed
/// when `body` returns or throws.
func withTemporaryDirectory<R>(_ body: (String) throws -> R) throws -> R {
    var template = Array("/dev/shm/sms-test-XXXXXX".utf8CString)
    guard let created = mkdtemp(&template) else { throw TestFailure("mkdtemp failed: errno \(errno)") }
    let directory = String(cString: created)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    return try body(directory)
}

/// A test configuration: small capacity, a fixed boot identifier (so tests can simulate a
/// reboot by changing it).
func testConfiguration(_ directory: String, capacity: Int = 64 << 20, prefault: Int = 0) -> StoreConfiguration {
    var configuration = StoreConfiguration(directory: directory + "/store", capacity: capacity, prefault: prefault)
    configuration.bootID = "test-boot"
    configuration.blobFileThreshold = forcedBlobFileThreshold
    return configuration
}

/// Capacity a sealed blob of `size` bytes, written with `put`, takes: 64-byte granules in the
/// arena, pages in a file of its own.
func accountedBytes(_ size: Int, ownFile: Bool? = nil) -> Int {
    let inFile = ownFile ?? forcedBlobFileThreshold.map { size >= $0 } ?? false
    return inFile ? ArenaAllocator.roundUp(size, to: Sys.pageSize) : ArenaAllocator.roundUp(size)
}

/// Capacity the store's sealed objects take, from their handles.
func sealedBytesUsed(_ store: ObjectStore) -> Int {
    store.objectIDs().compactMap { store.object($0) }.reduce(0) { $0 + accountedBytes($1.size, ownFile: $1.isOwnFile) }
}

/// For tests that assert arena placement (offsets, the arena descriptor, warm memory): they run
/// only when blob files are not forced on.
let arenaPlacementOnly = Testing.ConditionTrait.enabled(if: forcedBlobFileThreshold == nil, "asserts arena placement")

/// `SMS_BLOB_FILE_THRESHOLD=<bytes>` runs the suites with blobs of that size and more in files
/// of their own (every store the tests open through ``testConfiguration(_:capacity:prefault:)``).
let forcedBlobFileThreshold: Int? = ProcessInfo.processInfo.environment["SMS_BLOB_FILE_THRESHOLD"].flatMap { Int($0) }

/// Opens a store in a fresh temporary directory and removes it afterwards.
func withStore<R>(
    capacity: Int = 64 << 20, prefault: Int = 0, _ body: (ObjectStore, StoreConfiguration) throws -> R
) throws -> R {
    try withTemporaryDirectory { directory in
        let configuration = testConfiguration(directory, capacity: capacity, prefault: prefault)
        let store = try ObjectStore.open(configuration)
        return try body(store, configuration)
    }
}

/// Deterministic pseudo-random bytes for a seed (xorshift64*).
func pattern(seed: UInt64, count: Int) -> [UInt8] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    var bytes = [UInt8](repeating: 0, count: count)
    var index = 0
    while index < count {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        var word = state &* 0x2545_F491_4F6C_DD1D
        for _ in 0..<8 where index < count {
            bytes[index] = UInt8(truncatingIfNeeded: word)
            word >>= 8
            index += 1
        }
    }
    return bytes
}

/// Writes a whole blob, seals it, and returns its identifier.
@discardableResult
func put(_ store: ObjectStore, _ bytes: [UInt8], name: String? = nil, meta: ObjectMeta? = nil) throws -> ObjectID {
    let writer = try store.createBlob(expectedSize: bytes.count)
    try writer.append(bytes)
    return try store.seal(writer, meta: meta, name: name)
}

/// The bytes of a handle as an array.
func contents(_ handle: ObjectHandle) -> [UInt8] {
    Array(handle.bytes)
}

/// Runs `body(index)` on `count` new OS threads (not Swift concurrency threads, like FUSE's
/// workers) and waits for all of them.
func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            body(index)
            group.leave()
        }
        thread.start()
    }
    group.wait()
}

/// A value shared between test threads, behind `NSLock` (a pthread mutex, which
/// ThreadSanitizer understands).
final class Shared<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}

/// Collects failures from threads where `#expect` has no test context.
final class FailureLog: Sendable {
    private let entries = Shared<[String]>([])

    func record(_ message: String) {
        entries.withLock { $0.append(message) }
    }

    var all: [String] { entries.withLock { $0 } }
}

/// The path of a usable `python3`, if any.
let python3: String? = ["/usr/bin/python3", "/usr/local/bin/python3"].first { access($0, X_OK) == 0 }

/// Runs a program, returns its exit status and standard output. `stdinFD`, if given, becomes the
/// child's descriptor 0 (this is how a descriptor is handed to another process here).
func runProcess(_ executable: String, _ arguments: [String], stdinFD: Int32? = nil) throws -> (
    status: Int32, output: [UInt8], error: String
) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    if let stdinFD { process.standardInput = FileHandle(fileDescriptor: stdinFD, closeOnDealloc: false) }
    try process.run()
    let outputData = output.fileHandleForReading.readDataToEndOfFile()
    let errorData = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, Array(outputData), String(decoding: errorData, as: UTF8.self))
}

/// Re-runs this test binary filtered to one test, with `variable` set to `directory`: how the
/// crash tests run the production code in a separate process they can kill.
func launchTestChild(
    _ testName: String, variable: String, directory: String, standardError: FileHandle = .nullDevice
) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
    process.arguments = ["--testing-library", "swift-testing", "--filter", testName]
    var environment = ProcessInfo.processInfo.environment
    environment[variable] = directory
    process.environment = environment
    process.standardOutput = FileHandle.nullDevice
    process.standardError = standardError
    try process.run()
    return process
}

/// Waits (at most five minutes) until a child process creates `path`.
func waitForFile(_ path: String, createdBy process: Process) throws {
    let deadline = Date().addingTimeInterval(300)
    while !FileManager.default.fileExists(atPath: path) {
        guard process.isRunning, Date() < deadline else {
            throw TestFailure("the child never became ready (running: \(process.isRunning))")
        }
        usleep(10_000)
    }
}
