import ArgumentParser
import CSIDriver
import DriverMetrics
import Foundation
import GRPCTransport

/// Which CSI plugins this process runs.
enum PluginMode: String, ExpressibleByArgument, CaseIterable {
    /// Controller and node in one process: local mode, tests and single-node clusters.
    case all
    /// The controller plugin only (the controller Deployment).
    case controller
    /// The node plugin only (the node DaemonSet).
    case node

    var runsController: Bool { self != .node }
    var runsNode: Bool { self != .controller }
}

/// How files opened read-only are read.
enum ReadMode: String, ExpressibleByArgument, CaseIterable {
    /// Through the kernel's page cache: repeated and small reads are served by the kernel.
    case pageCache = "page-cache"
    /// `direct_io`: one copy from the store into the reader's buffer, nothing cached; best for
    /// reading large files once (pipelines), a round trip per read for readers of small pieces.
    case direct
}

extension BackendSelection.Mode: ExpressibleByArgument {}

/// The command-line flags of `vineyard-csi`, named like vineyard's own CSI driver's.
struct DriverOptions: ParsableArguments {
    @Option(help: "CSI endpoint to serve: unix:///path/to/csi.sock or tcp://host:port.")
    var endpoint: String = "unix:///csi/csi.sock"

    @Option(help: "This node's id, reported to Kubernetes by NodeGetInfo (default: the host name).")
    var nodeid: String = ProcessInfo.processInfo.hostName

    @Option(help: "Directory for the driver's durable state (volumes, node mounts); must survive restarts.")
    var stateDir: String = "/var/lib/vineyard-csi"

    @Option(help: "Which plugins to run: all, controller or node.")
    var mode: PluginMode = .all

    @Option(help: "Size of each embedded vineyard store (one per vineyard cluster on a node), e.g. 4Gi.")
    var storeSize: String = "4Gi"

    @Option(help: "Tmpfs directory holding the embedded stores' shared memory; must survive driver restarts.")
    var storeDir: String = "/dev/shm/vineyard-csi"

    @Option(help: ArgumentHelp(
        "Memory of each embedded store to back at start, e.g. 4Gi (like vineyardd's --reserve_memory).",
        discussion: "Files written into backed memory skip the first-touch allocation of tmpfs pages; the memory is taken at start instead of when first written. 0 backs memory as it is first used."))
    var storePrefault: String = "0"

    @Flag(help: ArgumentHelp(
        "Back the embedded stores with 2 MiB pages: make --store-dir a tmpfs of its own mounted huge=within_size.",
        discussion: "Keeps such a tmpfs if the directory already is one. A directory that holds stores on another file system stays as it is (a warning says so): a tmpfs mounted over it would hide them. In a DaemonSet the store directory's hostPath needs mountPropagation: Bidirectional so the tmpfs outlives the container."))
    var storeHugePages = false

    @Option(help: "Size of a volume whose claim requests no capacity, e.g. 1Gi.")
    var defaultVolumeSize: String = "1Gi"

    @Option(help: "Vineyard cluster (namespace/name) for volumes whose StorageClass names none.")
    var defaultCluster: String = "vineyard-system/vineyardd-sample"

    @Option(help: ArgumentHelp(
        "Backend of new volumes: auto, embedded or vineyardd.",
        discussion: "auto uses a vineyard cluster's own vineyardd (cluster mode: names known cluster-wide, volumes not pinned to a node) when its socket exists at <vineyard-socket-root>/<namespace>/<name>/vineyard.sock, and the node's embedded store otherwise. A StorageClass parameter k8s.v6d.io/vineyard/backend overrides it per class."))
    var backend: BackendSelection.Mode = .auto

    @Option(help: "Where vineyard's operator puts its deployments' sockets (<root>/<namespace>/<name>/vineyard.sock).")
    var vineyardSocketRoot: String = BackendSelection.defaultSocketRoot

    @Option(help: "Maximum number of volumes on this node, reported by NodeGetInfo (0 = no limit).")
    var maxVolumes: Int = 0

    @Option(help: "Permission bits of the unix socket, in octal.")
    var socketMode: String = "0660"

    @Option(help: "Seconds in-flight calls get to finish after SIGTERM or SIGINT.")
    var shutdownGracePeriod: Int = 10

    @Option(help: ArgumentHelp(
        "Local mode: publish a volume named 'local' at this directory, without Kubernetes.",
        discussion: "The driver creates, stages and publishes the volume through its own CSI services at start, and unpublishes and unstages it on SIGINT/SIGTERM; the files stay in the store for the next run."))
    var localVolume: String?

    @Option(help: ArgumentHelp(
        "Keep FUSE mounts alive across restarts, crashes and upgrades of the node plugin, with this host directory (tmpfs, e.g. /run/vineyard-csi).",
        discussion: "It holds the socket of vineyard-csi-fdholder (fdholder.sock), which keeps every mount's /dev/fuse descriptor, and each mount's inode table. Empty: mounts end with the plugin and are mounted again at start."))
    var handoverDir: String = ""

