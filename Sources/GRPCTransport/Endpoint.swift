/// Where a server listens or a client connects.
///
/// Accepted spellings (see ``init(parsing:)``):
/// - `unix:///csi/csi.sock` or `unix:/csi/csi.sock`: a unix domain socket; the path must be absolute.
/// - `tcp://127.0.0.1:10000` or `127.0.0.1:10000`: TCP. IPv6 hosts go in brackets,
///   `[::1]:10000`. Port 0 asks a server for any free port (see ``UnaryServer/endpoint``).
public enum Endpoint: Sendable, Equatable, CustomStringConvertible {
    /// A unix domain socket at an absolute path.
    case unix(path: String)
    /// A TCP host (name or address, IPv6 without brackets) and port. An empty host means every
    /// interface for a server.
    case tcp(host: String, port: Int)

    /// The longest unix socket path the kernel accepts (`sun_path` holds 108 bytes with the NUL).
    static let maxUnixPathBytes = 107

    /// Parses an endpoint string.
    ///
    /// - Parameter text: `unix:///abs/path`, `unix:/abs/path`, `tcp://host:port` or `host:port`.
    /// - Throws: ``EndpointError`` naming what is wrong.
    public init(parsing text: String) throws(EndpointError) {
        func fail(_ reason: String) -> EndpointError { EndpointError(input: text, reason: reason) }

        if text.isEmpty { throw fail("endpoint is empty") }
        let schemeEnd = text.firstIndex(of: ":")
        let scheme = schemeEnd.map { text[..<$0].lowercased() } ?? ""

        if scheme == "unix" {
            var rest = text[text.index(after: schemeEnd!)...]
            if rest.hasPrefix("//") { rest = rest.dropFirst(2) }
            let path = String(rest)
            guard !path.isEmpty else { throw fail("unix endpoint has no socket path") }
            guard path.hasPrefix("/") else {
                throw fail("unix socket path \"\(path)\" must be absolute (write unix:///path/to/socket)")
            }
            guard !path.utf8.contains(0) else { throw fail("unix socket path contains a NUL byte") }
            guard path.utf8.count <= Self.maxUnixPathBytes else {
                throw fail("unix socket path is \(path.utf8.count) bytes; at most \(Self.maxUnixPathBytes) are allowed")
            }
            self = .unix(path: path)
            return
        }

        var hostPort = Substring(text)
        if let range = text.firstRange(of: "://") {
            guard scheme == "tcp" else {
                throw fail("unsupported scheme \"\(text[..<range.lowerBound])\" (expected unix:// or tcp://)")
            }
            hostPort = text[range.upperBound...]
        }
        guard !hostPort.isEmpty else { throw fail("tcp endpoint has no host:port") }

        let host: String
        let portText: Substring
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw fail("IPv6 host is missing its closing \"]\"") }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let afterClose = hostPort[hostPort.index(after: close)...]
            guard afterClose.hasPrefix(":") else { throw fail("missing port after \"]\" (expected [host]:port)") }
            portText = afterClose.dropFirst()
            guard !host.isEmpty else { throw fail("IPv6 host between brackets is empty") }
            guard host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." || $0 == "%" }) else {
                throw fail("\"\(host)\" is not an IPv6 address")
            }
        } else {
            guard let colon = hostPort.lastIndex(of: ":") else {
                throw fail("missing port (expected host:port, tcp://host:port or unix:///path)")
            }
            host = String(hostPort[..<colon])
            portText = hostPort[hostPort.index(after: colon)...]
            guard !host.contains(":") else { throw fail("IPv6 hosts must be written in brackets, e.g. [::1]:10000") }
            let forbidden: Set<Character> = ["/", "?", "#", "@", "[", "]", " ", "\t", "\n"]
            guard !host.contains(where: { forbidden.contains($0) }) else {
                throw fail("\"\(host)\" is not a valid host name or address")
            }
        }
        guard !portText.isEmpty else { throw fail("port is empty") }
        guard portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }), let port = Int(portText),
            port <= 65535
        else {
            throw fail("port \"\(portText)\" is not a number between 0 and 65535")
        }
        self = .tcp(host: host, port: port)
    }

    /// The canonical spelling, which ``init(parsing:)`` reads back: `unix:///path` or `tcp://host:port`.
    public var description: String {
        switch self {
        case .unix(let path): "unix://\(path)"
        case .tcp: "tcp://\(hostPort)"
        }
    }

    /// `host:port` with IPv6 hosts bracketed (TCP only).
    var hostPort: String {
        switch self {
        case .unix(let path): path
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }

    /// The address string the C shim understands.
    var shimAddress: String {
        switch self {
        case .unix(let path): "unix:\(path)"
        case .tcp: hostPort
        }
    }
}

/// Why an endpoint string could not be parsed.
public struct EndpointError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The string that was parsed.
    public var input: String
    /// What is wrong with it.
    public var reason: String

    /// Creates an error for `input`.
    public init(input: String, reason: String) {
        self.input = input
        self.reason = reason
    }

    /// The reason, e.g. `unix socket path "csi.sock" must be absolute (write unix:///path/to/socket)`.
    public var description: String { reason }
}
