/// A gRPC status code.
///
/// The values are gRPC's canonical codes, so ``rawValue`` is what goes on the wire. Codes this type
/// has no name for are kept as they are; their ``description`` is `CODE_<n>`.
public struct StatusCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The numeric code, as sent in the `grpc-status` trailer.
    public var rawValue: Int32

    /// Wraps a numeric code. Any value is accepted.
    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    /// Not an error; returned on success. The canonical name is `OK`.
    public static let ok = StatusCode(rawValue: 0)
    /// The operation was cancelled, typically by the caller. `CANCELLED`.
    public static let cancelled = StatusCode(rawValue: 1)
    /// Unknown error. `UNKNOWN`.
    public static let unknown = StatusCode(rawValue: 2)
    /// The client specified an invalid argument. `INVALID_ARGUMENT`.
    public static let invalidArgument = StatusCode(rawValue: 3)
    /// The deadline expired before the operation could complete. `DEADLINE_EXCEEDED`.
    public static let deadlineExceeded = StatusCode(rawValue: 4)
    /// Some requested entity was not found. `NOT_FOUND`.
    public static let notFound = StatusCode(rawValue: 5)
    /// The entity a client attempted to create already exists. `ALREADY_EXISTS`.
    public static let alreadyExists = StatusCode(rawValue: 6)
    /// The caller does not have permission to execute the operation. `PERMISSION_DENIED`.
    public static let permissionDenied = StatusCode(rawValue: 7)
    /// Some resource has been exhausted. `RESOURCE_EXHAUSTED`.
    public static let resourceExhausted = StatusCode(rawValue: 8)
    /// The system is not in a state required for the operation. `FAILED_PRECONDITION`.
    public static let failedPrecondition = StatusCode(rawValue: 9)
    /// The operation was aborted, typically because of a concurrency conflict. `ABORTED`.
    public static let aborted = StatusCode(rawValue: 10)
    /// The operation was attempted past the valid range. `OUT_OF_RANGE`.
    public static let outOfRange = StatusCode(rawValue: 11)
    /// The operation is not implemented or not supported. `UNIMPLEMENTED`.
    public static let unimplemented = StatusCode(rawValue: 12)
    /// An internal invariant was broken. `INTERNAL`.
    public static let internalError = StatusCode(rawValue: 13)
    /// The service is currently unavailable; retrying may help. `UNAVAILABLE`.
    public static let unavailable = StatusCode(rawValue: 14)
    /// Unrecoverable data loss or corruption. `DATA_LOSS`.
    public static let dataLoss = StatusCode(rawValue: 15)
    /// The request lacks valid authentication credentials. `UNAUTHENTICATED`.
    public static let unauthenticated = StatusCode(rawValue: 16)

    /// The gRPC canonical name, such as `INVALID_ARGUMENT`.
    public var description: String {
        switch rawValue {
        case 0: "OK"
        case 1: "CANCELLED"
        case 2: "UNKNOWN"
        case 3: "INVALID_ARGUMENT"
        case 4: "DEADLINE_EXCEEDED"
        case 5: "NOT_FOUND"
        case 6: "ALREADY_EXISTS"
        case 7: "PERMISSION_DENIED"
        case 8: "RESOURCE_EXHAUSTED"
        case 9: "FAILED_PRECONDITION"
        case 10: "ABORTED"
        case 11: "OUT_OF_RANGE"
        case 12: "UNIMPLEMENTED"
        case 13: "INTERNAL"
        case 14: "UNAVAILABLE"
        case 15: "DATA_LOSS"
        case 16: "UNAUTHENTICATED"
        default: "CODE_\(rawValue)"
        }
    }
}
