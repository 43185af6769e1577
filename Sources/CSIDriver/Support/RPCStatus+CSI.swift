import GRPCTransport

extension RPCStatus {
    /// A required field is missing; CSI mandates INVALID_ARGUMENT naming the field.
    static func missing(_ field: String) -> RPCStatus {
        RPCStatus(.invalidArgument, "\(field) missing in request")
    }

    static func invalid(_ message: String) -> RPCStatus { RPCStatus(.invalidArgument, message) }
    static func notFound(_ message: String) -> RPCStatus { RPCStatus(.notFound, message) }
    static func alreadyExists(_ message: String) -> RPCStatus { RPCStatus(.alreadyExists, message) }
    static func failedPrecondition(_ message: String) -> RPCStatus { RPCStatus(.failedPrecondition, message) }
    static func internalError(_ message: String) -> RPCStatus { RPCStatus(.internalError, message) }
}
