import ArgumentParser
import CSIDriver
import DriverMetrics
import FoundationEssentials
import Glibc
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

/// The command-line flags of `vineyard-csi`, named like vineyard's own CSI driver's, each
/// parsed once into a typed value. Options with a `transform` fail naming the option (their
/// help states the default: ArgumentParser shows none for them).
struct DriverOptions: ParsableArguments {
    @Option(help: "CSI endpoint to serve: unix:///path/to/csi.sock or tcp://host:port. (default: unix:///csi/csi.sock)", transform: Endpoint.parseOption)
    var endpoint: Endpoint = .unix(path: "/csi/csi.sock")

    @Option(help: "This node's id, reported to Kubernetes by NodeGetInfo (default: the host name).")
    var nodeid: String = ProcessInfo.processInfo.hostName

    @Option(help: "Directory for the driver's durable state (volumes, node mounts); must survive restarts.")
    var stateDir: String = "/var/lib/vineyard-csi"

    @Option(help: "Which plugins to run: all, controller or node.")
    var mode: PluginMode = .all

    @Option(
        help: "Size of each embedded vineyard store (one per vineyard cluster on a node), e.g. 4Gi. (default: 4Gi)",
        transform: SizeArgument.parser("--store-size", example: "4Gi or 512Mi"))
    var storeSize = SizeArgument(bytes: 4 << 30)

    @Option(help: "Tmpfs directory holding the embedded stores' shared memory; must survive driver restarts.")
    var storeDir: String = "/dev/shm/vineyard-csi"

    @Option(help: ArgumentHelp(
        "Memory of each embedded store to back at start, e.g. 4Gi (like vineyardd's --reserve_memory). (default: 0)",
        discussion: "Files written into backed memory skip the first-touch allocation of tmpfs pages; the memory is taken at start instead of when first written. 0 backs memory as it is first used."),
        transform: SizeArgument.parser("--store-prefault", example: "1Gi or 0"))
    var storePrefault = SizeArgument(bytes: 0)

    @Flag(help: ArgumentHelp(
        "Back the embedded stores with 2 MiB pages: make --store-dir a tmpfs of its own mounted huge=within_size.",
        discussion: "Keeps such a tmpfs if the directory already is one. A directory that holds stores on another file system stays as it is (a warning says so): a tmpfs mounted over it would hide them. In a DaemonSet the store directory's hostPath needs mountPropagation: Bidirectional so the tmpfs outlives the container."))
    var storeHugePages = false

    @Option(
        help: "Size of a volume whose claim requests no capacity, e.g. 1Gi. (default: 1Gi)",
        transform: SizeArgument.parser("--default-volume-size", example: "1Gi"))
    var defaultVolumeSize = SizeArgument(bytes: 1 << 30)

    @Option(
        help: "Vineyard cluster (namespace/name) for volumes whose StorageClass names none. (default: vineyard-system/vineyardd-sample)",
        transform: ClusterReference.parseOption)
    var defaultCluster = ClusterReference(namespace: "vineyard-system", name: "vineyardd-sample")

    @Option(help: ArgumentHelp(
        "Backend of new volumes: auto, embedded or vineyardd.",
        discussion: "auto uses a vineyard cluster's own vineyardd (cluster mode: names known cluster-wide, volumes not pinned to a node) when its socket exists at <vineyard-socket-root>/<namespace>/<name>/vineyard.sock, and the node's embedded store otherwise. A StorageClass parameter k8s.v6d.io/vineyard/backend overrides it per class."))
    var backend: BackendSelection.Mode = .auto

    @Option(help: "Where vineyard's operator puts its deployments' sockets (<root>/<namespace>/<name>/vineyard.sock).")
    var vineyardSocketRoot: String = BackendSelection.defaultSocketRoot

    @Option(help: "Maximum number of volumes on this node, reported by NodeGetInfo (0 = no limit).")
    var maxVolumes: Int = 0

    @Option(help: "Permission bits of the unix socket, in octal. (default: 0660)", transform: SocketPermissions.parse)
    var socketMode = SocketPermissions(bits: 0o660, description: "0660")

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

    @Option(
        help: ArgumentHelp(
            "Blobs of at least this size get a shared-memory file of their own in the store directory, e.g. 1Mi; 0 keeps every blob in the arena. (default: 1Mi)",
            discussion: "A file of its own is what the kernel serves reads and mappings of a volume's file from by itself (FUSE passthrough), and what vineyard clients map zero-copy. Smaller blobs share the arena: a file each would cost more in creates and mappings than passthrough repays."),
        transform: SizeArgument.parser("--blob-file-threshold", example: "1Mi or 0"))
    var blobFileThreshold = SizeArgument(bytes: 1 << 20)

    @Flag(help: ArgumentHelp(
        "Serve every read of a volume's files through the driver, never through FUSE passthrough.",
        discussion: "Without this flag, files whose bytes have a file of their own (see --blob-file-threshold) are served by the kernel from that file where it allows it (Linux 6.9+, CAP_SYS_ADMIN); elsewhere the driver serves them either way and says so once in its log."))
    var noPassthrough = false

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
        discussion: "CSI calls, file operations, the vineyard sockets' connections and requests, the stores' usage, volumes staged and published, and mounts recovered at start (docs/metrics.md)."),
        transform: MetricsAddress.parseOption)
    var metricsAddress: MetricsAddress?

    func validate() throws {
        if nodeid.isEmpty { throw ValidationError("--nodeid must not be empty") }
        if storeSize.bytes == 0 {
            throw ValidationError("--store-size \(storeSize) is not a positive size such as 4Gi or 512Mi")
        }
        if storePrefault.bytes > storeSize.bytes {
            throw ValidationError("--store-prefault \(storePrefault) is not a size up to --store-size \(storeSize), such as 1Gi or 0")
        }
        if defaultVolumeSize.bytes == 0 {
            throw ValidationError("--default-volume-size \(defaultVolumeSize) is not a positive size such as 1Gi")
        }
        if defaultVolumeSize.bytes > storeSize.bytes {
            throw ValidationError("--default-volume-size \(defaultVolumeSize) exceeds --store-size \(storeSize)")
        }
        if maxVolumes < 0 { throw ValidationError("--max-volumes must not be negative") }
        if localVolume != nil && mode != .all {
            throw ValidationError("--local-volume needs --mode all (it uses the controller and the node plugin)")
        }
        if nodeDeployment && mode != .all {
            throw ValidationError("--node-deployment needs --mode all (the controller must run beside this node's stores)")
        }
        if shutdownGracePeriod < 0 { throw ValidationError("--shutdown-grace-period must not be negative") }
        if !handoverDir.isEmpty && !handoverDir.hasPrefix("/") {
            throw ValidationError("--handover-dir \(handoverDir) is not an absolute path")
        }
        if spawnFdHolder && handoverDir.isEmpty { throw ValidationError("--spawn-fd-holder needs --handover-dir") }
        if !vineyardSocketRoot.hasPrefix("/") {
            throw ValidationError("--vineyard-socket-root \(vineyardSocketRoot) is not an absolute path")
        }
    }

    var backendSelection: BackendSelection { BackendSelection(mode: backend, socketRoot: vineyardSocketRoot) }
}
