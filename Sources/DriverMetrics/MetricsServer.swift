import Glibc
import POSIXCore
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
    public var boundAddress: String { listener.boundAddress }
    private let listener: TCPListener
    private let stopped = Atomic<Bool>(false)
    private let metrics: DriverMetrics

    /// Binds `address` and starts serving.
    public init(address: MetricsAddress, metrics: DriverMetrics) throws(MetricsServerError) {
        self.metrics = metrics
        do {
            listener = try TCPListener(host: address.host, port: address.port)
        } catch {
            throw MetricsServerError(description: "metrics address: \(error)")
        }
        do {
            // accept(2) blocks, so the loop must not hold a thread of Swift's pool.
            try DetachedThread.start(name: "csi-metrics") { [self] in acceptLoop() }
        } catch {
            throw MetricsServerError(description: "cannot start the metrics thread: \(error)")
        }
    }

    /// Stops accepting; a scrape being answered finishes.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        listener.shutdown()
    }

    private func acceptLoop() {
        // A client that sends nothing for 5 s is dropped, so one stuck scraper cannot keep the
        // others out.
        while !stopped.load(ordering: .acquiring), let connection = listener.accept(timeoutSeconds: 5) {
            if let head = readHead(connection) {
                try? FileIO.writeAll(connection, HTTPResponse.answer(head, metrics: metrics))
            }
            close(connection)
        }
    }

    /// Reads up to the end of a request head.
    private func readHead(_ connection: Int32) -> [UInt8]? {
        var head: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 2048)
        while head.count < 16 * 1024 {
            guard let count = try? FileIO.read(connection, into: &chunk), count > 0 else { return nil }
            head += chunk[..<count]
            if HTTPResponse.headEnds(head) { return head }
        }
        return head  // oversized: answered 431 by the parser
    }
}
