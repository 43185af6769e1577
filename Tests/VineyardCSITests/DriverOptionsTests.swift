import ArgumentParser
import CSIDriver
import DriverMetrics
import GRPCTransport
import Testing

@testable import VineyardCSI

/// The driver's flags parse once into typed values, and bad ones fail naming the flag.
@Suite struct DriverOptionsTests {
    func parse(_ arguments: [String]) throws -> DriverOptions {
        try DriverOptions.parse(arguments)
    }

    func message(_ arguments: [String]) -> String {
        do {
            _ = try DriverOptions.parse(arguments)
            Issue.record("\(arguments) parsed")
            return ""
        } catch {
            return DriverOptions.message(for: error)
        }
    }

    @Test func defaultsAreTyped() throws {
        let options = try parse([])
        #expect(options.storeSize.bytes == 4 << 30)
        #expect(options.storePrefault.bytes == 0)
        #expect(options.defaultVolumeSize.bytes == 1 << 30)
        #expect(options.defaultCluster == ClusterReference(namespace: "vineyard-system", name: "vineyardd-sample"))
        #expect(options.endpoint == .unix(path: "/csi/csi.sock"))
        #expect(options.socketMode.bits == 0o660)
        #expect(options.metricsAddress == nil)
    }

    @Test func valuesParseOnce() throws {
        let options = try parse([
            "--store-size", "8Gi", "--store-prefault", "1Gi", "--default-volume-size", "512Mi",
            "--default-cluster", "team/store", "--endpoint", "tcp://127.0.0.1:10000", "--socket-mode", "0600",
        ])
        #expect(options.storeSize.bytes == 8 << 30)
        #expect(options.storeSize.description == "8Gi")
        #expect(options.storePrefault.bytes == 1 << 30)
        #expect(options.defaultVolumeSize.bytes == 512 << 20)
        #expect(options.defaultCluster == ClusterReference(namespace: "team", name: "store"))
        #expect(options.endpoint == .tcp(host: "127.0.0.1", port: 10000))
        #expect(options.socketMode.bits == 0o600)
    }

    @Test func metricsAddressParsesOnce() throws {
        let everyInterface = try #require(try parse(["--metrics-address", ":9810"]).metricsAddress)
        #expect(everyInterface.host == nil && everyInterface.port == "9810")
        let loopback = try #require(try parse(["--metrics-address", "[::1]:0"]).metricsAddress)
        #expect(loopback.host == "::1" && loopback.port == "0")
        #expect(loopback.description == "[::1]:0")
    }

    @Test func badValuesNameTheFlag() {
        #expect(message(["--store-prefault", "lots"]).contains("--store-prefault lots is not a size"))
        #expect(message(["--store-size", "4GB"]).contains("--store-size 4GB is not a size"))
        #expect(message(["--store-size", "0"]).contains("--store-size 0 is not a positive size"))
        #expect(message(["--store-size", "8Gi", "--store-prefault", "9Gi"]).contains("--store-prefault 9Gi is not a size up to --store-size 8Gi"))
        #expect(message(["--default-volume-size", "8Gi"]).contains("--default-volume-size 8Gi exceeds --store-size 4Gi"))
        #expect(message(["--default-cluster", "nocluster"]).contains("--default-cluster nocluster is not namespace/name"))
        #expect(message(["--endpoint", "unix://relative"]).contains("--endpoint unix://relative"))
        #expect(message(["--socket-mode", "999"]).contains("--socket-mode 999 is not an octal permission"))
        #expect(message(["--metrics-address", "localhost:notaport"]).contains("--metrics-address: metrics address localhost:notaport"))
        #expect(message(["--metrics-address", "::1:9810"]).contains("write an IPv6 host in brackets"))
        #expect(message(["--spawn-fd-holder"]).contains("--spawn-fd-holder needs --handover-dir"))
        #expect(message(["--node-deployment", "--mode", "node"]).contains("--node-deployment needs --mode all"))
    }
}
