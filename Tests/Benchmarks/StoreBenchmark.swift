// vineyard-csi: benchmarks
// StoreBenchmark.swift: SharedMemoryStore write and read costs against memcpy.

import ArgumentParser
import Foundation
import Glibc
import SharedMemoryStore

/// `vineyard-csi-bench store`: what a blob write (allocate + copy + seal) and a read (name
/// lookup + pointer) cost, against `memcpy` of the same size measured in the same run.
///
/// For each size the benchmark takes `--repetitions` samples and reports medians:
/// - **memcpy**: a copy between two buffers that are already faulted in (the ceiling).
/// - **first touch**: a copy into a fresh `MAP_SHARED` tmpfs mapping, i.e. what writing into
///   memory that was never touched costs (page faults) — what a naive arena would pay.
/// - **write cold**: the store writing into memory that is not backed (each sample deletes the
///   previous blob and trims the arena, which punches the pages out).
/// - **write warm**: the store writing into memory a deleted blob left behind.
/// - **read**: `object(named:)` + `bytes.baseAddress` + `release()`.
///
/// Small sizes are timed in batches (several operations per sample) so clock overhead does not
/// dominate. Ratios are store throughput divided by memcpy throughput (1.0 = memcpy speed).
///
/// With `--blob-files` it instead compares where a blob lives: a whole create + write + seal +
/// delete cycle with the bytes in the arena against the same cycle with the bytes in a file of
/// their own (``StoreConfiguration/blobFileThreshold``), the figure behind that threshold.
struct StoreBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Measure SharedMemoryStore writes and reads against memcpy of the same size."
    )

    @Option(help: "Object sizes in bytes (suffixes K, M, G allowed).")
    var sizes: [String] = ["4K", "1M", "64M", "1G"]

    @Option(help: "Samples per size and mode; the median is reported.")
    var repetitions = 7

    @Option(help: "Store capacity (suffixes K, M, G allowed).")
    var capacity = "4G"

    @Option(help: "Parent directory for the benchmark store (a tmpfs, like production).")
    var directory = "/dev/shm"

    @Option(help: "Read lookups per sample.")
    var lookups = 20_000

    @Flag(help: "Compare create+write+seal+delete cycles in the arena against blobs in files of their own.")
    var blobFiles = false

    func validate() throws {
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1") }
        for size in sizes where StoreBenchmark.parseSize(size) == nil {
            throw ValidationError("cannot parse size \(size)")
        }
        guard StoreBenchmark.parseSize(capacity) != nil else { throw ValidationError("cannot parse capacity") }
    }

    func run() throws {
        let sizes = self.sizes.compactMap(StoreBenchmark.parseSize)
        let capacity = StoreBenchmark.parseSize(capacity)!
        guard let largest = sizes.max(), largest * 2 <= capacity else {
            throw ValidationError("the capacity must hold twice the largest size")
        }
        var template = Array("\(directory)/vineyard-csi-store-bench-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else { throw ValidationError("mkdtemp failed in \(directory)") }
        let root = String(cString: created)
        defer { try? FileManager.default.removeItem(atPath: root) }

        let store = try ObjectStore.open(StoreConfiguration(directory: root + "/store", capacity: capacity))
        if blobFiles {
            try compareBlobFiles(sizes: sizes, store: store)
            return
        }
        print(
            "SharedMemoryStore benchmark: capacity \(StoreBenchmark.format(bytes: capacity)), \(repetitions) samples per cell, medians"
        )
        print("arena \(store.arenaInfo.path), MADV_HUGEPAGE accepted: \(store.hugePagesAdvised)")
        print("")

        var rows: [Row] = []
        var hugePages = 0
        for size in sizes {
            rows.append(try measure(size: size, store: store, root: root, hugePages: &hugePages))
        }
        printTable(rows)
        print("huge pages seen mapped in this process during warm writes: \(hugePages >> 20) MiB (ShmemPmdMapped)")
        let seals = rows.first { $0.size == 4096 }.map { 1 / $0.writeWarm }
        if let seals { print("\nsmall-object seals (4 KiB, warm, including the log record): \(Int(seals)) per second") }
    }

    // MARK: - Measurement

    struct Row {
        var size: Int
        var memcpy: Double  // seconds per operation
        var firstTouch: Double
        var writeCold: Double
        var writeWarm: Double
        var read: Double
    }

    private func measure(size: Int, store: ObjectStore, root: String, hugePages: inout Int) throws -> Row {
        let batch = max(1, min(1000, (64 << 20) / size))
        let source = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
        let target = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
        defer {
            source.deallocate()
            target.deallocate()
        }
        var generator = SystemRandomNumberGenerator()
        for offset in stride(from: 0, to: size, by: 8) where offset + 8 <= size {
            source.storeBytes(of: generator.next() as UInt64, toByteOffset: offset, as: UInt64.self)
        }
        memset(target, 1, size)
        let sourceBytes = UnsafeRawBufferPointer(start: source, count: size)

        // memcpy into a warm buffer.
        var samples: [Double] = []
        for _ in 0..<repetitions {
            samples.append(
                StoreBenchmark.time {
                    for _ in 0..<batch { memcpy(target, source, size) }
                } / Double(batch))
        }
        let memcpyTime = StoreBenchmark.median(samples)
        StoreBenchmark.blackHole(target.load(fromByteOffset: size - 1, as: UInt8.self))

        // memcpy into never-touched tmpfs memory.
        let firstTouch = try measureFirstTouch(size: size, batch: batch, source: source, root: root)

        // Store writes. A name per batch slot; sealing binds it, as a FUSE close would.
        func writeBatch() throws -> [ObjectID] {
            var ids: [ObjectID] = []
            ids.reserveCapacity(batch)
            for index in 0..<batch {
                let writer = try store.createBlob(expectedSize: size)
                try writer.append(sourceBytes)
                ids.append(try store.seal(writer, name: "bench/\(size)/\(index)"))
            }
            return ids
        }
        func deleteAll(_ ids: [ObjectID]) throws {
            for id in ids { try store.delete(id) }
        }

        var cold: [Double] = []
        for _ in 0..<repetitions {
            store.trim()  // every free page goes back to the host: the next write starts cold
            var ids: [ObjectID] = []
            cold.append(try StoreBenchmark.timeThrowing { ids = try writeBatch() } / Double(batch))
            try deleteAll(ids)
        }
        var warm: [Double] = []
        var ids = try writeBatch()  // warm-up: fault the range in once
        for _ in 0..<repetitions {
            try deleteAll(ids)
            warm.append(try StoreBenchmark.timeThrowing { ids = try writeBatch() } / Double(batch))
        }

        hugePages = max(hugePages, StoreBenchmark.hugePageBytes())

        // Reads: name lookup, pointer, release. The object stays as written by the last batch.
        var reads: [Double] = []
        var checksum: UInt = 0
        for _ in 0..<repetitions {
            let perLookup =
                StoreBenchmark.time {
                    for _ in 0..<lookups {
                        guard let handle = store.object(named: "bench/\(size)/0") else { fatalError("missing object") }
                        checksum &+= UInt(bitPattern: handle.bytes.baseAddress) &+ UInt(handle.bytes.count)
                        handle.release()
                    }
                } / Double(lookups)
            reads.append(perLookup)
        }
        StoreBenchmark.blackHole(UInt8(truncatingIfNeeded: checksum))
        // Check the bytes once, outside the timing.
        if let handle = store.object(named: "bench/\(size)/0"), memcmp(handle.bytes.baseAddress!, source, size) != 0 {
            fatalError("read back different bytes")
        }
        try deleteAll(ids)
        store.trim()

        return Row(
            size: size, memcpy: memcpyTime, firstTouch: firstTouch, writeCold: StoreBenchmark.median(cold),
            writeWarm: StoreBenchmark.median(warm), read: StoreBenchmark.median(reads))
    }

    /// A copy into a fresh tmpfs file mapping: every page faults on first write.
    private func measureFirstTouch(size: Int, batch: Int, source: UnsafeRawPointer, root: String) throws -> Double {
        var samples: [Double] = []
        let path = root + "/first-touch"
        for _ in 0..<repetitions {
            let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
            guard fd >= 0, ftruncate(fd, off_t(size * batch)) == 0,
                let mapping = mmap(nil, size * batch, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), mapping != MAP_FAILED
            else { throw ValidationError("cannot map \(path): errno \(errno)") }
            samples.append(
                StoreBenchmark.time {
                    for index in 0..<batch { memcpy(mapping + index * size, source, size) }
                } / Double(batch))
            munmap(mapping, size * batch)
            close(fd)
            unlink(path)
        }
        return StoreBenchmark.median(samples)
    }

    // MARK: - Arena or own file

    /// Seconds per create + write + seal (with a name) + delete cycle, median of the samples;
    /// each sample runs a batch of creates and then deletes them all (so the arena reuses warm
    /// memory, as steady-state traffic does), after one unmeasured warm-up batch.
    private func cycle(size: Int, placement: BlobPlacement, store: ObjectStore, source: UnsafeRawBufferPointer) throws
        -> Double
    {
        let batch = max(1, min(256, (64 << 20) / size))
        func run() throws {
            var ids: [ObjectID] = []
            ids.reserveCapacity(batch)
            for index in 0..<batch {
                let writer = try store.createBlob(expectedSize: size, placement: placement)
                try writer.append(source)
                ids.append(try store.seal(writer, name: "cycle/\(size)/\(index)"))
            }
            for id in ids { try store.delete(id) }
        }
        try run()
        var samples: [Double] = []
        for _ in 0..<repetitions { samples.append(try StoreBenchmark.timeThrowing { try run() } / Double(batch)) }
        return StoreBenchmark.median(samples)
    }

    private func compareBlobFiles(sizes: [Int], store: ObjectStore) throws {
        print(
            "create+write+seal+delete per blob, arena vs own file: \(repetitions) samples per cell, medians, "
                + "MADV_HUGEPAGE accepted: \(store.hugePagesAdvised)\n")
        var lines: [[String]] = [["size", "arena", "arena GB/s", "own file", "own file GB/s", "file / arena"]]
        for size in sizes {
            let source = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
            defer { source.deallocate() }
            memset(source, 0x5A, size)
            let bytes = UnsafeRawBufferPointer(start: source, count: size)
            let arena = try cycle(size: size, placement: .arena, store: store, source: bytes)
            let file = try cycle(size: size, placement: .ownFile, store: store, source: bytes)
            store.trim()
            lines.append([
                StoreBenchmark.format(bytes: size), String(format: "%.1f µs", arena * 1e6),
                StoreBenchmark.format(rate: Double(size) / arena), String(format: "%.1f µs", file * 1e6),
                StoreBenchmark.format(rate: Double(size) / file), String(format: "%.2fx", file / arena),
            ])
        }
        printLines(lines)
    }

    // MARK: - Output

    private func printLines(_ lines: [[String]]) {
        let widths = (0..<lines[0].count).map { column in lines.map { $0[column].count }.max()! }
        for (index, line) in lines.enumerated() {
            let cells = line.enumerated().map { column, cell in
                column == 0
                    ? cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[column] - cell.count) + cell
            }
            print(cells.joined(separator: "  "))
            if index == 0 { print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
        }
    }

    private func printTable(_ rows: [Row]) {
        let header = [
            "size", "memcpy", "first touch", "write cold", "x memcpy", "write warm", "x memcpy", "read (lookup+ptr)",
        ]
        var lines: [[String]] = [header]
        for row in rows {
            let rate = { (seconds: Double) in StoreBenchmark.format(rate: Double(row.size) / seconds) }
            lines.append([
                StoreBenchmark.format(bytes: row.size),
                rate(row.memcpy),
                rate(row.firstTouch),
                rate(row.writeCold),
                String(format: "%.2f", row.memcpy / row.writeCold),
                rate(row.writeWarm),
                String(format: "%.2f", row.memcpy / row.writeWarm),
                String(format: "%.2f µs", row.read * 1e6),
            ])
        }
        printLines(lines)
        print("\nrates are GB/s (10^9 bytes per second); \"x memcpy\" = store throughput / memcpy throughput")
    }

    // MARK: - Helpers

    static func parseSize(_ text: String) -> Int? {
        let multipliers: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        if let last = text.last, let multiplier = multipliers[Character(last.uppercased())] {
            return Int(text.dropLast()).map { $0 * multiplier }
        }
        return Int(text)
    }

    static func format(bytes: Int) -> String {
        if bytes >= 1 << 30 && bytes % (1 << 30) == 0 { return "\(bytes >> 30) GiB" }
        if bytes >= 1 << 20 && bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        if bytes >= 1 << 10 && bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
        return "\(bytes) B"
    }

    static func format(rate bytesPerSecond: Double) -> String {
        String(format: "%.2f", bytesPerSecond / 1e9)
    }

    static func median(_ samples: [Double]) -> Double {
        let sorted = samples.sorted()
        return sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    static func time(_ body: () -> Void) -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        body()
        return (clock.now - start).seconds
    }

    static func timeThrowing(_ body: () throws -> Void) throws -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        try body()
        return (clock.now - start).seconds
    }

    /// Bytes of shared memory this process maps with PMD (2 MiB) pages right now.
    static func hugePageBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/smaps_rollup", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("ShmemPmdMapped:") {
            return (Int(line.split(separator: " ")[1]) ?? 0) * 1024
        }
        return 0
    }

    @inline(never)
    static func blackHole(_ value: UInt8) {
        if value == 0xA5 && getpid() == -1 { print(value) }
    }
}

extension Duration {
    fileprivate var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }
}
