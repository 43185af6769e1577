import Foundation
import GRPCTransport
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Handler

/// Routes the test methods:
/// - `/t/echo`: answers the payload.
/// - `/t/fail`: first byte is the status code, the rest the UTF-8 message.
/// - `/t/sleep`: sleeps for the milliseconds in the payload (decimal text), answers "done".
/// - `/t/deadline`: answers "none" or the whole milliseconds left until the deadline.
/// - `/t/hang`: never answers on its own (until `release()` or 30 s).
/// - anything else: UNIMPLEMENTED.
final class TestHandler: UnaryHandler {
    private let started = Mutex<Int>(0)
    private let released = Mutex<Bool>(false)

    /// How many `/t/sleep` and `/t/hang` calls have started.
    var startedCount: Int { started.withLock { $0 } }

    /// Lets every `/t/hang` call finish.
    func release() { released.withLock { $0 = true } }

    func handle(_ request: UnaryRequest) async -> Result<[UInt8], RPCStatus> {
        switch request.method {
        case "/t/echo":
            return .success(request.payload)
        case "/t/fail":
            let code = StatusCode(rawValue: Int32(request.payload.first ?? 2))
            return .failure(RPCStatus(code, String(decoding: request.payload.dropFirst(), as: UTF8.self)))
        case "/t/sleep":
            started.withLock { $0 += 1 }
            let milliseconds = Int(String(decoding: request.payload, as: UTF8.self)) ?? 0
            try? await Task.sleep(for: .milliseconds(milliseconds))
            return .success(Array("done".utf8))
        case "/t/deadline":
            guard let deadline = request.deadline else { return .success(Array("none".utf8)) }
            let left = ContinuousClock.now.duration(to: deadline)
            return .success(Array("\(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)".utf8))
        case "/t/hang":
            started.withLock { $0 += 1 }
            let clock = ContinuousClock()
            let giveUp = clock.now.advanced(by: .seconds(30))
            while !released.withLock({ $0 }) && clock.now < giveUp {
                try? await Task.sleep(for: .milliseconds(10))
            }
            return .success(Array("late".utf8))
        default:
            return .failure(RPCStatus(.unimplemented, "no method \(request.method)"))
        }
    }
}

// MARK: - Scaffolding

/// A fresh directory under /tmp (short, so socket paths fit), removed afterwards even on failure.
func withTemporaryDirectory<R>(_ body: (String) async throws -> R) async throws -> R {
    var template = Array("/tmp/grpct.XXXXXX".utf8CString)
    let path: String = try template.withUnsafeMutableBufferPointer { buffer in
        guard let result = mkdtemp(buffer.baseAddress!) else { throw POSIXError(.EIO) }
        return String(cString: result)
    }
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

/// Starts a server, runs `body`, and shuts the server down afterwards even on failure.
func withServer<R>(
    _ endpoint: Endpoint,
    socketMode: UInt32 = 0o660,
    handler: any UnaryHandler = TestHandler(),
    _ body: (UnaryServer) async throws -> R
) async throws -> R {
    let server = try UnaryServer(endpoint: endpoint, socketMode: socketMode, handler: handler)
    defer { server.shutdown(gracePeriod: .zero) }
    return try await body(server)
}

/// Runs blocking work on a thread of its own, off the concurrency pool.
func onThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: work()) }.start()
    }
}

/// The outcome of a call as a `Result`, for `#expect` comparisons.
func outcome(_ body: () async throws(RPCStatus) -> [UInt8]) async -> Result<[UInt8], RPCStatus> {
    do { return .success(try await body()) } catch { return .failure(error) }
}

/// File type and permission bits of `path` (lstat), or nil when it does not exist.
func fileMode(_ path: String) -> mode_t? {
    var info = stat()
    guard lstat(path, &info) == 0 else { return nil }
    return info.st_mode
}

func isSocket(_ path: String) -> Bool {
    guard let mode = fileMode(path) else { return false }
    return mode & S_IFMT == S_IFSOCK
}

/// Leaves a unix socket file at `path` that nobody listens on (as a crashed server would).
func makeStaleSocket(at path: String) throws {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EIO) }
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { bytes in
        for (index, byte) in path.utf8.enumerated() { bytes[index] = byte }
        bytes[path.utf8.count] = 0
    }
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
}

/// The blocking overload of ``UnaryClient/call(_:_:timeout:)``, run on a thread of its own: blocking
/// a concurrency-pool thread while this process's own server needs the pool could starve it.
func callBlocking(
    _ client: UnaryClient, _ method: String, _ request: [UInt8], timeout: Duration? = nil
) async throws(RPCStatus) -> [UInt8] {
    let result: Result<[UInt8], RPCStatus> = await onThread {
        do throws(RPCStatus) {
            return .success(try client.call(method, request, timeout: timeout))
        } catch {
            return .failure(error)
        }
    }
    return try result.get()
}

/// `count` bytes of an xorshift sequence (fast even in debug builds).
func pseudoRandomBytes(count: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    var state = seed
    bytes.withUnsafeMutableBytes { raw in
        let words = raw.count / 8
        for index in 0..<words {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            raw.storeBytes(of: state, toByteOffset: index * 8, as: UInt64.self)
        }
        for index in (words * 8)..<raw.count { raw[index] = UInt8(truncatingIfNeeded: state >> (index % 8)) }
    }
    return bytes
}

/// Byte-wise equality via memcmp (Array's `==` is slow in debug builds).
func sameBytes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    return a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 } }
}
