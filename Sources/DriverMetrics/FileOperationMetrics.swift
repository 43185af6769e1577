import CoreMetrics
public import FUSEKit

/// FUSE requests of every volume by operation: count, errors, latency, and bytes read and written.
struct FileOperationMetrics: Sendable {
    static let durationName = DriverMetrics.name("file_operation_duration_seconds")

    private struct Handles: @unchecked Sendable {
        // swift-metrics' handles are thread-safe (the Prometheus ones are atomics).
        let count: Counter
        let errors: Counter
        let duration: Timer
        let bytes: Counter?
    }

    /// Made once, so a request costs no registry lookup.
    private let handles: [FileOperation: Handles]

    init(factory: any MetricsFactory) {
        var handles: [FileOperation: Handles] = [:]
        for operation in FileOperation.allCases {
            let dimensions = [("operation", operation.rawValue)]
            let movesData = operation == .read || operation == .write
            handles[operation] = Handles(
                count: Counter(label: DriverMetrics.name("file_operations_total"), dimensions: dimensions, factory: factory),
                errors: Counter(
                    label: DriverMetrics.name("file_operation_errors_total"), dimensions: dimensions, factory: factory),
                duration: Timer(label: Self.durationName, dimensions: dimensions, factory: factory),
                bytes: movesData
                    ? Counter(label: DriverMetrics.name("file_bytes_total"), dimensions: dimensions, factory: factory)
                    : nil
            )
        }
        self.handles = handles
    }

    func record(_ operation: FileOperation, bytes: Int, duration: Duration, failed: Bool) {
        guard let handles = handles[operation] else { return }
        handles.count.increment()
        if failed { handles.errors.increment() }
        handles.duration.recordNanoseconds(duration.nanoseconds)
        if bytes > 0 { handles.bytes?.increment(by: bytes) }
    }
}

extension DriverMetrics: FileOperationObserver {
    public func fileOperationCompleted(_ operation: FileOperation, bytes: Int, duration: Duration, error: Errno?) {
        fileOperations.record(operation, bytes: bytes, duration: duration, failed: error != nil)
    }
}
