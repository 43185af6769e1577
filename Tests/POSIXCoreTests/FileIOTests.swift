//
// vineyard-csi: POSIXCoreTests
//

import Glibc
import POSIXCore
import Synchronization
import Testing

@Suite("FileIO and the signal policy")
struct FileIOTests {
    @Test("a /proc file (size 0 in stat) is read to its end")
    func readsProcFiles() throws {
        let bytes = try FileIO.readAll(atPath: "/proc/self/mountinfo")
        #expect(String(decoding: bytes, as: UTF8.self).contains(" / / "))
        #expect(throws: Errno.noEntry) { try FileIO.readAll(atPath: "/nonexistent/posixcore") }
    }

    @Test("writeAll finishes a write larger than a pipe holds")
    func writesEverything() throws {
        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        defer { close(ends[0]) }
        let payload = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let readEnd = ends[0]
        let received = Mutex<[UInt8]>([])
        let reader = Thread {
            var chunk = [UInt8](repeating: 0, count: 4096)
            while let count = try? FileIO.read(readEnd, into: &chunk), count > 0 {
                received.withLock { $0.append(contentsOf: chunk[0..<count]) }
            }
        }
        try FileIO.writeAll(ends[1], payload)
        close(ends[1])
        reader.join()
        #expect(received.withLock { $0 } == payload)
    }

    @Test("with the policy applied, a write to a closed pipe fails with EPIPE and the process lives")
    func brokenPipeIsAnError() throws {
        ProcessSignals.applyPolicy()
        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        close(ends[0])
        defer { close(ends[1]) }
        #expect(throws: Errno.brokenPipe) {
            try FileIO.writeAll(ends[1], Array("line\n".utf8))
        }
        var previous = sigaction()
        sigaction(SIGPIPE, nil, &previous)
        #expect(unsafeBitCast(previous.__sigaction_handler.sa_handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self))
    }

    @Test("a SIGTERM reaches the stop handler instead of ending the process")
    func stopRequests() {
        let received = Atomic<Int32>(0)
        let handling = ProcessSignals.handleStopRequests { number in received.store(number, ordering: .relaxed) }
        defer {
            handling.cancel()
            signal(SIGTERM, SIG_DFL)
            signal(SIGINT, SIG_DFL)
        }
        kill(getpid(), SIGTERM)
        for _ in 0..<500 where received.load(ordering: .relaxed) == 0 { usleep(10_000) }
        #expect(received.load(ordering: .relaxed) == SIGTERM)
    }

    @Test("a control file is written without being created")
    func writesExistingFilesOnly() {
        #expect(throws: Errno.noEntry) { try FileIO.write("1", toExistingFile: "/tmp/posixcore-absent-\(getpid())") }
    }
}
