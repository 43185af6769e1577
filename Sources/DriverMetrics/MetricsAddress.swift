/// Where the metrics endpoint listens: `host:port`, `:port` for every interface, `[v6]:port`.
public struct MetricsAddress: Sendable, Hashable, CustomStringConvertible {
    /// nil: every interface.
    public var host: String?
    /// A decimal port; 0 lets the kernel choose.
    public var port: String

    public init(parsing address: String) throws(MetricsServerError) {
        guard let colon = address.lastIndex(of: ":") else {
            throw MetricsServerError(description: "metrics address \(address) is not host:port (e.g. :9810)")
        }
        var host = String(address[..<colon])
        let port = String(address[address.index(after: colon)...])
        guard let number = Int(port), (0...65535).contains(number), port.allSatisfy(\.isASCII) else {
            throw MetricsServerError(description: "metrics address \(address): port '\(port)' is not a number from 0 to 65535")
        }
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            throw MetricsServerError(description: "metrics address \(address): write an IPv6 host in brackets, [::1]:9810")
        }
        self.host = host.isEmpty ? nil : host
        self.port = port
    }

    public var description: String {
        guard let host else { return ":\(port)" }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
