"""The driver's image, run as the node DaemonSet runs it.

The image is the one scripts/build-image.sh builds (debootstrap + buildah; $VINEYARD_CSI_IMAGE, or
built here when unset). The containers get the settings `vctl deploy csidriver --dry-run` renders,
read from its YAML, not restated here: command, args, env, securityContext, the hostPath volumes and
their mountPropagation. Host paths move under a sandbox directory of the test, so the host's real
/var/lib/kubelet, /dev/shm/vineyard-csi and /run/vineyard-csi are never touched; container paths stay
as rendered. The fd holder runs in a container of its own, as its DaemonSet does.

From the host the test plays kubelet: it calls the plugin's CSI socket (NodeGetInfo, CreateVolume as
csi-provisioner would, NodeStageVolume, NodePublishVolume at kubelet's paths), checks that the FUSE
mount shows on the host through the Bidirectional mount of the kubelet directory, and runs a second
container as the pod, with the published directory bind-mounted, reading and writing files in a loop.
vineyard.sock is used by a host-side vineyard client against the published socket (the image has no
Python); the pod reads the object that client put, as a file. Then the plugin container is stopped and
a new one started from the same image: the pod keeps reading and writing without an error.

Needs root, podman, runc and /dev/fuse. Without them the test fails when $CI is set and skips
otherwise. Containers are removed by name and mounts unmounted by path, also when the test fails.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc
import numpy as np
import pytest
import yaml

from conftest import REPO, cluster_parameters, csi_pb2, csi_pb2_grpc, mount_capability
from harness.mounts import unmount_all_under

MiB = 1 << 20
CLUSTER = "vineyard-system/vineyardd-sample"
NODE = "image-e2e-node"
# This machine's cgroups are hybrid (crun refuses them) and root cannot raise RLIMIT_NOFILE past
# 20000: podman runs runc with limits it can set (shared/reference/containers-here.md).
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
"""


def require(condition, reason):
    """Skips with `reason` on a developer's machine; in CI a missing prerequisite is a failure."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"the container test cannot run in CI: {reason}")
    pytest.skip(reason)


class Podman:
    def __init__(self, conf_path):
        self.env = dict(os.environ, CONTAINERS_CONF=str(conf_path))

    def __call__(self, *args, check=True, timeout=300):
        result = subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result


@pytest.fixture(scope="module")
def podman():
    require(os.geteuid() == 0, "the container test needs root (rootful podman, mount propagation)")
    missing = [tool for tool in ("podman", "buildah", "runc", "debootstrap") if shutil.which(tool) is None]
    require(not missing, f"{', '.join(missing)} not installed (bash scripts/install-deps.sh)")
    require(os.path.exists("/dev/fuse"), "no /dev/fuse")
    with tempfile.NamedTemporaryFile("w", prefix="vcsi-containers-", suffix=".conf", delete=False) as conf:
        conf.write(CONTAINERS_CONF)
    try:
        yield Podman(conf.name)
    finally:
        os.unlink(conf.name)


@pytest.fixture(scope="module")
def image(podman):
    """The image scripts/test.sh built, or one built now by scripts/build-image.sh."""
    name = os.environ.get("VINEYARD_CSI_IMAGE")
    if not name:
        name = "localhost/vineyard-csi:e2e"
        env = dict(os.environ, IMAGE=name, SWIFT_SCRATCH_PATH=os.environ.get("SWIFT_SCRATCH_PATH", ".build-release"))
        result = subprocess.run(["bash", "scripts/build-image.sh"], cwd=REPO, env=env, capture_output=True, text=True)
        assert result.returncode == 0, f"scripts/build-image.sh failed:\n{result.stdout}\n{result.stderr}"
    assert podman("image", "exists", name, check=False).returncode == 0, f"image {name} is not in local storage"
    return name


@pytest.fixture(scope="module")
def rendered(podman, image):
    """`vctl deploy csidriver --image <image> --dry-run -o yaml`, run from the image itself."""
    result = podman("run", "--rm", "--network", "none", "--entrypoint", "/usr/local/bin/vctl", image,
                    "deploy", "csidriver", "--clusters", CLUSTER, "--image", image, "--dry-run", "-o", "yaml")
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def daemonset(documents, component):
    for document in documents:
        if document["kind"] == "DaemonSet" and document["metadata"]["labels"].get("app.kubernetes.io/component") == component:
            return document
    raise AssertionError(f"no {component} DaemonSet in the rendering")


def test_rendered_daemonsets_name_the_built_image(rendered, image):
    for component, container in (("node", "vineyard-csi"), ("fdholder", "vineyard-csi-fdholder")):
        pod = daemonset(rendered, component)["spec"]["template"]["spec"]
        images = {c["name"]: c["image"] for c in pod["containers"]}
        assert images[container] == image


# The image's budget: the Debian base (about 100 MB) and three static binaries. A binary that
# imports Foundation again (not FoundationEssentials) brings ICU back, about 40 MB each.
IMAGE_SIZE_LIMIT = 150 * 1000 * 1000


def test_image_fits_its_size_budget(podman, image):
    size = int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout.strip())
    assert size < IMAGE_SIZE_LIMIT, f"image {image} is {size / 1e6:.0f} MB, over {IMAGE_SIZE_LIMIT / 1e6:.0f} MB"


class Sandbox:
    """Host paths of the rendered hostPath volumes, moved under directories of this test."""

    def __init__(self):
        self.name = f"vcsi-img-{uuid.uuid4().hex[:8]}"
        # Short roots: the CSI socket's path must fit in a sockaddr_un.
        self.disk_root = Path("/tmp") / self.name
        self.shm_root = Path("/dev/shm") / self.name
        self.containers = []
        self.shared_mounts = []

    def host(self, path):
        """Where the node's `path` is in this sandbox (/dev/shm paths stay on tmpfs)."""
        root = self.shm_root if path.startswith("/dev/shm/") else self.disk_root
        return root / path.lstrip("/")

    def cleanup(self, podman):
        for name in reversed(self.containers):
            podman("rm", "--force", "--time", "0", name, check=False)
        for root in (self.disk_root, self.shm_root):
            unmount_all_under(root)
            shutil.rmtree(root, ignore_errors=True)


