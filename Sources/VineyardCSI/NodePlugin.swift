import CSIDriver
import DriverMetrics
import NodeHost
import FoundationEssentials
import Glibc
import Logging
import SharedMemoryStore

/// The node plugin of this process: the volume host that serves mounts and the CSI node
/// service over it, recovered from the node's records.
struct NodePlugin: Sendable {
    let service: NodeService
    let host: any VolumeHost
    /// What the host does at shutdown: unmount everything, or hand the mounts over.
    let releaseMounts: @Sendable () -> Void

    /// Builds the host and the node service, then serves again every recorded volume; with
    /// `metrics`, the mounts recovered are counted.
    static func start(
        options: DriverOptions, registry: StoreRegistry, capacityLedger: (any VolumeCapacityLedger)?,
        metrics: DriverMetrics?, logger: Logger
    ) async throws -> NodePlugin {
        let nodeHost = await DedicatedThread.run(named: "volume host") {
            volumeHost(options: options, registry: registry, logger: logger)
        }
        let recoveryCounter = metrics.map { RecoveryCountingVolumeHost(nodeHost, metrics: $0) }
        let host: any VolumeHost = recoveryCounter ?? nodeHost
        let service = try NodeService(
            configuration: NodeConfiguration(
                nodeID: options.nodeid,
                stateDirectory: "\(options.stateDir)/node",
                maxVolumes: options.maxVolumes,
                defaultCluster: options.defaultCluster,
                backendSelection: options.backendSelection
            ),
            host: host,
            mounter: LinuxMounter(),
            logger: logger,
            capacityLedger: capacityLedger
        )
        if let recoveryCounter {
            await recoveryCounter.recovering { await service.recover() }
        } else {
            await service.recover()
        }
        await DedicatedThread.run(named: "discard unclaimed mounts") { nodeHost.discardUnclaimed() }
        return NodePlugin(service: service, host: host, releaseMounts: { nodeHost.releaseMounts() })
    }

    /// The volume host of both backends: the embedded stores (handing mounts over across
    /// restarts when `--handover-dir` is set) and the vineyard deployments' vineyardds. Takes
    /// back, as it starts, the mounts an earlier plugin handed over.
    private static func volumeHost(options: DriverOptions, registry: StoreRegistry, logger: Logger) -> NodeVolumeHost {
        let handover = options.handoverDir.isEmpty
            ? nil
            : HandoverConfiguration(
                directory: options.handoverDir,
                holderExecutable: options.spawnFdHolder ? siblingExecutable("vineyard-csi-fdholder") : nil)
        return NodeVolumeHost(
            registry: registry, selection: options.backendSelection, directReads: options.readMode == .direct,
            passthrough: !options.noPassthrough,
            socketDirectory: "\(options.stateDir)/node/ipc", handover: handover, logger: logger)
    }

    /// `name` in the directory of this executable.
    static func siblingExecutable(_ name: String) -> String {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent(name).path
    }
}
