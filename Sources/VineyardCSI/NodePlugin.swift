import CSIDriver
import Foundation
import Logging
import SharedMemoryStore

/// The node plugin of this process: the volume host that serves mounts and the CSI node
/// service over it, recovered from the node's records.
struct NodePlugin: Sendable {
    let service: NodeService
    let host: any VolumeHost
    /// What the host does at shutdown: unmount everything, or hand the mounts over.
    let releaseMounts: @Sendable () -> Void

    /// Builds the host and the node service, then serves again every recorded volume.
    static func start(
        options: DriverOptions, registry: StoreRegistry, capacityLedger: (any VolumeCapacityLedger)?, logger: Logger
    ) async throws -> NodePlugin {
        let assembled = volumeHost(options: options, registry: registry, logger: logger)
        let service = try NodeService(
            configuration: NodeConfiguration(
                nodeID: options.nodeid,
                stateDirectory: "\(options.stateDir)/node",
                maxVolumes: options.maxVolumes,
                defaultCluster: options.defaultCluster,
                backendSelection: options.backendSelection
            ),
            host: assembled.host,
            mounter: LinuxMounter(),
            logger: logger,
            capacityLedger: capacityLedger
        )
        await service.recover()
        await DedicatedThread.run(named: "discard unclaimed mounts", assembled.afterRecovery)
        return NodePlugin(service: service, host: assembled.host, releaseMounts: assembled.release)
    }

    /// The volume host of both backends: the embedded stores (handing mounts over across
    /// restarts when `--handover-dir` is set) and the vineyard deployments' vineyardds.
    private static func volumeHost(options: DriverOptions, registry: StoreRegistry, logger: Logger)
        -> (host: any VolumeHost, release: @Sendable () -> Void, afterRecovery: @Sendable () -> Void)
    {
        let socketDirectory = "\(options.stateDir)/node/ipc"
        let directReads = options.readMode == .direct
        let vineyardd = VineyarddVolumeHost(
            selection: options.backendSelection, logger: logger, socketDirectory: socketDirectory)
        if options.handoverDir.isEmpty {
            let plain = FUSEVolumeHost(
                registry: registry, logger: logger, socketDirectory: socketDirectory, directReads: directReads)
            let release: @Sendable () -> Void = {
                vineyardd.unmountAll()
                plain.unmountAll()
            }
            return (BackendVolumeHost(embedded: plain, vineyardd: vineyardd), release, {})
        }
        let holderExecutable = options.spawnFdHolder ? siblingExecutable("vineyard-csi-fdholder") : nil
        let handover = HandoverVolumeHost(
            registry: registry,
            configuration: HandoverConfiguration(directory: options.handoverDir, holderExecutable: holderExecutable),
            logger: logger, socketDirectory: socketDirectory, directReads: directReads)
        let release: @Sendable () -> Void = {
            vineyardd.unmountAll()
            handover.handOverAll()
        }
        return (BackendVolumeHost(embedded: handover, vineyardd: vineyardd), release, { handover.discardUnclaimed() })
    }

    /// `name` in the directory of this executable.
    static func siblingExecutable(_ name: String) -> String {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent(name).path
    }
}