def expand(text, env):
    """Kubernetes' $(VAR) expansion of command and args."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), text)


def run_args(sandbox, pod_spec, container, name, metadata):
    """`podman run` arguments for one container of a rendered pod spec."""
    volumes = {volume["name"]: volume for volume in pod_spec["volumes"]}
    fields = {"spec.nodeName": NODE, "metadata.namespace": metadata["namespace"], "metadata.name": name}
    env = {}
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        else:
            env[variable["name"]] = fields[variable["valueFrom"]["fieldRef"]["fieldPath"]]
    args = ["run", "--detach", "--name", name, "--network", "host" if pod_spec.get("hostNetwork") else "none"]
    for key, value in env.items():
        args += ["--env", f"{key}={value}"]
    security = container.get("securityContext", {})
    if security.get("privileged"):
        args.append("--privileged")
    if security.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    if security.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    for capability in security.get("capabilities", {}).get("drop", []):
        args += ["--cap-drop", capability]
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        host_path = volume.get("hostPath")
        assert host_path, f"volume {mount['name']} of {container['name']} is not a hostPath"
        if host_path.get("type") == "CharDevice":
            args += ["--device", f"{host_path['path']}:{mount['mountPath']}"]
            continue
        source = sandbox.host(host_path["path"])
        source.mkdir(parents=True, exist_ok=True)  # the node has them (Directory) or kubelet makes them
        options = ["ro"] if mount.get("readOnly") else []
        propagation = mount.get("mountPropagation", "None")
        if propagation == "Bidirectional":
            # Mounts made inside must reach the host: the source must be a shared mount.
            if str(source) not in sandbox.shared_mounts:
                subprocess.run(["mount", "--bind", str(source), str(source)], check=True)
                subprocess.run(["mount", "--make-rshared", str(source)], check=True)
                sandbox.shared_mounts.append(str(source))
            options.append("rshared")
        elif propagation == "HostToContainer":
            options.append("rslave")
        args += ["--volume", f"{source}:{mount['mountPath']}" + (":" + ",".join(options) if options else "")]
    command = [expand(part, env) for part in container.get("command", [])]
    if command:
        args += ["--entrypoint", command[0]]
    return args, command[1:] + [expand(part, env) for part in container.get("args", [])]


def start(podman, sandbox, image, ds, container_name, name):
    pod_spec = ds["spec"]["template"]["spec"]
    container = next(c for c in pod_spec["containers"] if c["name"] == container_name)
    assert container["image"] == image
    args, command_args = run_args(sandbox, pod_spec, container, name, ds["metadata"])
    sandbox.containers.append(name)
    podman(*args, image, *command_args)
    return container


def wait_for_probe(podman, name, socket_path, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        state = podman("inspect", "--format", "{{.State.Running}}", name, check=False).stdout.strip()
        if state == "false":
            raise AssertionError(f"container {name} exited: {podman('logs', name, check=False).stderr[-3000:]}")
        if socket_path.exists():
            with grpc.insecure_channel(f"unix://{socket_path}") as channel:
                try:
                    csi_pb2_grpc.IdentityStub(channel).Probe(csi_pb2.ProbeRequest(), timeout=2)
                    return
                except grpc.RpcError:
                    pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} did not serve CSI: {podman('logs', name, check=False).stderr[-3000:]}")
        time.sleep(0.2)


def scrape_in_container(podman, name, container):
    """GET /metrics on the container's `metrics` port, from inside its network namespace."""
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == "metrics")
    pid = podman("inspect", "--format", "{{.State.Pid}}", name).stdout.strip()
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import metrics_scrape, json; "
            f"print(json.dumps(metrics_scrape.scrape('http://127.0.0.1:{port}/metrics')))")
    result = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c", code],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def mount_type(path):
    with open("/proc/self/mountinfo") as table:
        for line in table:
            fields = line.split()
            if fields[4] == str(path):
                return fields[fields.index("-") + 1]
    return None


