//
// vineyard-csi: POSIXCoreTests
//
// The syscall helper against the real kernel: a real signal interrupting a real blocked read.

import Glibc
import POSIXCore
import Synchronization
import Testing

@Suite("syscall")
struct SyscallTests {
    @Test("a read interrupted by a signal is retried and returns the data")
    func retriesInterruptedCalls() throws {
        // A handler without SA_RESTART: the kernel fails the blocked read with EINTR.
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        action.sa_flags = 0
        var previous = sigaction()
        sigaction(SIGUSR1, &action, &previous)
        defer { sigaction(SIGUSR1, &previous, nil) }

        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        let readEnd = ends[0]
        let attempts = Atomic<Int>(0)
        let result = Mutex<Result<Int, Errno>?>(nil)
        let reader = Thread {
            // Threads start with their creator's mask, and the test runner's block signals.
            var unblocked = sigset_t()
            sigemptyset(&unblocked)
            sigaddset(&unblocked, SIGUSR1)
            pthread_sigmask(SIG_UNBLOCK, &unblocked, nil)
            var byte: UInt8 = 0
            let outcome = Result { () throws(Errno) in
                try syscall { () -> Int in
                    attempts.add(1, ordering: .relaxed)
                    return read(readEnd, &byte, 1)
                }
            }
            result.withLock { $0 = outcome }
        }
        // Signal until the blocked read has been interrupted at least once, then feed it.
        for _ in 0..<500 where attempts.load(ordering: .relaxed) < 2 {
            usleep(10_000)
            if attempts.load(ordering: .relaxed) >= 1 { reader.signal(SIGUSR1) }
        }
        #expect(attempts.load(ordering: .relaxed) >= 2)
        var byte: UInt8 = 42
        #expect(write(ends[1], &byte, 1) == 1)
        reader.join()
        #expect(try result.withLock { try $0?.get() } == 1)
    }

    @Test("a failure throws the typed errno")
    func throwsTypedErrno() {
        #expect(throws: Errno.badFileDescriptor) { try syscall { close(-1) } }
        #expect(throws: Errno.noEntry) { try syscall { open("/nonexistent/posixcore", O_RDONLY) } }
    }

    @Test("a non-blocking call with nothing to do is nil, not an error")
    func wouldBlockIsNil() throws {
        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        _ = fcntl(ends[0], F_SETFL, O_NONBLOCK)
        var byte: UInt8 = 0
        #expect(try nonBlockingSyscall { read(ends[0], &byte, 1) } == nil)
        byte = 7
        _ = write(ends[1], &byte, 1)
        #expect(try nonBlockingSyscall { read(ends[0], &byte, 1) } == 1)
        #expect(throws: Errno.badFileDescriptor) { try nonBlockingSyscall { read(-1, &byte, 1) } }
    }

    @Test("functions that return an error number throw it")
    func returnedErrno() throws {
        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        #expect(throws: Errno(rawValue: ESPIPE)) { try syscallReturningErrno { posix_fallocate(ends[1], 0, 4096) } }
        let file = "/tmp/posixcore-fallocate-\(getpid())"
        let fd = try syscall { open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0o600) }
        defer { close(fd); unlink(file) }
        try syscallReturningErrno { posix_fallocate(fd, 0, 4096) }
        var info = stat()
        #expect(fstat(fd, &info) == 0 && info.st_size == 4096)
    }
}

extension SyscallTests {
    @Test("a mapping is an address or the errno, never MAP_FAILED")
    func mappings() throws {
        let address = try syscallMapping { mmap(nil, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) }
        address.storeBytes(of: 7, as: UInt8.self)
        #expect(address.load(as: UInt8.self) == 7)
        munmap(address, 4096)
        #expect(throws: Errno.badFileDescriptor) { try syscallMapping { mmap(nil, 4096, PROT_READ, MAP_SHARED, -1, 0) } }
    }
}

/// A pthread, so that a test can signal exactly the thread that blocks.
final class Thread: @unchecked Sendable {
    private var thread = pthread_t()
    private let body: () -> Void

    init(_ body: @escaping @Sendable () -> Void) {
        self.body = body
        let context = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { context in
            let this = Unmanaged<Thread>.fromOpaque(context!).takeRetainedValue()
            this.body()
            return nil
        }, context)
    }

    func signal(_ number: Int32) { pthread_kill(thread, number) }

    func join() { pthread_join(thread, nil) }
}
