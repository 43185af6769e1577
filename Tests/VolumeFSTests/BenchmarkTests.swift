//
// vineyard-csi: VolumeFSTests
//
// Opt-in throughput comparison with tmpfs, measured in the same run:
//   VOLUMEFS_BENCH=1 swift test -c release --scratch-path .build-vfs --filter VolumeFSTests.BenchmarkTests
// VOLUMEFS_BENCH_MB sets the dd size (default 1024 MiB), VOLUMEFS_BENCH_RA the read-ahead
// window in KiB; VOLUMEFS_BENCH_SCRIPT=<path to scripts/bench_fs.py> also runs that script
// against the mount and /dev/shm.

import FUSEKit
import Foundation
import Glibc
import SharedMemoryStore
import Testing
import VolumeFS

@Suite(
    "Benchmark", .serialized,
    .enabled(if: TestEnvironment.canMount && ProcessInfo.processInfo.environment["VOLUMEFS_BENCH"] != nil)
)
struct BenchmarkTests {
    static let environment = ProcessInfo.processInfo.environment
    static let megabytes = Int(environment["VOLUMEFS_BENCH_MB"] ?? "") ?? 1024

    /// Runs dd and returns bytes per second from its summary line.
    func dd(_ arguments: [String]) throws -> Double {
        let result = try Sys.run("/usr/bin/dd", arguments)
        #expect(result.status == 0, "\(result.errorText)")
        // "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 0.51 s, 2.1 GB/s"
        guard let line = result.errorText.split(separator: "\n").first(where: { $0.contains("copied") }) else {
            return 0
        }
        let fields = line.split(separator: ",")
        let bytes = Double(line.split(separator: " ").first ?? "") ?? 0
        let seconds = fields.count >= 3 ? Double(fields[fields.count - 2].split(separator: " ").first ?? "") ?? 0 : 0
        return seconds > 0 ? bytes / seconds : 0
    }

    /// Median of three dd write and read runs in `directory`.
    func measure(_ directory: String) throws -> (write: Double, read: Double) {
        var writes: [Double] = []
        var reads: [Double] = []
        for _ in 0..<3 {
            let path = directory + "/bench.bin"
            writes.append(try dd(["if=/dev/zero", "of=\(path)", "bs=1M", "count=\(Self.megabytes)"]))
            reads.append(try dd(["if=\(path)", "of=/dev/null", "bs=1M"]))
            unlink(path)
        }
        return (writes.sorted()[1], reads.sorted()[1])
    }

    @Test("dd write and read through the mount vs /dev/shm; per-operation latency")
    func throughput() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let store = try TestStore(capacity: (Self.megabytes << 20) * 3)
        defer { store.tearDown() }
        let readAhead = Self.environment["VOLUMEFS_BENCH_RA"].flatMap { Int($0) }
        let mount = try TestMount(store: store.store, volumeID: "bench") { options in
            if let readAhead { options.readAheadKilobytes = readAhead }
        }
        defer { mount.tearDown() }

        let shm = try measure(scratch.path)
        let volume = try measure(mount.path)
        func rate(_ value: Double) -> String { String(format: "%.0f MB/s", value / 1e6) }
        print("dd bs=1M \(Self.megabytes) MiB  /dev/shm: write \(rate(shm.write)), read \(rate(shm.read))")
        print("dd bs=1M \(Self.megabytes) MiB  volume:   write \(rate(volume.write)), read \(rate(volume.read))")
        print(
            String(
                format: "dd ratio volume/shm: write %.2f, read %.2f", volume.write / shm.write, volume.read / shm.read))

        // Per-operation latency: each miss here is one FUSE round trip.
        let latency = """
            import os, sys, time
            for d in sys.argv[1:]:
                t = time.perf_counter()
                for i in range(3000):
                    try: os.stat(d + "/missing-%d" % i)
                    except FileNotFoundError: pass
                neg = (time.perf_counter() - t) / 3000 * 1e6
                open(d + "/present", "w").close()
                t = time.perf_counter()
                for i in range(2000):
                    f = os.open(d + "/present", os.O_RDONLY); os.close(f)
                oc = (time.perf_counter() - t) / 2000 * 1e6
                print(f"{d}: negative lookup {neg:.1f} us, open+close {oc:.1f} us")
            """
        print(try Sys.run("/usr/bin/python3", ["-c", latency, scratch.path, mount.path]).text, terminator: "")
        // The file system's own share of a lookup, without the kernel round trip.
        let fileSystem = try #require(mount.fileSystem)
        let start = Timespec.now
        for index in 0..<20000 {
            _ = try? fileSystem.lookup(parent: .root, name: "missing-\(index)", context: RequestContext())
        }
        let end = Timespec.now
        let nanoseconds = (end.seconds - start.seconds) * 1_000_000_000 + end.nanoseconds - start.nanoseconds
        print(String(format: "handler only: negative lookup %.2f us", Double(nanoseconds) / 20000 / 1000))

        if let script = Self.environment["VOLUMEFS_BENCH_SCRIPT"] {
            let result = try Sys.run(
                "/usr/bin/python3", [script, scratch.path, mount.path, "--sizes", "64M,1G", "--repeats", "3"])
            print(result.text + result.errorText)
        }
    }
}
