extension CSIDriverManifests {
    /// The driver's service account, and one role per sidecar holding exactly what that sidecar
    /// calls.
    ///
    /// A pod has one service account, so the sidecars of the driver's pod share `<name>-node`;
    /// their grants stay in separate roles so each can be read (and audited) on its own. Only
    /// the sidecars get its token (see ``apiTokenVolume``); the driver talks to kubelet only.
    func rbac() -> [Manifest] {
        [
            Manifest(
                .rbac, apiVersion: "v1", kind: "ServiceAccount", name: serviceAccount, namespace: installation.namespace,
                labels: labels("node"),
                comment: "The driver's pods: csi-provisioner, csi-snapshotter and csi-resizer call the API server.",
                fields: ["automountServiceAccountToken": false]
            )
        ]
            + sidecarRoles(
                "provisioner",
                comment: "csi-provisioner: creates and deletes PVs for claims of the driver's StorageClasses.",
                namespaceComment: "csi-provisioner in the driver's namespace: capacity objects.",
                clusterRules: [
                    Self.rule("", ["persistentvolumes"], ["get", "list", "watch", "create", "patch", "delete"]),
                    Self.rule("", ["persistentvolumeclaims"], ["get", "list", "watch", "update"]),
                    Self.rule("storage.k8s.io", ["storageclasses"], ["get", "list", "watch"]),
                    Self.rule("", ["events"], ["list", "watch", "create", "update", "patch"]),
                    .commented(
                        "Topology: the nodes' topology.csi.vineyard.v6d.io/node labels and CSINode objects.",
                        Self.rule("", ["nodes"], ["get", "list", "watch"])
                    ),
                    Self.rule("storage.k8s.io", ["csinodes"], ["get", "list", "watch"]),
                    .commented(
                        "A volume is deleted only once no VolumeAttachment uses it.",
                        Self.rule("storage.k8s.io", ["volumeattachments"], ["get", "list", "watch"])
                    ),
                    .commented(
                        "Restoring a claim from a VolumeSnapshot.",
                        Self.rule("snapshot.storage.k8s.io", ["volumesnapshots", "volumesnapshotcontents"], ["get", "list"])
                    ),
                ],
                namespaceRules: [
                    .commented(
                        "Capacity tracking (--enable-capacity): one CSIStorageCapacity per node and StorageClass,\nowned by the DaemonSet, found through the pod.",
                        Self.rule(
                            "storage.k8s.io", ["csistoragecapacities"],
                            ["get", "list", "watch", "create", "update", "patch", "delete"]
                        )
                    ),
                    Self.rule("", ["pods"], ["get"]),
                    Self.rule("apps", ["daemonsets"], ["get"]),
                ]
            )
            + sidecarRoles(
                "snapshotter",
                comment: "csi-snapshotter: creates and deletes snapshots for VolumeSnapshotContents of the driver.",
                clusterRules: [
                    Self.rule("", ["events"], ["list", "watch", "create", "update", "patch"]),
                    Self.rule("snapshot.storage.k8s.io", ["volumesnapshotclasses"], ["get", "list", "watch"]),
                    Self.rule(
                        "snapshot.storage.k8s.io", ["volumesnapshotcontents"], ["get", "list", "watch", "update", "patch"]),
                    Self.rule("snapshot.storage.k8s.io", ["volumesnapshotcontents/status"], ["update", "patch"]),
                ]
            )
            + sidecarRoles(
                "resizer",
                comment: "csi-resizer: raises PVs of the driver when their claims grow.",
                namespaceComment: "csi-resizer in the driver's namespace: leader election.",
                clusterRules: [
                    Self.rule("", ["persistentvolumes"], ["get", "list", "watch", "patch"]),
                    Self.rule("", ["persistentvolumeclaims"], ["get", "list", "watch"]),
                    Self.rule("", ["persistentvolumeclaims/status"], ["patch"]),
                    Self.rule("", ["pods"], ["list", "watch"]),
                    Self.rule("", ["events"], ["list", "watch", "create", "update", "patch"]),
                    Self.rule("storage.k8s.io", ["volumeattributesclasses"], ["get", "list", "watch"]),
                ],
                namespaceRules: [
                    Self.rule("coordination.k8s.io", ["leases"], ["get", "watch", "list", "delete", "update", "create"])
                ]
            )
    }

    /// The service account of the driver's pods.
    var serviceAccount: String { installation.objectName("node") }

    /// A ClusterRole, and a namespaced Role when the sidecar needs one (leader election and
    /// the like), each bound to the driver's service account.
    private func sidecarRoles(
        _ sidecar: String, comment: String, namespaceComment: String? = nil, clusterRules: [YAMLValue],
        namespaceRules: [YAMLValue] = []
    ) -> [Manifest] {
        let name = installation.objectName(sidecar)
        let subjects: YAMLValue = [
            [
                "kind": "ServiceAccount",
                "name": .string(serviceAccount),
                "namespace": .string(installation.namespace),
            ]
        ]
        let component = labels(sidecar)
        let clusterWide = [
            Manifest(
                .rbac, apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", name: name,
                labels: component, comment: comment, fields: ["rules": .sequence(clusterRules)]
            ),
            Manifest(
                .rbac, apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", name: name,
                labels: component,
                fields: [
                    "roleRef": ["apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": .string(name)],
                    "subjects": subjects,
                ]
            ),
        ]
        guard let namespaceComment, !namespaceRules.isEmpty else { return clusterWide }
        return clusterWide + [
            Manifest(
                .rbac, apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", name: name,
                namespace: installation.namespace, labels: component,
                comment: namespaceComment,
                fields: ["rules": .sequence(namespaceRules)]
            ),
            Manifest(
                .rbac, apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", name: name,
                namespace: installation.namespace, labels: component,
                fields: [
                    "roleRef": ["apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": .string(name)],
                    "subjects": subjects,
                ]
            ),
        ]
    }

    static func rule(_ group: String, _ resources: [String], _ verbs: [String]) -> YAMLValue {
        ["apiGroups": .flowSequence([group]), "resources": .flowSequence(resources), "verbs": .flowSequence(verbs)]
    }
}
