import ArgumentParser
import CSIDriver
import DriverMetrics
import GRPCTransport

/// A byte size given on the command line (`4Gi`, `512Mi`, `0`), parsed once; it keeps its
/// spelling for messages and `--help`.
struct SizeArgument: Sendable, Equatable, CustomStringConvertible {
    let bytes: Int
    let description: String

    /// A size written in the largest binary unit that divides it (`4Gi`).
    init(bytes: Int) {
        self.bytes = bytes
        self.description = ByteCount.format(bytes)
    }

    init?(_ text: String) {
        guard let bytes = ByteCount.parse(text) else { return nil }
        self.bytes = bytes
        self.description = text
    }

    /// The parser of one option: a malformed size fails naming the option.
    static func parser(_ option: String, example: String) -> @Sendable (String) throws -> SizeArgument {
        { text in
            guard let size = SizeArgument(text) else {
                throw ValidationError("\(option) \(text) is not a size such as \(example)")
            }
            return size
        }
    }
}

/// Permission bits of the CSI socket, written in octal (`0660`).
struct SocketPermissions: Sendable, Equatable, CustomStringConvertible {
    let bits: UInt32
    let description: String

    static func parse(_ text: String) throws -> SocketPermissions {
        guard let bits = UInt32(text, radix: 8), bits <= 0o777 else {
            throw ValidationError("--socket-mode \(text) is not an octal permission such as 0660")
        }
        return SocketPermissions(bits: bits, description: text)
    }
}

extension ClusterReference {
    /// `--default-cluster`: a malformed reference fails naming the option.
    static func parseOption(_ text: String) throws -> ClusterReference {
        guard let cluster = ClusterReference(parsing: text) else {
            throw ValidationError("--default-cluster \(text) is not namespace/name with Kubernetes names")
        }
        return cluster
    }
}

extension Endpoint {
    /// `--endpoint`: a malformed endpoint fails naming the option.
    static func parseOption(_ text: String) throws -> Endpoint {
        do { return try Endpoint(parsing: text) } catch {
            throw ValidationError("--endpoint \(text): \(error)")
        }
    }
}

extension MetricsAddress {
    /// `--metrics-address`: a malformed address fails naming the option.
    static func parseOption(_ text: String) throws -> MetricsAddress {
        do { return try MetricsAddress(parsing: text) } catch {
            throw ValidationError("--metrics-address: \(error)")
        }
    }
}
