import CoreMetrics

/// The volumes this node has staged and the targets it has published, read at scrape time.
public struct VolumeCollector: ScrapeCollector {
    private let counts: @Sendable () -> (staged: Int, published: Int)

    /// - Parameter counts: the node service's current figures.
    public init(counts: @escaping @Sendable () -> (staged: Int, published: Int)) {
        self.counts = counts
    }

    public func collect(into factory: any MetricsFactory) {
        let (staged, published) = counts()
        Gauge(label: DriverMetrics.name("volumes_staged"), dimensions: [], factory: factory).record(staged)
        Gauge(label: DriverMetrics.name("volumes_published"), dimensions: [], factory: factory).record(published)
    }
}
