//
// vineyard-csi: FUSEKitTests
//
// A connection served by one session, handed over, and served on by another without INIT.

import Foundation
@testable import FUSEKit
import Glibc
import Synchronization
import Testing

@Suite("Handing a connection over", .serialized, .enabled(if: TestEnvironment.canMount, "needs /dev/fuse and root"))
struct HandoverTests {
    final class Served: @unchecked Sendable {
        let session: HandoverSession
        let finished = DispatchSemaphore(value: 0)

        init(_ session: HandoverSession) {
            self.session = session
            Thread { [self] in
                try? session.run(threads: 3)
                finished.signal()
            }.start()
        }
    }

    @Test("a resumed session serves the same mount, open files included, without a new INIT")
    func resume() throws {
        _ = TestEnvironment.staleMountsCleaned
        var template = Array((TestEnvironment.directoryPrefix + "XXXXXX").utf8CString)
        let path = String(cString: try #require(mkdtemp(&template)))
        defer { rmdir(path) }
        let options = MountOptions(
            fsName: "fusekit-test-\(getpid())", subtype: TestEnvironment.subtype, maxWrite: 1 << 20, directIOMappable: true)
        let fd = try FUSEDevice.mount(at: path, options: options)
        defer { try? FUSEDevice.unmount(path) }
        let fileSystem = InMemoryFileSystem()

        let first = Served(try HandoverSession(fileSystem: fileSystem, fileDescriptor: dup(fd), mountPoint: path, options: options))
        #expect(!first.session.resumed)
        let record = first.session.initRecord
        #expect(record.protocolMinor >= 38)
        // What the first session agreed to beyond libfuse (its own INIT answer) travels along.
        let offered = InitNegotiation.offered(record.request).contains(.directIOMmap)  // Linux 6.6+
        #expect(first.session.connection?.directIOMappable == offered && record.directIOMappable == offered)
        try POSIX.writeFile(path + "/f", Array(repeating: 7, count: 3 << 20))
        let open = POSIX.open(path + "/f", O_RDONLY)
        try #require(open >= 0)

        #expect(first.session.handOver(timeout: 5))
        #expect(first.finished.wait(timeout: .now() + 5) == .success)

        // Requests made while nobody serves wait in the kernel for the next session.
        let reader = DispatchSemaphore(value: 0)
        let readBack = Mutex<[UInt8]>([])
        Thread {
            let bytes = (try? POSIX.preadAll(open, count: 3 << 20, at: 0)) ?? []
            readBack.withLock { $0 = bytes }
            reader.signal()
        }.start()
        #expect(reader.wait(timeout: .now() + 0.3) == .timedOut)

        let second = Served(
            try HandoverSession(
                fileSystem: fileSystem, fileDescriptor: dup(fd), mountPoint: path, options: MountOptions(), resuming: record))
        #expect(second.session.resumed)
        #expect(second.session.connection?.maxWrite == first.session.connection?.maxWrite)
        #expect(second.session.connection?.enabled == first.session.connection?.enabled)
        #expect(second.session.connection?.directIOMappable == offered)
        #expect(reader.wait(timeout: .now() + 5) == .success)
        #expect(readBack.withLock { $0 } == Array(repeating: 7, count: 3 << 20))
        if record.kernelSupportsResend {
            try second.session.requestResend()
        }
        try POSIX.writeFile(path + "/g", [1, 2, 3])
        #expect(try POSIX.readFile(path + "/g") == [1, 2, 3])
        #expect(fileSystem.initializations.load(ordering: .relaxed) == 2)  // two sessions, one kernel INIT

        close(open)
        close(fd)
        try second.session.unmount()
        #expect(second.finished.wait(timeout: .now() + 10) == .success)
    }
}
