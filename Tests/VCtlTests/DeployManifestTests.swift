import CSIModel
import Foundation
import Testing

@testable import VCtl

/// The manifests of `vctl deploy csidriver`, read back with Yams and checked field by field.
@Suite struct DeployManifestTests {
    let defaults: [ParsedObject]

    init() throws {
        defaults = try DeployFixtures.render(["--clusters", "vineyard-system/vineyardd-sample"])
    }

    // MARK: - Objects and names

    @Test func rendersEveryObjectOnceWithItsNameAndNamespace() throws {
        let found = defaults.map { "\($0.kind) \($0.namespace ?? "-") \($0.name)" }
        #expect(
            found == [
                "Namespace - vineyard-system",
                "CSIDriver - csi.vineyard.v6d.io",
                "ServiceAccount vineyard-system vineyard-csi-driver-node",
                "ClusterRole - vineyard-csi-driver-provisioner",
                "ClusterRoleBinding - vineyard-csi-driver-provisioner",
                "Role vineyard-system vineyard-csi-driver-provisioner",
                "RoleBinding vineyard-system vineyard-csi-driver-provisioner",
                "ClusterRole - vineyard-csi-driver-snapshotter",
                "ClusterRoleBinding - vineyard-csi-driver-snapshotter",
                "ClusterRole - vineyard-csi-driver-resizer",
                "ClusterRoleBinding - vineyard-csi-driver-resizer",
                "Role vineyard-system vineyard-csi-driver-resizer",
                "RoleBinding vineyard-system vineyard-csi-driver-resizer",
                "StorageClass - vineyard-system.vineyardd-sample.csi",
                "DaemonSet vineyard-system vineyard-csi-driver-node",
                "DaemonSet vineyard-system vineyard-csi-driver-fdholder",
                "VolumeSnapshotClass - vineyard-system.vineyardd-sample.csi",
            ]
        )
    }

    @Test func nameAndNamespaceFlagsRenameEveryObjectAndReference() throws {
        let objects = try DeployFixtures.render(["--clusters", "ml/store", "--name", "csi", "-n", "storage"])
        for object in objects where !["Namespace", "CSIDriver", "StorageClass", "VolumeSnapshotClass"].contains(object.kind) {
            #expect(object.name.hasPrefix("csi-"), "\(object.kind) \(object.name)")
        }
        for object in objects where ["ServiceAccount", "Role", "RoleBinding", "Deployment", "DaemonSet"].contains(object.kind) {
            #expect(object.namespace == "storage", "\(object.kind) \(object.name)")
        }
        for object in objects
        where ["ClusterRole", "ClusterRoleBinding", "CSIDriver", "StorageClass", "VolumeSnapshotClass", "Namespace"]
            .contains(object.kind)
        {
            #expect(object.namespace == nil, "\(object.kind) \(object.name) is cluster-scoped")
        }
        #expect(try DeployFixtures.object(objects, kind: "Namespace").name == "storage")
        for binding in objects where binding.kind.hasSuffix("Binding") {
            #expect(binding["subjects", 0, "name"] as? String == "csi-node")
            #expect(binding["subjects", 0, "namespace"] as? String == "storage")
        }
        let node = try DeployFixtures.object(objects, kind: "DaemonSet")
        #expect(node.name == "csi-node")
        #expect(node["spec", "template", "spec", "serviceAccountName"] as? String == "csi-node")
    }

    @Test func everyObjectCarriesTheInstallationLabels() {
        for object in defaults {
            #expect(object["metadata", "labels", "app.kubernetes.io/instance"] as? String == "vineyard-csi-driver")
            #expect(object["metadata", "labels", "app.kubernetes.io/name"] as? String == "vineyard-csi")
        }
    }

    // MARK: - CSIDriver

    @Test func csiDriverMatchesTheDriversCapabilities() throws {
        let driver = try DeployFixtures.object(defaults, kind: "CSIDriver")
        #expect(driver.apiVersion == "storage.k8s.io/v1")
        #expect(driver.name == DriverInfo.name)
        #expect(driver["spec", "attachRequired"] as? Bool == false)
        #expect(driver["spec", "podInfoOnMount"] as? Bool == true)
        #expect(driver["spec", "volumeLifecycleModes"] as? [String] == ["Persistent", "Ephemeral"])
        #expect(driver["spec", "fsGroupPolicy"] as? String == "File")
        #expect(driver["spec", "storageCapacity"] as? Bool == true)
    }

    // MARK: - StorageClasses

    @Test func oneStorageClassPerClusterNamedAfterIt() throws {
        let objects = try DeployFixtures.render(["--clusters", "a/b,c/d"])
        let classes = objects.filter { $0.kind == "StorageClass" }
        #expect(classes.map(\.name) == ["a.b.csi", "c.d.csi"])
        for (storageClass, (namespace, name)) in zip(classes, [("a", "b"), ("c", "d")]) {
            #expect(storageClass["provisioner"] as? String == "csi.vineyard.v6d.io")
            #expect(storageClass["parameters"] as? [String: String] == [
                "k8s.v6d.io/vineyard/namespace": namespace, "k8s.v6d.io/vineyard/name": name,
            ])
            #expect(storageClass["volumeBindingMode"] as? String == "WaitForFirstConsumer")
            #expect(storageClass["allowVolumeExpansion"] as? Bool == true)
            #expect(storageClass["reclaimPolicy"] as? String == "Delete")
        }
        // The first cluster is the driver's default.
        let driver = try DeployFixtures.object(objects, kind: "DaemonSet").container("vineyard-csi")
        #expect(driver.argument("--default-cluster") == "a/b")
        // Each cluster's VolumeSnapshotClass is named like its StorageClass.
        let snapshotClasses = objects.filter { $0.kind == "VolumeSnapshotClass" }
        #expect(snapshotClasses.map(\.name) == ["a.b.csi", "c.d.csi"])
        for snapshotClass in snapshotClasses {
            #expect(snapshotClass.apiVersion == "snapshot.storage.k8s.io/v1")
            #expect(snapshotClass["driver"] as? String == "csi.vineyard.v6d.io")
            #expect(snapshotClass["deletionPolicy"] as? String == "Delete")
        }
    }

    @Test func storageClassFlagsAreHonoured() throws {
        let objects = try DeployFixtures.render([
            "--clusters", "ml/store", "--storageClassName", "fast-memory", "--volumeBindingMode", "Immediate",
        ])
        let storageClass = try DeployFixtures.object(objects, kind: "StorageClass")
        #expect(storageClass.name == "fast-memory")
        #expect(storageClass["parameters", "k8s.v6d.io/vineyard/namespace"] as? String == "ml")
        #expect(storageClass["volumeBindingMode"] as? String == "Immediate")
    }

    // MARK: - Pods: socket, privileges, mounts

    @Test func sidecarsUseTheSocketTheDriverServes() throws {
        let workload = try DeployFixtures.object(defaults, kind: "DaemonSet")
        let driver = try workload.container("vineyard-csi")
        let endpoint = try #require(driver.argument("--endpoint"))
        #expect(endpoint.hasPrefix("unix://"))
        let socket = String(endpoint.dropFirst("unix://".count))
        let directory = (socket as NSString).deletingLastPathComponent
        let socketVolume = try #require(
            driver.volumeMounts.first { $0["mountPath"] as? String == directory }?["name"] as? String,
            "the driver mounts nothing at \(directory)"
        )
        for container in workload.containers where container.name != "vineyard-csi" {
            #expect(container.argument("--csi-address") == socket, "\(container.name)")
            #expect(container.mountPath(of: socketVolume) == directory, "\(container.name)")
        }
        // kubelet reaches the driver's socket on the host, where the registrar says it is.
        let hostDirectory = try #require(ParsedObject.lookup(workload.volumes[socketVolume], ["hostPath", "path"]) as? String)
        #expect(hostDirectory == "/var/lib/kubelet/plugins/csi.vineyard.v6d.io/")
        let registrar = try workload.container("node-driver-registrar")
        #expect(registrar.argument("--kubelet-registration-path") == hostDirectory + (socket as NSString).lastPathComponent)
    }

    @Test func onlyTheNodeDriverIsPrivilegedOrPropagatesMounts() throws {
        for workload in defaults where ["Deployment", "DaemonSet"].contains(workload.kind) {
            for container in workload.containers {
                let isNodeDriver = workload.kind == "DaemonSet" && container.name == "vineyard-csi"
                #expect((container["securityContext", "privileged"] as? Bool ?? false) == isNodeDriver, "\(workload.kind) \(container.name)")
                let propagations = container.volumeMounts.compactMap { $0["mountPropagation"] as? String }
                #expect(propagations == (isNodeDriver ? ["Bidirectional"] : []), "\(workload.kind) \(container.name)")
            }
        }
        let node = try DeployFixtures.object(defaults, kind: "DaemonSet")
        let bidirectional = try node.container("vineyard-csi").volumeMounts.first { $0["mountPropagation"] != nil }
        #expect(bidirectional?["mountPath"] as? String == "/var/lib/kubelet")
    }

    @Test func nodeDriverMountsFuseTheStoreAndItsState() throws {
        let node = try DeployFixtures.object(defaults, kind: "DaemonSet")
        let driver = try node.container("vineyard-csi")
        let expected: [(volume: String, hostPath: String, type: String)] = [
            ("kubelet-dir", "/var/lib/kubelet", "Directory"),
            ("fuse-device", "/dev/fuse", "CharDevice"),
            ("store-dir", "/dev/shm/vineyard-csi", "DirectoryOrCreate"),
            ("state-dir", "/var/lib/vineyard-csi", "DirectoryOrCreate"),
            ("vineyard-sockets", "/var/run/vineyard-kubernetes", "DirectoryOrCreate"),
        ]
        for (volume, hostPath, type) in expected {
            #expect(driver.mountPath(of: volume) == hostPath, "\(volume)")
            #expect(ParsedObject.lookup(node.volumes[volume], ["hostPath", "path"]) as? String == hostPath)
            #expect(ParsedObject.lookup(node.volumes[volume], ["hostPath", "type"]) as? String == type)
        }
        #expect(driver.argument("--store-dir") == "/dev/shm/vineyard-csi")
        #expect(driver.argument("--state-dir") == "/var/lib/vineyard-csi")
        #expect(driver.argument("--mode") == "all")
        #expect(driver.args.contains("--node-deployment"))
        #expect(driver.argument("--nodeid") == "$(KUBE_NODE_NAME)")
        #expect(driver["env", 0, "valueFrom", "fieldRef", "fieldPath"] as? String == "spec.nodeName")
        #expect(try node.container("node-driver-registrar").mountPath(of: "registration-dir") == "/registration")
        #expect(ParsedObject.lookup(node.volumes["registration-dir"], ["hostPath", "path"]) as? String == "/var/lib/kubelet/plugins_registry/")
    }

    @Test func descriptorHolderSharesTheHandoverDirectoryAndIsNeverRolledWithThePlugin() throws {
        let node = try DeployFixtures.object(defaults, kind: "DaemonSet", name: "vineyard-csi-driver-node")
        let holder = try DeployFixtures.object(defaults, kind: "DaemonSet", name: "vineyard-csi-driver-fdholder")
        let driver = try node.container("vineyard-csi")
        #expect(driver.argument("--handover-dir") == "/run/vineyard-csi")
        #expect(driver.mountPath(of: "handover-dir") == "/run/vineyard-csi")
        let container = try holder.container("vineyard-csi-fdholder")
        #expect(container.argument("--socket") == "/run/vineyard-csi/fdholder.sock")
        #expect(container.mountPath(of: "handover-dir") == "/run/vineyard-csi")
        for workload in [node, holder] {
            #expect(ParsedObject.lookup(workload.volumes["handover-dir"], ["hostPath", "path"]) as? String == "/run/vineyard-csi")
        }
        #expect(holder["spec", "updateStrategy", "type"] as? String == "OnDelete")
    }

    @Test func driverPodRunsTheSidecarsOfANodeLocalController() throws {
        let node = try DeployFixtures.object(defaults, kind: "DaemonSet")
        #expect(
            node.containers.map(\.name) == [
                "vineyard-csi", "node-driver-registrar", "csi-provisioner", "csi-snapshotter", "csi-resizer", "liveness-probe",
            ])
        let provisioner = try node.container("csi-provisioner")
        for argument in [
            "--node-deployment", "--feature-gates=Topology=true", "--strict-topology", "--extra-create-metadata",
            "--enable-capacity", "--capacity-ownerref-level=1",
        ] {
            #expect(provisioner.args.contains(argument), "\(argument)")
        }
        // Per-node sidecars handle their node's objects only: no leader to elect.
        #expect(!provisioner.args.contains("--leader-election"))
        #expect(Set(provisioner.environmentNames) == ["NODE_NAME", "NAMESPACE", "POD_NAME"])
        let snapshotter = try node.container("csi-snapshotter")
        #expect(snapshotter.args.contains("--node-deployment") && !snapshotter.args.contains("--leader-election"))
        #expect(snapshotter.environmentNames == ["NODE_NAME"])
        // csi-resizer has no per-node mode: one leader raises PVs, kubelet expands on the node.
        let resizer = try node.container("csi-resizer")
        #expect(resizer.args.contains("--leader-election"))
        #expect(resizer.argument("--leader-election-namespace") == "$(NAMESPACE)")
        #expect(resizer["livenessProbe", "httpGet", "path"] as? String == "/healthz/leader-election")
    }

    @Test func onlyTheSidecarsThatCallTheAPIServerGetAToken() throws {
        let node = try DeployFixtures.object(defaults, kind: "DaemonSet")
        #expect(node["spec", "template", "spec", "automountServiceAccountToken"] as? Bool == false)
        let sources = try #require(ParsedObject.lookup(node.volumes["api-token"], ["projected", "sources"]) as? [[String: Any]])
        #expect(sources.compactMap { ParsedObject.lookup($0, ["serviceAccountToken", "path"]) as? String } == ["token"])
        #expect(sources.compactMap { ParsedObject.lookup($0, ["configMap", "name"]) as? String } == ["kube-root-ca.crt"])
        for container in node.containers {
            let callsAPI = ["csi-provisioner", "csi-snapshotter", "csi-resizer"].contains(container.name)
            let path = container.mountPath(of: "api-token")
            #expect(path == (callsAPI ? "/var/run/secrets/kubernetes.io/serviceaccount" : nil), "\(container.name)")
        }
    }

    @Test func livenessProbeChecksThePortLivenessprobeServes() throws {
        let workload = try DeployFixtures.object(defaults, kind: "DaemonSet")
        let port = try #require(try workload.container("liveness-probe").argument("--health-port"))
        let driver = try workload.container("vineyard-csi")
        #expect(driver["ports", 0, "containerPort"] as? Int == Int(port))
        #expect(driver["livenessProbe", "httpGet", "port"] as? String == driver["ports", 0, "name"] as? String)
    }

    @Test func workloadsSelectTheirOwnPodsAndRunAsExistingAccounts() throws {
        let accounts = Set(defaults.filter { $0.kind == "ServiceAccount" }.map(\.name))
        for workload in defaults where ["Deployment", "DaemonSet"].contains(workload.kind) {
            let selector = try #require(workload["spec", "selector", "matchLabels"] as? [String: String])
            let podLabels = try #require(workload["spec", "template", "metadata", "labels"] as? [String: String])
            for (key, value) in selector { #expect(podLabels[key] == value, "\(workload.kind) \(key)") }
            let account = try #require(workload["spec", "template", "spec", "serviceAccountName"] as? String)
            #expect(accounts.contains(account))
        }
    }

    // MARK: - Resources, images, tolerations, verbosity

    @Test func everyContainerHasRequestsAndLimits() {
        for workload in defaults where ["Deployment", "DaemonSet"].contains(workload.kind) {
            #expect(!workload.containers.isEmpty)
            for container in workload.containers {
                for bound in ["requests", "limits"] {
                    for resource in ["cpu", "memory"] {
                        #expect(container["resources", bound, resource] is String, "\(workload.kind) \(container.name) \(bound).\(resource)")
                    }
                }
            }
        }
    }

    @Test func nodeMemoryLimitHoldsEveryStore() throws {
        let one = try DeployFixtures.object(defaults, kind: "DaemonSet").container("vineyard-csi")
        #expect(one["resources", "limits", "memory"] as? String == "4608Mi")
        let two = try DeployFixtures.object(
            try DeployFixtures.render(["--clusters", "a/b,c/d", "--storeSize", "1Gi"]), kind: "DaemonSet"
        ).container("vineyard-csi")
        #expect(two["resources", "limits", "memory"] as? String == "2560Mi")
        #expect(two.argument("--store-size") == "1Gi")
    }

    @Test func imageAndPullPolicyFlagsAreHonoured() throws {
        let objects = try DeployFixtures.render([
            "--clusters", "a/b", "--image", "registry.example/vineyard-csi:dev", "--imagePullPolicy", "Always",
            "--provisionerImage", "example/provisioner:1", "--sidecar.snapshotterImage", "example/snapshotter:2",
            "--resizerImage", "example/resizer:5",
            "--nodeRegistrarImage", "example/registrar:3", "--livenessProbeImage", "example/probe:4",
            "--sidecar.imagePullPolicy", "Never",
        ])
        let expected = [
            "vineyard-csi": "registry.example/vineyard-csi:dev", "csi-provisioner": "example/provisioner:1",
            "csi-snapshotter": "example/snapshotter:2", "csi-resizer": "example/resizer:5",
            "node-driver-registrar": "example/registrar:3",
            "liveness-probe": "example/probe:4", "vineyard-csi-fdholder": "registry.example/vineyard-csi:dev",
        ]
        for workload in objects where ["Deployment", "DaemonSet"].contains(workload.kind) {
            for container in workload.containers {
                #expect(container.image == expected[container.name], "\(workload.kind) \(container.name)")
                #expect(container.imagePullPolicy == (container.name.hasPrefix("vineyard-csi") ? "Always" : "Never"))
            }
        }
    }

    @Test func defaultImagesArePinned() throws {
        for workload in defaults where ["Deployment", "DaemonSet"].contains(workload.kind) {
            for container in workload.containers {
                let image = try #require(container.image)
                #expect(!image.hasSuffix(":latest") && image.contains(":"), "\(image)")
                #expect(container.imagePullPolicy == "IfNotPresent")
            }
        }
    }

    @Test func tolerationsOnlyWhenEnabledAndOnlyOnTheNodePlugin() throws {
        for workload in defaults where ["Deployment", "DaemonSet"].contains(workload.kind) {
            #expect(workload["spec", "template", "spec", "tolerations"] == nil)
        }
        let objects = try DeployFixtures.render(["--clusters", "a/b", "--enableToleration"])
        let node = try DeployFixtures.object(objects, kind: "DaemonSet")
        #expect(node["spec", "template", "spec", "tolerations"] as? [[String: String]] == [["operator": "Exists"]])
    }

    @Test func verboseReachesBothDriverContainersOnly() throws {
        for workload in defaults where ["Deployment", "DaemonSet"].contains(workload.kind)
            && workload.containers.contains(where: { $0.name == "vineyard-csi" })
        {
            #expect(try !workload.container("vineyard-csi").args.contains("--verbose"))
        }
        let objects = try DeployFixtures.render(["--clusters", "a/b", "--verbose"])
        for workload in objects where ["Deployment", "DaemonSet"].contains(workload.kind) {
            for container in workload.containers {
                #expect(container.args.contains("--verbose") == (container.name == "vineyard-csi"))
            }
        }
    }

    // MARK: - RBAC

    /// `group/resource` -> verbs granted by one role.
    private func grants(_ kind: String, _ name: String) throws -> [String: Set<String>] {
        let role = try DeployFixtures.object(defaults, kind: kind, name: name)
        var result: [String: Set<String>] = [:]
        for case let rule as [String: Any] in role["rules"] as? [Any] ?? [] {
            for group in rule["apiGroups"] as? [String] ?? [] {
                for resource in rule["resources"] as? [String] ?? [] {
                    result["\(group)/\(resource)", default: []].formUnion(rule["verbs"] as? [String] ?? [])
                }
            }
        }
        return result
    }

    @Test func provisionerMayDoWhatTopologyAndCapacityNeedAndNoMore() throws {
        let cluster = try grants("ClusterRole", "vineyard-csi-driver-provisioner")
        #expect(cluster == [
            "/persistentvolumes": ["get", "list", "watch", "create", "patch", "delete"],
            "/persistentvolumeclaims": ["get", "list", "watch", "update"],
            "storage.k8s.io/storageclasses": ["get", "list", "watch"],
            "/events": ["list", "watch", "create", "update", "patch"],
            "/nodes": ["get", "list", "watch"],
            "storage.k8s.io/csinodes": ["get", "list", "watch"],
            "storage.k8s.io/volumeattachments": ["get", "list", "watch"],
            "snapshot.storage.k8s.io/volumesnapshots": ["get", "list"],
            "snapshot.storage.k8s.io/volumesnapshotcontents": ["get", "list"],
        ])
        let namespaced = try grants("Role", "vineyard-csi-driver-provisioner")
        #expect(namespaced["coordination.k8s.io/leases"] == nil)
        #expect(namespaced["storage.k8s.io/csistoragecapacities"]?.contains("create") == true)
        #expect(namespaced["/pods"] == ["get"])
        #expect(namespaced["apps/daemonsets"] == ["get"])
    }

    @Test func snapshotterMayUpdateContentsAndNothingElse() throws {
        #expect(try grants("ClusterRole", "vineyard-csi-driver-snapshotter") == [
            "/events": ["list", "watch", "create", "update", "patch"],
            "snapshot.storage.k8s.io/volumesnapshotclasses": ["get", "list", "watch"],
            "snapshot.storage.k8s.io/volumesnapshotcontents": ["get", "list", "watch", "update", "patch"],
            "snapshot.storage.k8s.io/volumesnapshotcontents/status": ["update", "patch"],
        ])
    }

    @Test func resizerMayPatchVolumesAndClaimStatus() throws {
        let cluster = try grants("ClusterRole", "vineyard-csi-driver-resizer")
        #expect(cluster["/persistentvolumes"] == ["get", "list", "watch", "patch"])
        #expect(cluster["/persistentvolumeclaims"] == ["get", "list", "watch"])
        #expect(cluster["/persistentvolumeclaims/status"] == ["patch"])
        #expect(try grants("Role", "vineyard-csi-driver-resizer").keys.sorted() == ["coordination.k8s.io/leases"])
    }

    @Test func bindingsPointAtExistingRolesAndTheDriversAccount() throws {
        for binding in defaults where binding.kind.hasSuffix("Binding") {
            let roleKind = try #require(binding["roleRef", "kind"] as? String)
            let roleName = try #require(binding["roleRef", "name"] as? String)
            let role = try DeployFixtures.object(defaults, kind: roleKind, name: roleName)
            #expect(role.namespace == binding.namespace)
            #expect(binding["subjects", 0, "kind"] as? String == "ServiceAccount")
            #expect(binding["subjects", 0, "name"] as? String == "vineyard-csi-driver-node")
        }
        let node = try DeployFixtures.object(defaults, kind: "ServiceAccount", name: "vineyard-csi-driver-node")
        #expect(node["automountServiceAccountToken"] as? Bool == false)
        let daemonSet = try DeployFixtures.object(defaults, kind: "DaemonSet")
        #expect(daemonSet["spec", "template", "spec", "automountServiceAccountToken"] as? Bool == false)
    }

    // MARK: - Order, deletion, files

    @Test func deleteRemovesEverythingButTheNamespaceWorkloadsFirst() throws {
        let installation = try DeployFixtures.installation(["--clusters", "a/b,c/d"])
        let applied = CSIDriverManifests.render(installation)
        let deleted = CSIDriverManifests.deletable(installation)
        #expect(applied.first?.kind == "Namespace")
        #expect(deleted.map(\.reference) == applied.dropFirst().reversed().map(\.reference))
        #expect(deleted.prefix(4).map(\.kind) == ["VolumeSnapshotClass", "VolumeSnapshotClass", "DaemonSet", "DaemonSet"])
    }

    @Test func kustomizationListsEveryRenderedFile() throws {
        let files = CSIDriverManifests.files(try DeployFixtures.installation(["--clusters", "a/b"]))
        let kustomization = try #require(files.first { $0.name == "kustomization.yaml" })
        let parsed = try #require(try DeployFixtures.parse(kustomization.contents).first)
        // The VolumeSnapshotClasses stay out: `kubectl apply -k` must work without the snapshot CRDs.
        #expect(
            parsed["resources"] as? [String]
                == files.map(\.name).filter { !["kustomization.yaml", "snapshotclass.yaml"].contains($0) })
        for file in files where file.name != "kustomization.yaml" {
            #expect(try !DeployFixtures.parse(file.contents).isEmpty, "\(file.name)")
        }
    }
}
