import ArgumentParser
import CSIProto
import GRPCTransport
import SwiftProtobuf

/// Options every `vctl csi` subcommand shares: where the driver is and how long to wait.
struct CSIClientOptions: ParsableArguments {
    @Option(help: "The driver's CSI endpoint: unix:///path/to/csi.sock or tcp://host:port.")
    var endpoint: String = "unix:///csi/csi.sock"

    @Option(help: "Seconds to wait for each call.")
    var timeout: Int = 30

    @Flag(help: "Print the raw response as JSON.")
    var json = false

    func validate() throws {
        do { _ = try Endpoint(parsing: endpoint) } catch {
            throw ValidationError("--endpoint \(endpoint): \(error)")
        }
        if timeout <= 0 { throw ValidationError("--timeout must be a positive number of seconds") }
    }

    /// Calls `service`.`method` and decodes its response.
    ///
    /// - Throws: ``CallFailure`` with the status code and message when the call fails.
    func call<Response: SwiftProtobuf.Message>(
        _ service: String,
        _ method: String,
        _ request: some SwiftProtobuf.Message,
        as: Response.Type = Response.self
    ) throws -> Response {
        let name = "/csi.v1.\(service)/\(method)"
        do {
            let client = try UnaryClient(endpoint: try Endpoint(parsing: endpoint))
            let bytes = try client.call(name, try request.serializedBytes(), timeout: .seconds(timeout))
            return try Response(serializedBytes: bytes)
        } catch let status as RPCStatus {
            throw CallFailure(method: method, status: status)
        } catch {
            throw CallFailure(method: method, status: RPCStatus(.internalError, "\(error)"))
        }
    }

    /// Prints a response as JSON when `--json` is set, else the lines `summary` returns.
    func print<Response: SwiftProtobuf.Message>(_ response: Response, summary: (Response) -> [String]) {
        if json {
            var options = JSONEncodingOptions()
            options.preserveProtoFieldNames = true
            Swift.print((try? response.jsonString(options: options)) ?? "{}")
        } else {
            summary(response).forEach { Swift.print($0) }
        }
    }
}

/// A CSI call that failed; printed as `Error: <Method>: <CODE>: <message>`.
struct CallFailure: Error, CustomStringConvertible {
    var method: String
    var status: RPCStatus

    var description: String { "\(method): \(status.code): \(status.message)" }
}
