import CSIDriver

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
                        "The controller advertises PUBLISH_UNPUBLISH_VOLUME: csi-attacher calls\nControllerPublishVolume before kubelet stages a volume on a node.",
                        true
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
                    "allowVolumeExpansion": .commented("The driver cannot expand volumes yet.", false),
                ]
            )
        }
    }
}