    @Flag(help: "Start vineyard-csi-fdholder (installed next to this executable) when none listens in --handover-dir (without Kubernetes; in a cluster it is a DaemonSet of its own).")
    var spawnFdHolder = false

    @Flag(help: ArgumentHelp(
        "Run as one of the per-node controllers of a node-local deployment (needs --mode all).",
        discussion: "csi-provisioner and csi-snapshotter run beside every node plugin with --node-deployment: volumes are created on this node only, snapshots and clones are served from this node's store, and expansion happens at NodeExpandVolume (ControllerExpandVolume is not advertised)."))
    var nodeDeployment = false

    @Option(help: ArgumentHelp(
        "How volumes serve files opened read-only: page-cache or direct.",
        discussion: "direct copies once, from the store into the reader's buffer, instead of twice through the page cache when a file is read for the first time, but every read() becomes a request. Needs Linux 6.6+ (mmap of such files); older kernels keep page-cache."))
    var readMode: ReadMode = .pageCache

    @Flag(help: "Log every CSI call and response (secret fields redacted).")
    var verbose = false

    @Option(help: ArgumentHelp(
        "Serve Prometheus metrics at http://<address>/metrics, e.g. :9810 or 127.0.0.1:9810 (off when not given).",
        discussion: "CSI calls, file operations, the vineyard sockets' connections and requests, the stores' usage, volumes staged and published, and mounts recovered at start (docs/metrics.md)."))
    var metricsAddress: String?

    func validate() throws {
        do { _ = try Endpoint(parsing: endpoint) } catch {
            throw ValidationError("--endpoint \(endpoint): \(error)")
        }
        if nodeid.isEmpty { throw ValidationError("--nodeid must not be empty") }
        if parsedStoreSize == nil || parsedStoreSize == 0 {
            throw ValidationError("--store-size \(storeSize) is not a positive size such as 4Gi or 512Mi")
        }
        guard let prefault = parsedStorePrefault, prefault <= (parsedStoreSize ?? 0) else {
            throw ValidationError("--store-prefault \(storePrefault) is not a size up to --store-size \(storeSize), such as 1Gi or 0")
        }
        guard let volumeSize = parsedDefaultVolumeSize, volumeSize > 0 else {
            throw ValidationError("--default-volume-size \(defaultVolumeSize) is not a positive size such as 1Gi")
        }
        if let storeSize = parsedStoreSize, volumeSize > storeSize {
            throw ValidationError("--default-volume-size \(defaultVolumeSize) exceeds --store-size \(self.storeSize)")
        }
        if ClusterReference(parsing: defaultCluster) == nil {
            throw ValidationError("--default-cluster \(defaultCluster) is not namespace/name with Kubernetes names")
        }
        if maxVolumes < 0 { throw ValidationError("--max-volumes must not be negative") }
        guard let permissions = parsedSocketMode, permissions <= 0o777 else {
            throw ValidationError("--socket-mode \(socketMode) is not an octal permission such as 0660")
        }
        if localVolume != nil && self.mode != .all {
            throw ValidationError("--local-volume needs --mode all (it uses the controller and the node plugin)")
        }
        if nodeDeployment && self.mode != .all {
            throw ValidationError("--node-deployment needs --mode all (the controller must run beside this node's stores)")
        }
        if shutdownGracePeriod < 0 { throw ValidationError("--shutdown-grace-period must not be negative") }
        if !handoverDir.isEmpty && !handoverDir.hasPrefix("/") {
            throw ValidationError("--handover-dir \(handoverDir) is not an absolute path")
        }
        if spawnFdHolder && handoverDir.isEmpty { throw ValidationError("--spawn-fd-holder needs --handover-dir") }
        if let metricsAddress {
            do { _ = try MetricsAddress(parsing: metricsAddress) } catch {
                throw ValidationError("--metrics-address: \(error)")
            }
        }
        if !vineyardSocketRoot.hasPrefix("/") {
            throw ValidationError("--vineyard-socket-root \(vineyardSocketRoot) is not an absolute path")
        }
    }

    var parsedStoreSize: Int? { ByteCount.parse(storeSize) }
    var backendSelection: BackendSelection { BackendSelection(mode: backend, socketRoot: vineyardSocketRoot) }
    var parsedDefaultVolumeSize: Int? { ByteCount.parse(defaultVolumeSize) }
    var parsedStorePrefault: Int? { ByteCount.parse(storePrefault) }
    var parsedSocketMode: UInt32? { UInt32(socketMode, radix: 8) }
    var parsedMetricsAddress: MetricsAddress? { metricsAddress.flatMap { try? MetricsAddress(parsing: $0) } }
}
