import CoreMetrics
public import SharedMemoryStore
import Synchronization

/// Per embedded store (one per vineyard cluster on the node): capacity, bytes used and objects,
/// read from the store when a scrape arrives.
public final class StoreCollector: ScrapeCollector {
    private let registry: StoreRegistry
    /// The stores of the previous scrape: a store closed since loses its series.
    private let reported = Mutex<Set<String>>([])

    public init(registry: StoreRegistry) {
        self.registry = registry
    }

    public func collect(into factory: any MetricsFactory) {
        var current: Set<String> = []
        for key in registry.openKeys {
            guard let store = registry.openStore(namespace: key.namespace, name: key.name) else { continue }
            let usage = store.usage
            let label = key.description
            current.insert(label)
            for (name, value) in Self.series(of: usage) {
                Gauge(label: name, dimensions: [("store", label)], factory: factory).record(value)
            }
        }
        let gone = reported.withLock { reported in
            defer { reported = current }
            return reported.subtracting(current)
        }
        for label in gone {
            for (name, _) in Self.series(of: nil) {
                Gauge(label: name, dimensions: [("store", label)], factory: factory).destroy()
            }
        }
    }

    private static func series(of usage: StoreUsage?) -> [(String, Int)] {
        [
            (DriverMetrics.name("store_capacity_bytes"), usage?.capacity ?? 0),
            (DriverMetrics.name("store_used_bytes"), usage?.bytesUsed ?? 0),
            (DriverMetrics.name("store_objects"), usage?.objectCount ?? 0),
        ]
    }
}
