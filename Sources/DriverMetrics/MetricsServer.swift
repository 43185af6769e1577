import Glibc
import Synchronization

/// Why the metrics endpoint could not start.
public struct MetricsServerError: Error, CustomStringConvertible {
    public var description: String
}

/// A listening TCP socket answering `GET /metrics` with the Prometheus text format: HTTP/1.1,
/// one request per connection, served one at a time on a thread of its own (scrapes come every
/// few seconds; no web framework needed for that).
public final class MetricsServer: Sendable {
    /// The address actually bound (port resolved when 0 was asked for), e.g. `127.0.0.1:9810`.
    public let boundAddress: String
    private let listener: Int32
    private let stopped = Atomic<Bool>(false)
    private let metrics: DriverMetrics

    /// Binds `address` and starts serving.
    public init(address: MetricsAddress, metrics: DriverMetrics) throws(MetricsServerError) {
        self.metrics = metrics
        (listener, boundAddress) = try Self.listen(host: address.host, port: address.port)
        do throws(MetricsServerError) {
            try Self.startThread { [self] in acceptLoop() }
        } catch {
            close(listener)
            throw error
        }
    }

    /// Stops accepting; a scrape being answered finishes.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        shutdown(listener, Int32(SHUT_RDWR))
    }

    // MARK: - Address

    private static func listen(host: String?, port: String) throws(MetricsServerError) -> (Int32, String) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, port, &hints, &list)
        guard status == 0, let first = list else {
            throw MetricsServerError(description: "metrics address \(host ?? ""):\(port): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = EADDRNOTAVAIL
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { lastError = errno; continue }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0, Glibc.listen(fd, 16) == 0 else {
                lastError = errno
                close(fd)
                continue
            }
            return (fd, boundName(fd))
        }
        throw MetricsServerError(
            description: "cannot listen on \(host ?? ""):\(port) for metrics: \(String(cString: strerror(lastError)))")
    }

    private static func boundName(_ fd: Int32) -> String {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let named = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                getsockname(fd, address, &length) == 0
                    && getnameinfo(
                        address, length, &host, socklen_t(host.count), &service, socklen_t(service.count),
                        NI_NUMERICHOST | NI_NUMERICSERV) == 0
            }
        }
        guard named else { return "?" }
        let hostText = Self.text(host)
        let port = Self.text(service)
        return hostText.contains(":") ? "[\(hostText)]:\(port)" : "\(hostText):\(port)"
    }

    private static func text(_ cString: [CChar]) -> String {
        String(decoding: cString.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: - Serving

    private final class ThreadBody {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    /// A detached thread: accept(2) blocks, so it must not hold a thread of Swift's pool.
    private static func startThread(_ body: @escaping @Sendable () -> Void) throws(MetricsServerError) {
        let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { context in
            Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue().run()
            return nil
        }, context)
        guard status == 0 else {
            Unmanaged<ThreadBody>.fromOpaque(context).release()
            throw MetricsServerError(description: "cannot start the metrics thread: \(String(cString: strerror(status)))")
        }
        pthread_detach(thread)
    }

    private func acceptLoop() {
        defer { close(listener) }
        while !stopped.load(ordering: .acquiring) {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                if errno == EMFILE || errno == ENFILE { usleep(100_000); continue }
                return  // shut down by stop()
            }
            serve(connection)
            close(connection)
        }
    }

    /// Reads one request head and answers it. A client that sends nothing for 5 s is dropped,
    /// so one stuck scraper cannot keep the others out.
    private func serve(_ connection: Int32) {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard let head = readHead(connection) else { return }
        let response = HTTPResponse.answer(head, metrics: metrics)
        writeAll(connection, response)
    }

    private func readHead(_ connection: Int32) -> [UInt8]? {
        var head: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 2048)
        while head.count < 16 * 1024 {
            let count = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return nil }
            head += chunk[..<count]
            if HTTPResponse.headEnds(head) { return head }
        }
        return head  // oversized: answered 431 by the parser
    }

    private func writeAll(_ connection: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes {
                send(connection, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }
            offset += count
        }
    }
}
