import CSIProto
import GRPCTransport

/// A validated `capacity_range`: how many bytes a volume must have at least and may have at most.
struct CapacityRequest: Equatable {
    /// 0 when the request sets no minimum.
    var requiredBytes: Int
    /// 0 when the request sets no maximum.
    var limitBytes: Int

    /// - Throws: INVALID_ARGUMENT for negative bounds or a limit below the requirement.
    init(_ range: Csi_V1_CapacityRange?) throws(RPCStatus) {
        let required = range?.requiredBytes ?? 0
        let limit = range?.limitBytes ?? 0
        guard required >= 0 else { throw .invalid("capacity_range.required_bytes must not be negative (got \(required))") }
        guard limit >= 0 else { throw .invalid("capacity_range.limit_bytes must not be negative (got \(limit))") }
        guard limit == 0 || required <= limit else {
            throw .invalid("capacity_range.required_bytes (\(required)) exceeds capacity_range.limit_bytes (\(limit))")
        }
        requiredBytes = Int(required)
        limitBytes = Int(limit)
    }

    /// A request for exactly `bytes` bytes or more, with no maximum (NodeExpandVolume's size).
    init(atLeast bytes: Int) {
        requiredBytes = bytes
        limitBytes = 0
    }

    /// The size a new volume gets: the requirement, else the default capped by the limit.
    func resolvedSize(defaultSize: Int) -> Int {
        if requiredBytes > 0 { return requiredBytes }
        if limitBytes > 0 { return min(defaultSize, limitBytes) }
        return defaultSize
    }

    /// Whether an existing volume of `size` bytes satisfies this request.
    func accepts(_ size: Int) -> Bool {
        size >= requiredBytes && (limitBytes == 0 || size <= limitBytes)
    }
}
