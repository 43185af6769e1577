public import CoreMetrics
public import Prometheus
import Synchronization

/// The node plugin's metrics: one Prometheus registry, written to through swift-metrics.
///
/// The driver's modules know nothing of it: each calls a small observer protocol of its own
/// (``CSIDriver/CSICallObserver``, ``FUSEKit/FileOperationObserver``,
/// ``VineyardIPC/IPCServerObserver``), which this module implements; the executable installs it.
/// Figures read at scrape time (stores, volumes) come from ``ScrapeCollector``s.
public final class DriverMetrics: Sendable {
    /// Every metric's name starts with this.
    public static let namespace = "vineyard_csi"

    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    private let collectors = Mutex<[any ScrapeCollector]>([])

    public init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // FUSE requests and vineyard IPC requests take microseconds; CSI calls milliseconds to seconds.
        let fast: [Duration] = [
            .microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250),
            .microseconds(500), .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100),
            .seconds(1),
        ]
        factory.durationHistogramBuckets[FileOperationMetrics.durationName] = fast
        factory.durationHistogramBuckets[VineyardSocketMetrics.durationName] = fast
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(100),
            .milliseconds(500), .seconds(1), .seconds(5), .seconds(10), .seconds(30),
        ]
        self.registry = registry
        self.factory = factory
        self.fileOperations = FileOperationMetrics(factory: factory)
        self.vineyardSockets = VineyardSocketMetrics(factory: factory)
        self.csiCalls = CSICallMetrics(factory: factory)
        self.recoveries = RecoveryMetrics(factory: factory)
    }

    let fileOperations: FileOperationMetrics
    let vineyardSockets: VineyardSocketMetrics
    let csiCalls: CSICallMetrics
    let recoveries: RecoveryMetrics

    /// Adds figures to read at every scrape, before the registry is written out.
    public func addCollector(_ collector: any ScrapeCollector) {
        collectors.withLock { $0.append(collector) }
    }

    /// The text exposition format (version 0.0.4) of every metric, collectors read first.
    public func scrape() -> [UInt8] {
        for collector in collectors.withLock({ $0 }) { collector.collect(into: factory) }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 * 1024)
        registry.emit(into: &buffer)
        return buffer
    }

    static func name(_ suffix: String) -> String { "\(namespace)_\(suffix)" }
}

/// Figures read when a scrape arrives instead of counted as they change (a store's usage, the
/// volumes staged): written into gauges made from `factory`.
public protocol ScrapeCollector: Sendable {
    func collect(into factory: any MetricsFactory)
}

extension Duration {
    /// Whole nanoseconds, for swift-metrics' timers.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
