import CSIDriver
import Dispatch
import DriverMetrics
import FUSEKit
import Foundation
import GRPCTransport
import Logging
import SharedMemoryStore
import VineyardIPC

/// Wires the configured plugins to the gRPC server and runs them until SIGTERM or SIGINT.
final class Driver: Sendable {
    private let server: UnaryServer
    private let router: CSIRouter
    private let host: (any VolumeHost)?
    /// What the volume host does at shutdown: unmount everything, or hand the mounts over.
    private let releaseMounts: @Sendable () -> Void
    private let localVolume: LocalVolume?
    private let logger: Logger
    private let gracePeriod: Duration
    private let metricsServer: MetricsServer?

    private static func prepareHugePageStoreDirectory(_ directory: String, logger: Logger) {
        guard HugePageStoreDirectory.kernelAllowsHugeTmpfs else {
            logger.warning("--store-huge-pages: this kernel gives tmpfs no huge pages (shmem_enabled); stores use 4 KiB pages")
            return
        }
        // A node that already holds stores on 4 KiB pages keeps them (an upgrade must not take
        // a node's volumes away); the flag applies once they are gone.
        do {
            let outcome = try HugePageStoreDirectory.prepare(at: directory)
            logger.info("store directory on huge pages", metadata: ["directory": "\(directory)", "tmpfs": "\(outcome)"])
        } catch {
            logger.warning("--store-huge-pages: stores use 4 KiB pages: \(error)")
        }
    }

