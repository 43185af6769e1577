import CSIDriver
import DriverMetrics
import Foundation
import FUSEKit
import Glibc
import GRPCTransport
import SharedMemoryStore
import Synchronization
import Testing
import VineyardIPC

/// The observers write the Prometheus series they document, and the endpoint serves them over a
/// real TCP socket.
@Suite struct MetricsEndpointTests {
    /// One HTTP/1.1 request over a real socket to 127.0.0.1; the whole response.
    static func request(_ port: String, _ raw: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port)!).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(connected == 0)
        _ = Array(raw.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            response += chunk[..<count]
        }
        return String(decoding: response, as: UTF8.self)
    }

    /// The value of one series line, e.g. `vineyard_csi_calls_total{method="Probe",code="OK"}`.
    static func value(_ scrape: String, _ series: String) -> Double? {
        for line in scrape.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    @Test func observersWriteTheDocumentedSeries() throws {
        let metrics = DriverMetrics()
        metrics.csiCallCompleted(method: "NodeStageVolume", code: .ok, duration: .milliseconds(3))
        metrics.csiCallCompleted(method: "NodeStageVolume", code: .invalidArgument, duration: .microseconds(40))
        metrics.fileOperationCompleted(.write, bytes: 4096, duration: .microseconds(30), error: nil)
        metrics.fileOperationCompleted(.write, bytes: 100, duration: .microseconds(20), error: nil)
        metrics.fileOperationCompleted(.lookup, bytes: 0, duration: .microseconds(5), error: Errno(rawValue: ENOENT))
        metrics.connectionOpened()
        metrics.requestServed(.createBuffer(size: 10), failed: false, duration: .microseconds(15))
        metrics.requestServed(.unsupported(type: "made_up_by_a_client"), failed: true, duration: .microseconds(1))
        metrics.requestServed(nil, failed: true, duration: .microseconds(1))
        let scrape = String(decoding: metrics.scrape(), as: UTF8.self)

        #expect(Self.value(scrape, #"vineyard_csi_calls_total{method="NodeStageVolume",code="OK"}"#) == 1)
        #expect(Self.value(scrape, #"vineyard_csi_calls_total{method="NodeStageVolume",code="INVALID_ARGUMENT"}"#) == 1)
        #expect(Self.value(scrape, #"vineyard_csi_call_duration_seconds_count{method="NodeStageVolume",code="OK"}"#) == 1)
        #expect(Self.value(scrape, #"vineyard_csi_file_operations_total{operation="write"}"#) == 2)
        #expect(Self.value(scrape, #"vineyard_csi_file_bytes_total{operation="write"}"#) == 4196)
        #expect(Self.value(scrape, #"vineyard_csi_file_operation_errors_total{operation="lookup"}"#) == 1)
        #expect(Self.value(scrape, #"vineyard_csi_file_operation_duration_seconds_count{operation="write"}"#) == 2)
        #expect(Self.value(scrape, #"vineyard_csi_file_operation_duration_seconds_sum{operation="write"}"#) == 0.00005)
        // Microsecond buckets: 20 and 30 µs fall on either side of 25 µs.
        let writeBuckets = scrape.split(separator: "\n").filter {
            $0.hasPrefix(#"vineyard_csi_file_operation_duration_seconds_bucket{operation="write""#)
        }
        #expect(writeBuckets.map { Double($0.split(separator: " ").last!) }.contains(1))
        #expect(Self.value(scrape, "vineyard_csi_ipc_connections_total") == 1)
        #expect(Self.value(scrape, "vineyard_csi_ipc_connections") == 1)
        #expect(Self.value(scrape, #"vineyard_csi_ipc_requests_total{type="create_buffer"}"#) == 1)
        // A client's made-up type does not become a series of its own.
        #expect(Self.value(scrape, #"vineyard_csi_ipc_request_errors_total{type="unsupported"}"#) == 1)
        #expect(Self.value(scrape, #"vineyard_csi_ipc_request_errors_total{type="invalid"}"#) == 1)
        #expect(!scrape.contains("made_up_by_a_client"))
        metrics.connectionClosed()
        #expect(Self.value(String(decoding: metrics.scrape(), as: UTF8.self), "vineyard_csi_ipc_connections") == 0)
    }

    @Test func storeAndVolumeFiguresAreReadAtScrapeTime() throws {
        let root = "/dev/shm/metrics-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let registry = StoreRegistry(
            rootDirectory: root, defaults: StoreConfiguration(directory: root, capacity: 8 << 20, prefault: 0))
        let store = try registry.store(namespace: "ns", name: "cluster")
        let metrics = DriverMetrics()
        metrics.addCollector(StoreCollector(registry: registry))
        let counts = Counts()
        metrics.addCollector(VolumeCollector { counts.value.withLock { $0 } })
        var scrape = String(decoding: metrics.scrape(), as: UTF8.self)
        #expect(Self.value(scrape, #"vineyard_csi_store_capacity_bytes{store="ns/cluster"}"#) == Double(store.usage.capacity))
        #expect(Self.value(scrape, #"vineyard_csi_store_objects{store="ns/cluster"}"#) == 0)
        #expect(Self.value(scrape, "vineyard_csi_volumes_staged") == 0)

        let writer = try store.createBlob()
        try writer.write(at: 0, [UInt8](repeating: 7, count: 1 << 20))
        _ = try store.seal(writer)
        counts.value.withLock { $0 = (staged: 2, published: 3) }
        scrape = String(decoding: metrics.scrape(), as: UTF8.self)
        #expect(Self.value(scrape, #"vineyard_csi_store_objects{store="ns/cluster"}"#) == 1)
        #expect((Self.value(scrape, #"vineyard_csi_store_used_bytes{store="ns/cluster"}"#) ?? 0) >= Double(1 << 20))
        #expect(Self.value(scrape, "vineyard_csi_volumes_staged") == 2)
        #expect(Self.value(scrape, "vineyard_csi_volumes_published") == 3)

        // A store closed since the last scrape loses its series.
        registry.close(namespace: "ns", name: "cluster")
        scrape = String(decoding: metrics.scrape(), as: UTF8.self)
        #expect(!scrape.contains(#"store="ns/cluster""#))
    }

    @Test func endpointServesMetricsOverHTTP() throws {
        let metrics = DriverMetrics()
        metrics.csiCallCompleted(method: "Probe", code: .ok, duration: .microseconds(50))
        let server = try MetricsServer(address: MetricsAddress(parsing: "127.0.0.1:0"), metrics: metrics)
        defer { server.stop() }
        let port = String(server.boundAddress.split(separator: ":").last!)
        #expect(port != "0")

        let ok = try Self.request(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(ok.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(ok.contains("Content-Type: text/plain; version=0.0.4"))
        #expect(ok.contains(#"vineyard_csi_calls_total{method="Probe",code="OK"} 1"#))
        let body = ok.split(separator: "\r\n\r\n", maxSplits: 1).last.map(String.init) ?? ""
        #expect(ok.contains("Content-Length: \(body.utf8.count)\r\n"))

        #expect(try Self.request(port, "GET /other HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 404 "))
        #expect(try Self.request(port, "POST /metrics HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 405 "))
        #expect(try Self.request(port, "nonsense\r\n\r\n").hasPrefix("HTTP/1.1 400 "))
        let head = try Self.request(port, "HEAD /metrics HTTP/1.0\r\n\r\n")
        #expect(head.hasPrefix("HTTP/1.1 200 OK\r\n") && head.hasSuffix("\r\n\r\n"))
    }

    @Test func addressesParseOrNameTheProblem() throws {
        #expect(try MetricsAddress(parsing: ":9810") == MetricsAddress(parsing: ":9810"))
        #expect(try MetricsAddress(parsing: ":9810").host == nil)
        #expect(try MetricsAddress(parsing: "[::1]:80").host == "::1")
        #expect(try MetricsAddress(parsing: "127.0.0.1:80").description == "127.0.0.1:80")
        for bad in ["9810", "host:", "host:port", ":70000", "::1:80"] {
            #expect(throws: MetricsServerError.self) { try MetricsAddress(parsing: bad) }
        }
    }

    @Test func aTakenPortIsAnError() throws {
        let metrics = DriverMetrics()
        let first = try MetricsServer(address: MetricsAddress(parsing: "127.0.0.1:0"), metrics: metrics)
        defer { first.stop() }
        #expect(throws: MetricsServerError.self) {
            try MetricsServer(address: MetricsAddress(parsing: first.boundAddress), metrics: metrics)
        }
    }
}

private final class Counts: Sendable {
    let value = Mutex((staged: 0, published: 0))
}
