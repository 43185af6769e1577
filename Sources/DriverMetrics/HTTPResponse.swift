/// The HTTP/1.1 answers of the metrics endpoint, from a request's head.
enum HTTPResponse {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Whether `bytes` hold a whole request head (up to the blank line).
    static func headEnds(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 4 else { return false }
        for index in 3..<bytes.count where bytes[index - 3] == 13 && bytes[index - 2] == 10
            && bytes[index - 1] == 13 && bytes[index] == 10
        {
            return true
        }
        return false
    }

    /// `GET /metrics` (a query string is ignored) gets the scrape; `HEAD` its headers; other
    /// paths 404, other methods 405, an unreadable request 400.
    static func answer(_ head: [UInt8], metrics: DriverMetrics) -> [UInt8] {
        guard headEnds(head) else { return response(431, "Request Header Fields Too Large", body: []) }
        let line = head.prefix { $0 != 13 }
        let parts = line.split(separator: 32)
        guard parts.count == 3, parts[2].starts(with: Array("HTTP/1.".utf8)) else {
            return response(400, "Bad Request", body: Array("malformed request line\n".utf8))
        }
        let method = String(decoding: parts[0], as: UTF8.self)
        let target = String(decoding: parts[1], as: UTF8.self)
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? target
        guard path == "/metrics" else {
            return response(404, "Not Found", body: Array("only /metrics is served here\n".utf8))
        }
        switch method {
        case "GET": return response(200, "OK", body: metrics.scrape(), type: contentType)
        case "HEAD": return response(200, "OK", body: metrics.scrape(), type: contentType, headOnly: true)
        default: return response(405, "Method Not Allowed", body: Array("GET /metrics only\n".utf8), allow: true)
        }
    }

    private static func response(
        _ code: Int, _ reason: String, body: [UInt8], type: String = "text/plain; charset=utf-8",
        headOnly: Bool = false, allow: Bool = false
    ) -> [UInt8] {
        var head = "HTTP/1.1 \(code) \(reason)\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\n"
        if allow { head += "Allow: GET, HEAD\r\n" }
        head += "Connection: close\r\n\r\n"
        return Array(head.utf8) + (headOnly ? [] : body)
    }
}
