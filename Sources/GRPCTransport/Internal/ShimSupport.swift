internal import CGRPCShim

/// A C handle that the shim documents as safe to use from any thread.
struct ShimHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// Takes ownership of a message the shim allocated and frees it.
func takeShimString(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
    guard let pointer else { return "" }
    defer { cgrpc_free(pointer) }
    return String(cString: pointer)
}

/// Converts a shim status code and message into an ``RPCStatus``.
func shimStatus(_ code: Int32, _ message: UnsafeMutablePointer<CChar>?) -> RPCStatus {
    RPCStatus(StatusCode(rawValue: code), takeShimString(message))
}

extension Duration {
    /// Whole milliseconds, rounded up so that a tiny positive duration does not become "none";
    /// zero and negative durations become 1 ms (already expired, in effect). Saturates.
    var shimMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return 1 }
        if seconds >= Int64.max / 1000 - 1 { return Int64.max / 2 }
        let milliseconds = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return max(1, milliseconds)
    }
}

extension ContinuousClock.Instant {
    /// The continuous-clock instant for a wall-clock deadline from the shim, or `nil` for 0 (none).
    static func fromShimDeadline(_ unixNanos: Int64) -> ContinuousClock.Instant? {
        guard unixNanos != 0 else { return nil }
        let remaining = unixNanos &- cgrpc_realtime_now_nanos()
        return ContinuousClock.now.advanced(by: .nanoseconds(remaining))
    }
}