# The pod: writes and reads back a file per round until told to stop; any failure ends it with an error.
POD_SCRIPT = r"""
set -eu
test -S /data/vineyard.sock
i=0
while [ ! -e /data/stop ]; do
    i=$((i + 1))
    echo "round $i $(date +%s%N)" > /data/pod-$((i % 20)).txt
    read -r line < /data/pod-$((i % 20)).txt
    case "$line" in "round $i "*) ;; *) echo "round $i read back: $line"; exit 3;; esac
    echo "$i" > /data/rounds.tmp && mv /data/rounds.tmp /data/rounds
    if [ -e /data/from-host ]; then cat /data/from-host > /dev/null; fi
    sleep 0.02
done
echo "pod stopped after $i rounds"
"""


def test_node_plugin_container_as_deployed(podman, image, rendered):
    node_ds = daemonset(rendered, "node")
    holder_ds = daemonset(rendered, "fdholder")
    node_spec = node_ds["spec"]["template"]["spec"]
    plugin = next(c for c in node_spec["containers"] if c["name"] == "vineyard-csi")
    # The DaemonSet's own settings this test depends on: privileged, /dev/fuse, Bidirectional kubelet dir.
    assert plugin["securityContext"]["privileged"] is True
    mounts = {m["name"]: m for m in plugin["volumeMounts"]}
    volumes = {v["name"]: v for v in node_spec["volumes"]}
    assert mounts["kubelet-dir"]["mountPropagation"] == "Bidirectional"
    kubelet_dir = volumes["kubelet-dir"]["hostPath"]["path"]
    assert mounts["kubelet-dir"]["mountPath"] == kubelet_dir  # kubelet's paths mean the same inside
    assert volumes["fuse-device"]["hostPath"]["type"] == "CharDevice"
    for name in ("state-dir", "store-dir", "handover-dir", "socket-dir"):
        assert name in mounts
    registration = volumes["registration-dir"]["hostPath"]["path"]

    sandbox = Sandbox()
    try:
        # The node: kubelet's directories exist before any plugin starts.
        sandbox.host(kubelet_dir).mkdir(parents=True)
        sandbox.host(registration).mkdir(parents=True)
        start(podman, sandbox, image, holder_ds, "vineyard-csi-fdholder", f"{sandbox.name}-fdholder")
        plugin_name = f"{sandbox.name}-plugin"
        start(podman, sandbox, image, node_ds, "vineyard-csi", plugin_name)
        endpoint = next(a for a in plugin["args"] if a.startswith("--endpoint="))
        socket_in_container = endpoint.removeprefix("--endpoint=unix://")
        socket_mount = next(m for m in plugin["volumeMounts"] if socket_in_container.startswith(m["mountPath"].rstrip("/") + "/"))
        host_socket = sandbox.host(volumes[socket_mount["name"]]["hostPath"]["path"]) / Path(socket_in_container).name
        wait_for_probe(podman, plugin_name, host_socket)

        with grpc.insecure_channel(f"unix://{host_socket}") as channel:
            node = csi_pb2_grpc.NodeStub(channel)
            controller = csi_pb2_grpc.ControllerStub(channel)
            info = node.NodeGetInfo(csi_pb2.NodeGetInfoRequest())
            assert info.node_id == NODE  # $(KUBE_NODE_NAME) from the downward API

            request = csi_pb2.CreateVolumeRequest(
                name="pvc-image-e2e", volume_capabilities=[mount_capability()], parameters=cluster_parameters())
            request.capacity_range.required_bytes = 256 * MiB
            volume = controller.CreateVolume(request).volume
            # kubelet's own layout below its directory; paths as kubelet (and the container) see them.
            digest = hashlib.sha256(volume.volume_id.encode()).hexdigest()
            staging = f"{kubelet_dir}/plugins/kubernetes.io/csi/csi.vineyard.v6d.io/{digest}/globalmount"
            target = f"{kubelet_dir}/pods/{uuid.uuid4()}/volumes/kubernetes.io~csi/pvc-image-e2e/mount"
            host_root = sandbox.host(kubelet_dir)
            host_target = host_root / target.removeprefix(kubelet_dir + "/")
            host_staging = host_root / staging.removeprefix(kubelet_dir + "/")
            host_staging.mkdir(parents=True)
            host_target.parent.mkdir(parents=True)
            node.NodeStageVolume(csi_pb2.NodeStageVolumeRequest(
                volume_id=volume.volume_id, staging_target_path=staging, volume_capability=mount_capability(),
                volume_context=volume.volume_context))
            node.NodePublishVolume(csi_pb2.NodePublishVolumeRequest(
                volume_id=volume.volume_id, staging_target_path=staging, target_path=target,
                volume_capability=mount_capability(), volume_context=volume.volume_context))

            # Bidirectional propagation: the plugin's FUSE mounts are on the host.
            assert (mount_type(host_staging) or "").startswith("fuse"), mount_type(host_staging)
            assert mount_type(host_target) is not None
            (host_target / "from-the-node.txt").write_text("written on the host\n")
            assert (host_target / "vineyard.sock").is_socket()

            pod_name = f"{sandbox.name}-pod"
            sandbox.containers.append(pod_name)
            podman("run", "--detach", "--name", pod_name, "--network", "none", "--volume", f"{host_target}:/data",
                   "--entrypoint", "/bin/sh", image, "-c", POD_SCRIPT)

            def rounds():
                try:
                    return int((host_target / "rounds").read_text())
                except (FileNotFoundError, ValueError):
                    return 0

            def wait_rounds(more, timeout=60):
                start_count = rounds()
                deadline = time.monotonic() + timeout
                while rounds() < start_count + more:
                    running = podman("inspect", "--format", "{{.State.Running}}", pod_name).stdout.strip()
                    assert running == "true", f"the pod ended: {podman('logs', pod_name, check=False).stdout}"
                    assert time.monotonic() < deadline, "the pod stopped making progress"
                    time.sleep(0.1)

            wait_rounds(20)
            # vineyard.sock: vineyard's own client on the host, against the published socket.
            import vineyard
            # kubelet's target path is longer than a sockaddr_un holds; a pod connects through its
            # own short path, the host through a short link to the same socket.
            link = sandbox.disk_root / "vineyard.sock"
            link.symlink_to(host_target / "vineyard.sock")
            client = vineyard.connect(str(link))
            try:
                array = np.arange(MiB // 8, dtype=np.float64)
                object_id = client.put(array, persist=True, name="from-host")
                assert np.array_equal(client.get(object_id), array)
            finally:
                client.close()
            assert np.array_equal(np.load(host_target / "from-host"), array)
            wait_rounds(10)  # the pod read the object as a file meanwhile

            # Restart the plugin as Kubernetes does: stop the container, start a new one.
            podman("stop", "--time", "30", plugin_name)
            podman("rm", plugin_name)
            sandbox.containers.remove(plugin_name)
            restarted = f"{sandbox.name}-plugin-2"
            start(podman, sandbox, image, node_ds, "vineyard-csi", restarted)
            wait_for_probe(podman, restarted, host_socket)
            logs = podman("logs", restarted).stderr
            assert "resumed staged volume" in logs, logs[-3000:]
            # The new plugin took the mount over from the holder: its metrics, on the DaemonSet's
            # metrics port inside the container's network namespace, say so.
            metrics = scrape_in_container(podman, restarted, plugin)
            assert metrics['vineyard_csi_mount_recoveries_total{method="handover",result="ok"}'] == 1
            assert metrics["vineyard_csi_volumes_staged"] == 1 and metrics["vineyard_csi_volumes_published"] == 1
            wait_rounds(30)
            assert (host_target / "from-the-node.txt").read_text() == "written on the host\n"

            (host_target / "stop").write_text("")
            result = podman("wait", pod_name, timeout=60)
            output = podman("logs", pod_name, check=False)
            assert result.stdout.strip() == "0", f"the pod failed: {output.stdout}{output.stderr}"
            assert "pod stopped after" in output.stdout

            node.NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(volume_id=volume.volume_id, target_path=target))
            node.NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(volume_id=volume.volume_id, staging_target_path=staging))
            assert mount_type(host_target) is None and mount_type(host_staging) is None
    finally:
        sandbox.cleanup(podman)
