import CSIDriver
import DriverMetrics
import FUSEKit
import NodeHost
import FoundationEssentials
import Glibc
import GRPCTransport
import Logging
import POSIXCore
import SharedMemoryStore
import VineyardIPC

/// The configured plugins behind the gRPC server, run until SIGTERM or SIGINT.
final class Driver: Sendable {
    private let server: UnaryServer
    private let node: NodePlugin?
    private let localVolume: LocalVolume?
    private let logger: Logger
    private let gracePeriod: Duration
    private let metricsServer: MetricsServer?

    private init(
        server: UnaryServer, node: NodePlugin?, localVolume: LocalVolume?, logger: Logger, gracePeriod: Duration,
        metricsServer: MetricsServer?
    ) {
        self.server = server
        self.node = node
        self.localVolume = localVolume
        self.logger = logger
        self.gracePeriod = gracePeriod
        self.metricsServer = metricsServer
    }

    /// Assembles the plugins `options` ask for, recovers the node's volumes, and starts serving
    /// CSI on the endpoint.
    static func start(options: DriverOptions, logger: Logger) async throws -> Driver {
        let metrics = options.metricsAddress.map { _ in DriverMetrics() }
        if let metrics {
            // Before any mount or vineyard.sock exists: their observers are read once per process.
            FileOperationObservation.install(metrics)
            IPCServerObservation.install(metrics)
        }
        // One registry per process: the node's volumes and the controller's snapshots and
        // clones must see the same store of each vineyard cluster.
        var registry: StoreRegistry?
        if options.mode.runsNode {
            // Mounting the stores' tmpfs is blocking work: on its own thread.
            registry = await DedicatedThread.run(named: "store registry") { storeRegistry(options: options, logger: logger) }
        }
        let controller = try options.mode.runsController ? controller(options: options, registry: registry, logger: logger) : nil
        var node: NodePlugin?
        if let registry {
            node = try await NodePlugin.start(
                options: options, registry: registry, capacityLedger: controller, metrics: metrics, logger: logger)
            metrics?.addCollector(StoreCollector(registry: registry))
        }
        if let metrics, let service = node?.service {
            metrics.addCollector(VolumeCollector { service.volumeCounts })
        }
        // Readiness asks /dev/fuse and each vineyardd in use: a blocking check, on its own thread.
        let identity = IdentityService(isReady: { [host = node?.host] in
            guard let host else { return true }
            return await DedicatedThread.run(named: "probe") { host.isReady }
        })
        let router = CSIRouter(
            identity: identity, controller: controller, node: node?.service, logger: logger, verbose: options.verbose,
            observer: metrics)
        // Bound before the CSI socket, so a taken metrics port fails the start before kubelet sees a plugin.
        let metricsServer = try metrics.map { metrics in
            let server = try MetricsServer(address: options.metricsAddress!, metrics: metrics)
            logger.info("serving metrics", metadata: ["url": "http://\(server.boundAddress)/metrics"])
            return server
        }
        let server = try UnaryServer(endpoint: options.endpoint, socketMode: options.socketMode.bits, handler: router)
        let localVolume = options.localVolume.map {
            LocalVolume(router: router, nodeID: options.nodeid, stateDirectory: options.stateDir, target: $0)
        }
        logStart(options: options, logger: logger)
        return Driver(
            server: server, node: node, localVolume: localVolume, logger: logger,
            gracePeriod: .seconds(options.shutdownGracePeriod), metricsServer: metricsServer)
    }

    // MARK: - Parts

    private static func storeRegistry(options: DriverOptions, logger: Logger) -> StoreRegistry {
        if options.storeHugePages { prepareHugePageStoreDirectory(options.storeDir, logger: logger) }
        var defaults = StoreConfiguration(
            directory: options.storeDir, capacity: options.storeSize.bytes, prefault: options.storePrefault.bytes)
        defaults.blobFileThreshold = options.blobFileThreshold.bytes > 0 ? options.blobFileThreshold.bytes : nil
        return StoreRegistry(rootDirectory: options.storeDir, defaults: defaults)
    }

    private static func controller(options: DriverOptions, registry: StoreRegistry?, logger: Logger) throws -> ControllerService {
        try ControllerService(
            configuration: ControllerConfiguration(
                nodeID: options.nodeid,
                stateDirectory: "\(options.stateDir)/controller",
                storeCapacity: options.storeSize.bytes,
                defaultVolumeSize: options.defaultVolumeSize.bytes,
                defaultCluster: options.defaultCluster,
                nodeLocal: options.nodeDeployment,
                backendSelection: options.backendSelection
            ),
            content: registry.map { EmbeddedVolumeContent(registry: $0) },
            vineyarddContent: VineyarddVolumeContent(selection: options.backendSelection),
            logger: logger
        )
    }

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

    private static func logStart(options: DriverOptions, logger: Logger) {
        logger.info(
            "serving CSI",
            metadata: [
                "driver": "\(DriverInfo.name)", "version": "\(DriverInfo.version)", "endpoint": "\(options.endpoint)",
                "mode": "\(options.mode.rawValue)", "node": "\(options.nodeid)",
                "node-deployment": "\(options.nodeDeployment)", "read-mode": "\(options.readMode.rawValue)",
            ]
        )
        let selection = options.backendSelection
        logger.info(
            "backend selection",
            metadata: [
                "backend": "\(selection.mode.rawValue)", "vineyard-socket-root": "\(selection.socketRoot)",
                "default-cluster": "\(options.defaultCluster)",
                "default-cluster-backend": "\(selection.choose(for: options.defaultCluster))",
            ])
        guard options.mode != .controller else { return }
        let threshold = options.blobFileThreshold.bytes > 0 ? "\(options.blobFileThreshold)" : "off"
        if options.noPassthrough {
            logger.info("file passthrough off: the driver serves every read (--no-passthrough)", metadata: ["blob-file-threshold": "\(threshold)"])
        } else if let obstacle = PassthroughSupport.obstacle {
            logger.warning("file passthrough unavailable, the driver serves every read: \(obstacle)", metadata: ["blob-file-threshold": "\(threshold)"])
        } else {
            logger.info(
                "file passthrough: the kernel serves reads and mappings of sealed files that have a blob file of their own",
                metadata: ["blob-file-threshold": "\(threshold)"])
        }
    }

    // MARK: - Serving

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
        let number = await Self.firstStopSignal()
        logger.info("shutting down", metadata: ["signal": "\(number)"])
        if let localVolume {
            do { try await localVolume.unpublish() } catch {
                logger.error("cannot unpublish the local volume", metadata: ["error": "\(error)"])
            }
        }
        await stopServing()
        logger.info("stopped")
    }

    /// Waits for SIGTERM or SIGINT; they stay ignored afterwards, so a second Ctrl-C cannot
    /// cut the shutdown short.
    private static func firstStopSignal() async -> Int32 {
        let stopRequested = AsyncStream<Int32>.makeStream()
        let handling = ProcessSignals.handleStopRequests { stopRequested.continuation.yield($0) }
        defer { handling.cancel() }
        for await number in stopRequested.stream { return number }
        return SIGTERM
    }

    /// Lets in-flight calls finish, removes the socket, and unmounts what this process serves.
    private func stopServing() async {
        await DedicatedThread.run(named: "shutdown") { [server, gracePeriod] in
            server.shutdown(gracePeriod: gracePeriod)
            server.wait()
        }
        metricsServer?.stop()
        if let release = node?.releaseMounts {
            await DedicatedThread.run(named: "release mounts", release)
        }
    }
}
