import CoreMetrics
public import CSIDriver
import Synchronization

/// Mounts the node plugin re-established when it started: taken over as they were from the
/// descriptor holder (a hand-over), or mounted afresh from the durable records (a remount).
struct RecoveryMetrics: Sendable {
    enum Method: String { case handover, remount }

    private let factory: any MetricsFactory

    init(factory: any MetricsFactory) {
        self.factory = factory
        // Present from the start, so a dashboard tells "none" from "not exported".
        // A failed hand-over is not seen here: the mount is then remounted (and counted so).
        for (method, result) in [(Method.handover, "ok"), (.remount, "ok"), (.remount, "error")] {
            counter(method, result).increment(by: 0)
        }
    }

    private func counter(_ method: Method, _ result: String) -> Counter {
        Counter(
            label: DriverMetrics.name("mount_recoveries_total"), dimensions: [("method", method.rawValue), ("result", result)],
            factory: factory)
    }

    func record(_ method: Method, succeeded: Bool) {
        counter(method, succeeded ? "ok" : "error").increment()
    }
}

/// A volume host that counts, while the node service recovers, the mounts it resumes from the
/// descriptor holder and the mounts it makes afresh. Everything else passes through unchanged.
public final class RecoveryCountingVolumeHost: VolumeHost {
    private let host: any VolumeHost
    private let metrics: RecoveryMetrics
    private let recovering = Atomic<Bool>(false)

    public init(_ host: any VolumeHost, metrics: DriverMetrics) {
        self.host = host
        self.metrics = metrics.recoveries
    }

    /// Runs the node service's recovery; mounts made meanwhile count as remounts.
    public func recovering<T>(_ body: () async throws -> T) async rethrows -> T {
        recovering.store(true, ordering: .releasing)
        defer { recovering.store(false, ordering: .releasing) }
        return try await body()
    }

    public var isReady: Bool { host.isReady }

    public func mount(_ volume: VolumeDescriptor, at path: String) throws(VolumeHostError) {
        guard recovering.load(ordering: .acquiring) else { return try host.mount(volume, at: path) }
        do {
            try host.mount(volume, at: path)
            metrics.record(.remount, succeeded: true)
        } catch {
            metrics.record(.remount, succeeded: false)
            throw error
        }
    }

    public func resume(_ volume: VolumeDescriptor, at path: String) -> Bool {
        let resumed = host.resume(volume, at: path)
        if resumed { metrics.record(.handover, succeeded: true) }
        return resumed
    }

    public func unmount(path: String) throws(VolumeHostError) { try host.unmount(path: path) }
    public func isServing(path: String) -> Bool { host.isServing(path: path) }
    public func statistics(of volume: VolumeDescriptor) -> VolumeStatistics? { host.statistics(of: volume) }
    public func purge(_ volume: VolumeDescriptor) throws(VolumeHostError) { try host.purge(volume) }
    public func resize(_ volume: VolumeDescriptor, capacityBytes: Int) throws(VolumeHostError) {
        try host.resize(volume, capacityBytes: capacityBytes)
    }
}
