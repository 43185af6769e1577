import GRPCTransport
import Testing

@Suite struct EndpointTests {
    @Test(arguments: [
        ("unix:///csi/csi.sock", Endpoint.unix(path: "/csi/csi.sock")),
        ("unix:/csi/csi.sock", .unix(path: "/csi/csi.sock")),
        ("UNIX:///var/lib/kubelet/plugins/x/csi.sock", .unix(path: "/var/lib/kubelet/plugins/x/csi.sock")),
        ("tcp://127.0.0.1:10000", .tcp(host: "127.0.0.1", port: 10000)),
        ("127.0.0.1:10000", .tcp(host: "127.0.0.1", port: 10000)),
        ("localhost:0", .tcp(host: "localhost", port: 0)),
        ("tcp://[::1]:65535", .tcp(host: "::1", port: 65535)),
        ("[::]:8080", .tcp(host: "::", port: 8080)),
        ("tcp://:10000", .tcp(host: "", port: 10000)),
    ])
    func parsesGoodForms(text: String, expected: Endpoint) throws {
        #expect(try Endpoint(parsing: text) == expected)
    }

    @Test(arguments: [
        ("", "empty"),
        ("unix://", "no socket path"),
        ("unix:", "no socket path"),
        ("unix://csi/csi.sock", "must be absolute"),
        ("unix:csi.sock", "must be absolute"),
        ("unix:///" + String(repeating: "a", count: 200), "at most 107"),
        ("http://127.0.0.1:80", "unsupported scheme"),
        ("dns:///example.com:443", "unsupported scheme"),
        ("127.0.0.1", "missing port"),
        ("tcp://127.0.0.1", "missing port"),
        ("127.0.0.1:", "port is empty"),
        ("127.0.0.1:http", "not a number"),
        ("127.0.0.1:65536", "not a number"),
        ("127.0.0.1:-1", "not a number"),
        ("::1:10000", "brackets"),
        ("[::1:10000", "closing"),
        ("[::1]10000", "missing port"),
        ("[]:10000", "empty"),
        ("tcp://host/path:10", "not a valid host"),
        ("tcp://", "no host:port"),
    ])
    func rejectsBadForms(text: String, fragment: String) {
        #expect {
            _ = try Endpoint(parsing: text)
        } throws: { error in
            guard let error = error as? EndpointError else { return false }
            return error.input == text && error.description.contains(fragment)
        }
    }

    @Test(arguments: ["unix:///csi/csi.sock", "tcp://127.0.0.1:10000", "tcp://[::1]:1", "tcp://:5"])
    func descriptionRoundTrips(text: String) throws {
        let endpoint = try Endpoint(parsing: text)
        #expect(endpoint.description == text)
        #expect(try Endpoint(parsing: endpoint.description) == endpoint)
    }

    @Test func unixShorthandIsCanonicalised() throws {
        #expect(try Endpoint(parsing: "unix:/a/b.sock").description == "unix:///a/b.sock")
        #expect(try Endpoint(parsing: "10.0.0.1:9").description == "tcp://10.0.0.1:9")
    }
}

@Suite struct StatusTests {
    @Test func canonicalNames() {
        let expected: [(StatusCode, String, Int32)] = [
            (.ok, "OK", 0), (.cancelled, "CANCELLED", 1), (.unknown, "UNKNOWN", 2),
            (.invalidArgument, "INVALID_ARGUMENT", 3), (.deadlineExceeded, "DEADLINE_EXCEEDED", 4),
            (.notFound, "NOT_FOUND", 5), (.alreadyExists, "ALREADY_EXISTS", 6),
            (.permissionDenied, "PERMISSION_DENIED", 7), (.resourceExhausted, "RESOURCE_EXHAUSTED", 8),
            (.failedPrecondition, "FAILED_PRECONDITION", 9), (.aborted, "ABORTED", 10),
            (.outOfRange, "OUT_OF_RANGE", 11), (.unimplemented, "UNIMPLEMENTED", 12),
            (.internalError, "INTERNAL", 13), (.unavailable, "UNAVAILABLE", 14), (.dataLoss, "DATA_LOSS", 15),
            (.unauthenticated, "UNAUTHENTICATED", 16),
        ]
        for (code, name, value) in expected {
            #expect(code.description == name)
            #expect(code.rawValue == value)
            #expect(StatusCode(rawValue: value) == code)
        }
        #expect(StatusCode(rawValue: 42).description == "CODE_42")
    }

    @Test func statusDescription() {
        #expect(RPCStatus(.notFound, "volume v1").description == "NOT_FOUND: volume v1")
        #expect(RPCStatus(.aborted, "").description == "ABORTED")
        #expect(RPCStatus(.aborted, "x") == RPCStatus(.aborted, "x"))
        #expect(RPCStatus(.aborted, "x") != RPCStatus(.internalError, "x"))
    }
}