    init(options: DriverOptions, logger: Logger) throws {
        let stateDirectory = options.stateDir
        let defaultCluster = ClusterReference(parsing: options.defaultCluster)!
        let metrics = options.parsedMetricsAddress.map { _ in DriverMetrics() }
        if let metrics {
            FileOperationObservation.install(metrics)
            IPCServerObservation.install(metrics)
        }
        if options.storeHugePages && options.mode.runsNode {
            Self.prepareHugePageStoreDirectory(options.storeDir, logger: logger)
        }
        // One registry per process: the node's volumes and the controller's snapshots and
        // clones must see the same store of each vineyard cluster.
        let registry = options.mode.runsNode
            ? StoreRegistry(
                rootDirectory: options.storeDir,
                defaults: StoreConfiguration(
                    directory: options.storeDir, capacity: options.parsedStoreSize!, prefault: options.parsedStorePrefault!)
            ) : nil
        let controller = try options.mode.runsController
            ? ControllerService(
                configuration: ControllerConfiguration(
                    nodeID: options.nodeid,
                    stateDirectory: "\(stateDirectory)/controller",
                    storeCapacity: options.parsedStoreSize!,
                    defaultVolumeSize: options.parsedDefaultVolumeSize!,
                    defaultCluster: defaultCluster,
                    nodeLocal: options.nodeDeployment,
                    backendSelection: options.backendSelection
                ),
                content: registry.map { EmbeddedVolumeContent(registry: $0) },
                logger: logger
            ) : nil
        var host: (any VolumeHost)?
        var node: NodeService?
        var recoveryCounter: RecoveryCountingVolumeHost?
        var releaseMounts: @Sendable () -> Void = {}
        var afterRecovery: () -> Void = {}
        if let registry {
            let socketDirectory = "\(stateDirectory)/node/ipc"
            let fuse: any VolumeHost
            if options.handoverDir.isEmpty {
                let plain = FUSEVolumeHost(
                    registry: registry, logger: logger, socketDirectory: socketDirectory,
                    directReads: options.readMode == .direct)
                releaseMounts = { plain.unmountAll() }
                fuse = plain
            } else {
                let holderExecutable = options.spawnFdHolder ? Self.siblingExecutable("vineyard-csi-fdholder") : nil
                let handover = HandoverVolumeHost(
                    registry: registry,
                    configuration: HandoverConfiguration(directory: options.handoverDir, holderExecutable: holderExecutable),
                    logger: logger, socketDirectory: socketDirectory, directReads: options.readMode == .direct)
                releaseMounts = { handover.handOverAll() }
                afterRecovery = { handover.discardUnclaimed() }
                fuse = handover
            }
            let vineyardd = VineyarddVolumeHost(
                selection: options.backendSelection, logger: logger, socketDirectory: socketDirectory)
            let backends = BackendVolumeHost(embedded: fuse, vineyardd: vineyardd)
            recoveryCounter = metrics.map { RecoveryCountingVolumeHost(backends, metrics: $0) }
            let routed: any VolumeHost = recoveryCounter ?? backends
            metrics?.addCollector(StoreCollector(registry: registry))
            let releaseEmbedded = releaseMounts
            releaseMounts = {
                vineyardd.unmountAll()
                releaseEmbedded()
            }
            node = try NodeService(
                configuration: NodeConfiguration(
                    nodeID: options.nodeid,
                    stateDirectory: "\(stateDirectory)/node",
                    maxVolumes: options.maxVolumes,
                    defaultCluster: defaultCluster,
                    backendSelection: options.backendSelection
                ),
                host: routed,
                mounter: LinuxMounter(),
                logger: logger,
                capacityLedger: controller
            )
            host = routed
        }
        if let node {
            metrics?.addCollector(VolumeCollector { node.volumeCounts })
            if let recoveryCounter { recoveryCounter.recovering { node.recover() } } else { node.recover() }
        }
        afterRecovery()
        self.releaseMounts = releaseMounts
        let identity = IdentityService(isReady: { [host] in host?.isReady ?? true })
        let router = CSIRouter(
            identity: identity, controller: controller, node: node, logger: logger, verbose: options.verbose,
            observer: metrics)
        // Bound before the CSI socket, so a taken metrics port fails the start before kubelet sees a plugin.
        if let metrics, let address = options.parsedMetricsAddress {
            let server = try MetricsServer(address: address, metrics: metrics)
            logger.info("serving metrics", metadata: ["url": "http://\(server.boundAddress)/metrics"])
            self.metricsServer = server
        } else {
            self.metricsServer = nil
        }
        let endpoint = try Endpoint(parsing: options.endpoint)
        self.server = try UnaryServer(endpoint: endpoint, socketMode: options.parsedSocketMode!, handler: router)
        self.router = router
        self.host = host
        self.localVolume = options.localVolume.map {
            LocalVolume(router: router, nodeID: options.nodeid, stateDirectory: stateDirectory, target: $0)
        }
        self.logger = logger
        self.gracePeriod = .seconds(options.shutdownGracePeriod)
        logger.info(
            "serving CSI",
            metadata: [
                "driver": "\(DriverInfo.name)", "version": "\(DriverInfo.version)", "endpoint": "\(endpoint)",
                "mode": "\(options.mode.rawValue)", "node": "\(options.nodeid)",
                "node-deployment": "\(options.nodeDeployment)", "read-mode": "\(options.readMode.rawValue)",
            ]
        )
        let selection = options.backendSelection
        logger.info(
            "backend selection",
            metadata: [
                "backend": "\(selection.mode.rawValue)", "vineyard-socket-root": "\(selection.socketRoot)",
                "default-cluster": "\(defaultCluster)", "default-cluster-backend": "\(selection.choose(for: defaultCluster))",
            ])
    }

    /// Serves until SIGTERM or SIGINT, then lets in-flight calls finish, unmounts what this
    /// process serves and removes the socket.
    func serveUntilSignalled() async throws {
        if let localVolume {
            do {
                try await localVolume.publish()
            } catch {
                await stopServing()
                throw error
            }
            logger.info("local volume ready", metadata: ["path": "\(localVolume.target)"])
        }
        let stopRequested = AsyncStream<Int32>.makeStream()
        let signals = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { stopRequested.continuation.yield(number) }
            source.resume()
            return source
        }
        for await number in stopRequested.stream {
            logger.info("shutting down", metadata: ["signal": "\(number)"])
            break
        }
        signals.forEach { $0.cancel() }
        if let localVolume {
            do { try await localVolume.unpublish() } catch {
                logger.error("cannot unpublish the local volume", metadata: ["error": "\(error)"])
            }
        }
        await stopServing()
        logger.info("stopped")
    }

    /// Lets in-flight calls finish, removes the socket, and unmounts what this process serves.
    private func stopServing() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread { [server, gracePeriod] in
                server.shutdown(gracePeriod: gracePeriod)
                server.wait()
                continuation.resume()
            }.start()
        }
        metricsServer?.stop()
        releaseMounts()
    }

    /// `name` in the directory of this executable.
    static func siblingExecutable(_ name: String) -> String {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent(name).path
    }
}

enum FileHandleOutput {
    static func standardError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
