import ArgumentParser
import CSIModel

/// What `vctl deploy csidriver` runs: images, pull policies and the driver's settings.
/// The flags are spelled as vineyardctl spells them.
struct DriverImageOptions: ParsableArguments {
    @Option(name: [.customShort("i"), .long], help: "Image of the vineyard-csi driver (built from deploy/Dockerfile).")
    var image = CSIDriverInstallation.defaultImage

    @Option(name: .customLong("imagePullPolicy"), help: "Pull policy of the driver's image: Always, IfNotPresent or Never.")
    var imagePullPolicy = PullPolicy.ifNotPresent

    @Option(
        name: [.customShort("m"), .customLong("volumeBindingMode")],
        help: "volumeBindingMode of the StorageClasses: WaitForFirstConsumer or Immediate."
    )
    var volumeBindingMode = VolumeBindingMode.waitForFirstConsumer

    @Option(
        name: [.customLong("provisionerImage"), .customLong("sidecar.provisionerImage")],
        help: "Image of csi-provisioner."
    )
    var provisionerImage = SidecarImages().provisioner

    @Option(
        name: [.customLong("snapshotterImage"), .customLong("sidecar.snapshotterImage")],
        help: "Image of csi-snapshotter."
    )
    var snapshotterImage = SidecarImages().snapshotter

    @Option(name: [.customLong("resizerImage"), .customLong("sidecar.resizerImage")], help: "Image of csi-resizer.")
    var resizerImage = SidecarImages().resizer

    @Option(
        name: [.customLong("attacherImage"), .customLong("sidecar.attacherImage")],
        help: "Accepted for vineyardctl's scripts and ignored: volumes need no attaching, so no csi-attacher runs."
    )
    var attacherImage: String?

    @Option(
        name: [.customLong("nodeRegistrarImage"), .customLong("sidecar.nodeRegistrarImage")],
        help: "Image of csi-node-driver-registrar."
    )
    var nodeRegistrarImage = SidecarImages().nodeRegistrar

    @Option(
        name: [.customLong("livenessProbeImage"), .customLong("sidecar.livenessProbeImage")],
        help: "Image of livenessprobe."
    )
    var livenessProbeImage = SidecarImages().livenessProbe

    @Option(name: .customLong("sidecar.imagePullPolicy"), help: "Pull policy of the sidecars' images.")
    var sidecarImagePullPolicy = PullPolicy.ifNotPresent

    @Flag(name: .customLong("enableToleration"), help: "Run the node plugin on every node, whatever its taints.")
    var enableToleration = false

    @Flag(help: "Run the driver with --verbose: every CSI call and response is logged.")
    var verbose = false

    @Option(
        name: .customLong("storeSize"),
        help: "Size of each embedded store (one per vineyard cluster per node), e.g. 4Gi; sets the node plugin's memory limit."
    )
    var storeSize = CSIDriverInstallation.defaultStoreSize

    func validate() throws {
        let images = [
            ("--image", image), ("--provisionerImage", provisionerImage), ("--snapshotterImage", snapshotterImage),
            ("--resizerImage", resizerImage), ("--nodeRegistrarImage", nodeRegistrarImage),
            ("--livenessProbeImage", livenessProbeImage),
        ]
        for (flag, value) in images where value.isEmpty || value.contains(where: \.isWhitespace) {
            throw ValidationError("\(flag) \"\(value)\" is not an image reference")
        }
        guard let bytes = ByteCount.parse(storeSize), bytes > 0 else {
            throw ValidationError("--storeSize \(storeSize) is not a positive size such as 4Gi or 512Mi")
        }
    }

    /// `installation` with these options applied.
    func apply(to installation: CSIDriverInstallation) -> CSIDriverInstallation {
        var installation = installation
        installation.image = image
        installation.imagePullPolicy = imagePullPolicy
        installation.volumeBindingMode = volumeBindingMode
        installation.sidecars = SidecarImages(
            provisioner: provisionerImage, snapshotter: snapshotterImage, resizer: resizerImage,
            nodeRegistrar: nodeRegistrarImage, livenessProbe: livenessProbeImage
        )
        installation.sidecarImagePullPolicy = sidecarImagePullPolicy
        installation.enableToleration = enableToleration
        installation.verbose = verbose
        installation.storeSize = storeSize
        return installation
    }
}
