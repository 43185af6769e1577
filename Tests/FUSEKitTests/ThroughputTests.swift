//
// vineyard-csi: FUSEKitTests
//
// Opt-in throughput check: FUSEKIT_BENCH=1 swift test --filter FUSEKitTests.Throughput
// (FUSEKIT_BENCH_MB=<MiB> for the size, FUSEKIT_BENCH_RA=<KiB> for MountOptions.readAheadKilobytes).
// Streams 1 GiB with dd through the in-memory test file system (both read paths) and through
// /dev/shm, and prints MB/s. Asserts only that the bytes arrive.

import Foundation
@testable import FUSEKit
import Glibc
import Synchronization
import Testing

@Suite(
    "Throughput", .serialized,
    .enabled(if: TestEnvironment.canMount && ProcessInfo.processInfo.environment["FUSEKIT_BENCH"] != nil)
)
struct ThroughputTests {
    static let megabytes = Int(ProcessInfo.processInfo.environment["FUSEKIT_BENCH_MB"] ?? "") ?? 1024

    /// Runs dd and returns bytes per second parsed from its summary line.
    func dd(_ arguments: [String]) throws -> Double {
        let result = try POSIX.run("/usr/bin/dd", arguments)
        #expect(result.status == 0, "\(String(decoding: result.error, as: UTF8.self))")
        // "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 0.51 s, 2.1 GB/s"
        let text = String(decoding: result.error, as: UTF8.self)
        guard let line = text.split(separator: "\n").first(where: { $0.contains("copied") }) else { return 0 }
        let fields = line.split(separator: ",")
        let bytes = Double(line.split(separator: " ").first ?? "") ?? 0
        let seconds = fields.count >= 3 ? Double(fields[fields.count - 2].split(separator: " ").first ?? "") ?? 0 : 0
        return seconds > 0 ? bytes / seconds : 0
    }

    func measure(directory: String, label: String) throws -> (write: Double, read: Double) {
        let path = directory + "/bench.bin"
        let write = try dd(["if=/dev/zero", "of=\(path)", "bs=1M", "count=\(Self.megabytes)", "conv=fsync"])
        let read = try dd(["if=\(path)", "of=/dev/null", "bs=1M"])
        #expect(try POSIX.status(path).st_size == off_t(Self.megabytes) << 20)
        unlink(path)
        print(
            "throughput \(label): write \(Int(write / 1e6)) MB/s, read \(Int(read / 1e6)) MB/s "
                + "(\(Self.megabytes) MiB, bs=1M)")
        return (write, read)
    }

    @Test("dd through the mount vs /dev/shm")
    func compare() throws {
        var template = Array("/dev/shm/fusekit-bench-XXXXXX".utf8CString)
        let shm = String(cString: try #require(mkdtemp(&template)))
        defer { rmdir(shm) }
        let baseline = try measure(directory: shm, label: "/dev/shm")

        for readPath in [InMemoryFileSystem.ReadPath.buffer, .fileDescriptor] {
            let fileSystem = InMemoryFileSystem(readPath: readPath)
            let options = MountOptions(
                readAheadKilobytes: ProcessInfo.processInfo.environment["FUSEKIT_BENCH_RA"].flatMap { Int($0) })
            try withMount(fileSystem: fileSystem, options: options) { mount in
                let result = try measure(directory: mount.path, label: "fuse (\(readPath))")
                print(
                    "throughput fuse (\(readPath)) / shm: write \(String(format: "%.2f", result.write / baseline.write)), "
                        + "read \(String(format: "%.2f", result.read / baseline.read)); largest request: "
                        + "write \(fileSystem.largestWrite.load(ordering: .relaxed)), "
                        + "read \(fileSystem.largestRead.load(ordering: .relaxed))")
            }
        }
    }
}
