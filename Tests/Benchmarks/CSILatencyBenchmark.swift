import ArgumentParser
import CSIProto
import Foundation
import GRPCTransport
import SwiftProtobuf
import Synchronization

/// `vineyard-csi-bench csi`: latency and throughput of CSI calls over a running driver's socket.
///
/// Run by `scripts/bench-csi.sh`, which starts the driver with fsync'd state on local disk.
struct CSILatencyBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "csi",
        abstract: "Measure CreateVolume/DeleteVolume and Probe latency over a running driver's socket."
    )

    @Option(help: "The driver's endpoint.")
    var endpoint: String

    @Option(help: "CreateVolume/DeleteVolume pairs to time.")
    var volumePairs = 2_000

    @Option(help: "Probe calls to time.")
    var probes = 10_000

    @Option(help: "Threads issuing Probe calls at once over the same connection, for the concurrent row.")
    var concurrency = 8

    func run() throws {
        let client = try UnaryClient(endpoint: try Endpoint(parsing: endpoint))
        // Warm the connection so the first call's channel setup is not measured.
        for _ in 0..<50 { _ = try client.call("/csi.v1.Identity/Probe", try Csi_V1_ProbeRequest().serializedBytes()) }

        var create: [Duration] = []
        var delete: [Duration] = []
        let clock = ContinuousClock()
        let pairsStart = clock.now
        for index in 0..<volumePairs {
            var request = Csi_V1_CreateVolumeRequest()
            request.name = "bench-\(ProcessInfo.processInfo.processIdentifier)-\(index)"
            request.capacityRange.requiredBytes = 1 << 20
            var capability = Csi_V1_VolumeCapability()
            capability.mount = .init()
            capability.accessMode.mode = .singleNodeWriter
            request.volumeCapabilities = [capability]
            let bytes: [UInt8] = try request.serializedBytes()
            var started = clock.now
            let response = try Csi_V1_CreateVolumeResponse(
                serializedBytes: try client.call("/csi.v1.Controller/CreateVolume", bytes))
            create.append(clock.now - started)
            var deletion = Csi_V1_DeleteVolumeRequest()
            deletion.volumeID = response.volume.volumeID
            let deletionBytes: [UInt8] = try deletion.serializedBytes()
            started = clock.now
            _ = try client.call("/csi.v1.Controller/DeleteVolume", deletionBytes)
            delete.append(clock.now - started)
        }
        let pairsElapsed = clock.now - pairsStart

        var probe: [Duration] = []
        let probeBytes: [UInt8] = try Csi_V1_ProbeRequest().serializedBytes()
        let probesStart = clock.now
        for _ in 0..<probes {
            let started = clock.now
            _ = try client.call("/csi.v1.Identity/Probe", probeBytes)
            probe.append(clock.now - started)
        }
        let probesElapsed = clock.now - probesStart

        // The same number of Probe calls again, issued by several threads over the one channel:
        // kubelet and the sidecars call concurrently, and gRPC multiplexes them on one connection.
        let perThread = probes / concurrency
        let latencies = Mutex<[Duration]>([])
        let concurrentStart = clock.now
        DispatchQueue.concurrentPerform(iterations: concurrency) { _ in
            var local: [Duration] = []
            for _ in 0..<perThread {
                let started = clock.now
                _ = try? client.call("/csi.v1.Identity/Probe", probeBytes)
                local.append(clock.now - started)
            }
            latencies.withLock { $0 += local }
        }
        let concurrentElapsed = clock.now - concurrentStart

        print("CSI call latency over \(endpoint) (one connection)")
        print(LatencyRow.header)
        print(LatencyRow(name: "CreateVolume", samples: create, elapsed: pairsElapsed).line)
        print(LatencyRow(name: "DeleteVolume", samples: delete, elapsed: pairsElapsed).line)
        print(LatencyRow(name: "Probe", samples: probe, elapsed: probesElapsed).line)
        print(LatencyRow(name: "Probe x\(concurrency) threads", samples: latencies.withLock { $0 }, elapsed: concurrentElapsed).line)
        print("calls/s for Create/Delete counts both calls of each pair over the pairs' wall time.")
    }
}

/// One row of a latency table: p50, p99, max and throughput.
struct LatencyRow {
    var name: String
    var samples: [Duration]
    var elapsed: Duration

    static let header = "call                 count      p50 (ms)   p99 (ms)   max (ms)   calls/s"

    var line: String {
        let sorted = samples.sorted()
        func percentile(_ p: Double) -> Double {
            sorted.isEmpty ? 0 : milliseconds(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))])
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let callsPerSecond = name.hasPrefix("Probe") ? Double(samples.count) / seconds : Double(samples.count * 2) / seconds
        return String(
            format: "%@ %6d %11.3f %10.3f %10.3f %9.0f", name.padding(toLength: 20, withPad: " ", startingAt: 0), samples.count, percentile(0.5),
            percentile(0.99), sorted.last.map(milliseconds) ?? 0, callsPerSecond)
    }

    private func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1e3 + Double(duration.components.attoseconds) / 1e15
    }
}
