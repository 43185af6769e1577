import CoreMetrics
import Synchronization
public import VineyardIPC

/// The volumes' `vineyard.sock`: connections, and requests by type with their latency.
final class VineyardSocketMetrics: Sendable {
    static let durationName = DriverMetrics.name("ipc_request_duration_seconds")

    private struct Handles: @unchecked Sendable {
        // swift-metrics' handles are thread-safe (the Prometheus ones are atomics).
        let count: Counter
        let errors: Counter
        let duration: Timer
    }

    private let factory: any MetricsFactory
    private let opened: Counter
    private let open: Gauge
    private let openCount = Atomic<Int>(0)
    /// By request type; made on first use (about thirty types).
    private let handles = Mutex<[String: Handles]>([:])

    init(factory: any MetricsFactory) {
        self.factory = factory
        self.opened = Counter(label: DriverMetrics.name("ipc_connections_total"), dimensions: [], factory: factory)
        self.open = Gauge(label: DriverMetrics.name("ipc_connections"), dimensions: [], factory: factory)
        open.record(0)
    }

    func connectionOpened() {
        opened.increment()
        open.record(openCount.add(1, ordering: .relaxed).newValue)
    }

    func connectionClosed() {
        open.record(openCount.subtract(1, ordering: .relaxed).newValue)
    }

    func record(_ request: IPCRequest?, failed: Bool, duration: Duration) {
        let type = Self.label(of: request)
        let handles = self.handles.withLock { handles in
            if let existing = handles[type] { return existing }
            let dimensions = [("type", type)]
            let made = Handles(
                count: Counter(label: DriverMetrics.name("ipc_requests_total"), dimensions: dimensions, factory: factory),
                errors: Counter(
                    label: DriverMetrics.name("ipc_request_errors_total"), dimensions: dimensions, factory: factory),
                duration: Timer(label: Self.durationName, dimensions: dimensions, factory: factory))
            handles[type] = made
            return made
        }
        handles.count.increment()
        if failed { handles.errors.increment() }
        handles.duration.recordNanoseconds(duration.nanoseconds)
    }

    /// The request's wire type without `_request` (`create_buffer`); clients' unknown types and
    /// unreadable frames share one label each, so a client cannot grow the series without bound.
    static func label(of request: IPCRequest?) -> String {
        switch request {
        case nil: return "invalid"
        case .unsupported?: return "unsupported"
        case let request?:
            let type = request.type
            return type.hasSuffix("_request") ? String(type.dropLast("_request".count)) : type
        }
    }
}

extension DriverMetrics: IPCServerObserver {
    public func connectionOpened() { vineyardSockets.connectionOpened() }
    public func connectionClosed() { vineyardSockets.connectionClosed() }
    public func requestServed(_ request: IPCRequest?, failed: Bool, duration: Duration) {
        vineyardSockets.record(request, failed: failed, duration: duration)
    }
}
