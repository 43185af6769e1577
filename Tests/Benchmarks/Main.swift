import ArgumentParser
import POSIXCore

/// `vineyard-csi-bench`: benchmarks that print ratios against baselines measured in the same run.
@main
struct VineyardCSIBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vineyard-csi-bench",
        abstract: "Benchmarks of vineyard-csi; each prints a table against a baseline measured in the same run.",
        subcommands: [CSILatencyBenchmark.self, StoreBenchmark.self, FUSEFloorBenchmark.self]
    )

    static func main() {
        ProcessSignals.applyPolicy()
        main(nil)
    }
}
