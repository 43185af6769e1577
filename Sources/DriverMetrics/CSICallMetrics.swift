import CoreMetrics
public import CSIDriver
public import GRPCTransport

/// CSI calls by method and status code: count and latency.
struct CSICallMetrics: Sendable {
    private let factory: any MetricsFactory

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    func record(method: String, code: StatusCode, duration: Duration) {
        // A few calls a second at most: the registry's lookup of the series is cheap enough.
        let dimensions = [("method", method), ("code", code.description)]
        Counter(label: DriverMetrics.name("calls_total"), dimensions: dimensions, factory: factory).increment()
        Timer(label: DriverMetrics.name("call_duration_seconds"), dimensions: dimensions, factory: factory)
            .recordNanoseconds(duration.nanoseconds)
    }
}

extension DriverMetrics: CSICallObserver {
    public func csiCallCompleted(method: String, code: StatusCode, duration: Duration) {
        csiCalls.record(method: method, code: code, duration: duration)
    }
}
