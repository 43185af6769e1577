import CSIModel

extension CSIDriverManifests {
    func namespace() -> Manifest {
        var labels = labels("namespace")
        // The node plugin is privileged: a namespace under the baseline or restricted Pod
        // Security Standard would reject its pods.
        labels = labels.setting("pod-security.kubernetes.io/enforce", to: "privileged")
        return Manifest(.namespace, apiVersion: "v1", kind: "Namespace", name: installation.namespace, labels: labels)
    }

    func csiDriver() -> Manifest {
        Manifest(
            .csiDriver, apiVersion: "storage.k8s.io/v1", kind: "CSIDriver", name: DriverInfo.name,
            labels: labels("csidriver"),
            comment: "How kubelet and the controllers treat the driver's volumes.",
            fields: [
                "spec": [
                    "attachRequired": .commented(
                        "Nothing to attach: a volume is already in its node's store, and the controller\nbeside it runs on every node, where no csi-attacher can run.",
                        false
                    ),
                    "podInfoOnMount": .commented(
                        "NodePublishVolume gets the pod's name, namespace, uid and service account,\nand csi.storage.k8s.io/ephemeral for inline volumes.",
                        true
                    ),
                    "volumeLifecycleModes": ["Persistent", "Ephemeral"],
                    "fsGroupPolicy": .commented(
                        """
                        File, not ReadWriteOnceWithFSType: volumes are FUSE file systems without an fsType,
                        so ReadWriteOnceWithFSType would never apply a pod's fsGroup and a non-root pod
                        could not write. With File, kubelet applies fsGroup to every volume, persistent
                        and inline, with chown/chmod on the mounted FUSE file system.
                        """,
                        "File"
                    ),
                    "storageCapacity": .commented(
                        "csi-provisioner publishes each node's free store capacity (GetCapacity) and\nthe scheduler only picks nodes whose store can hold the claim.",
                        true
                    ),
                    "requiresRepublish": false,
                ]
            ]
        )
    }

    func storageClasses() -> [Manifest] {
        installation.storageClasses.map { name, cluster in
            Manifest(
                .storageClass, apiVersion: "storage.k8s.io/v1", kind: "StorageClass", name: name,
                labels: labels("storageclass"),
                comment: "Volumes whose objects live in the vineyard cluster \(cluster).",
                fields: [
                    "provisioner": .string(DriverInfo.name),
                    "parameters": [
                        VolumeParameterKey.vineyardNamespace: .string(cluster.namespace),
                        VolumeParameterKey.vineyardName: .string(cluster.name),
                    ],
                    "reclaimPolicy": "Delete",
                    "volumeBindingMode": .commented(
                        installation.volumeBindingMode.explanation, .string(installation.volumeBindingMode.rawValue)
                    ),
                    "allowVolumeExpansion": .commented(
                        "A larger claim raises the volume's quota in its store, online (NodeExpandVolume).", true),
                ]
            )
        }
    }

    /// One VolumeSnapshotClass per cluster, named like its StorageClass. A snapshot shares the
    /// volume's sealed objects in the store: it costs no copy and no memory until the volume
    /// changes.
    func snapshotClasses() -> [Manifest] {
        installation.storageClasses.map { name, cluster in
            Manifest(
                .snapshotClass, apiVersion: "snapshot.storage.k8s.io/v1", kind: "VolumeSnapshotClass", name: name,
                labels: labels("snapshotclass"),
                comment: "Snapshots of volumes of the vineyard cluster \(cluster); restore or clone them on the\nsource volume's node (deploy/README.md).",
                fields: [
                    "driver": .string(DriverInfo.name),
                    "deletionPolicy": .commented("Deleting a VolumeSnapshot releases the objects only it still names.", "Delete"),
                ]
            )
        }
    }
}
