"""Two "nodes" of a vineyard deployment on one machine: etcd, two vineyardd from the vineyard wheel
on it (RPC on ports of their own), and a vineyard-csi driver per vineyardd whose
`--vineyard-socket-root` holds that vineyardd's socket, as vineyard's operator lays it out
(`<root>/<namespace>/<name>/vineyard.sock`).

Used by the cluster-mode tests (Tests/e2e) and the cross-node benchmark (scripts/). Every
process is stopped by its pid and every mount lazily detached, even when the caller fails.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import vineyard

from .driver import Clients, Driver, cluster_parameters, csi_pb2, mount_capability, stage_and_publish, unpublish_and_unstage

VINEYARDD = Path(vineyard.__file__).parent / "bdist" / "vineyardd"
ETCD = shutil.which("etcd")
NAMESPACE, NAME = "vineyard-system", "vineyardd-sample"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def lazy_unmount_all_under(path):
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(str(path))), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True)


class Etcd:
    def __init__(self, workdir):
        self.workdir = workdir
        self.client_port, self.peer_port = free_port(), free_port()
        self.endpoint = f"http://127.0.0.1:{self.client_port}"
        self.process = None

    def start(self):
        peer = f"http://127.0.0.1:{self.peer_port}"
        env = dict(os.environ)
        if os.uname().machine == "aarch64":
            env["ETCD_UNSUPPORTED_ARCH"] = "arm64"  # Debian's etcd 3.4 refuses to start there otherwise
        self.log = open(self.workdir / "etcd.log", "wb")
        self.process = subprocess.Popen([
            ETCD, "--name", "vcsi", "--data-dir", str(self.workdir / "etcd"),
            "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", f"vcsi={peer}",
        ], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        wait_for(lambda: self._answers(), what="etcd")
        return self

    def _answers(self):
        if self.process.poll() is not None:
            raise RuntimeError((self.workdir / "etcd.log").read_text(errors="replace"))
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.client_port)) == 0

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()


class Vineyardd:
    """One vineyardd of the deployment `NAMESPACE/NAME`, its socket where the operator puts it."""

    def __init__(self, workdir, etcd, prefix, label, size="256Mi"):
        self.root = workdir / f"sockets-{label}"
        self.size = size
        self.socket = self.root / NAMESPACE / NAME / "vineyard.sock"
        self.etcd, self.prefix, self.label, self.workdir = etcd, prefix, label, workdir
        self.rpc_port = free_port()
        self.process = None

    def start(self):
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(self.workdir / f"vineyardd-{self.label}.log", "ab")
        self.process = subprocess.Popen([
            str(VINEYARDD), "--socket", str(self.socket), "--size", self.size, "--meta", "etcd",
            "--etcd_endpoint", self.etcd.endpoint, "--etcd_prefix", self.prefix, "--rpc_socket_port", str(self.rpc_port),
        ], stdout=self.log, stderr=subprocess.STDOUT)

        def ready():
            if self.process.poll() is not None:
                raise RuntimeError((self.workdir / f"vineyardd-{self.label}.log").read_text(errors="replace")[-3000:])
            try:
                vineyard.connect(str(self.socket)).close()
                return True
            except Exception:
                return False
        wait_for(ready, what=f"vineyardd {self.label}")
        return self

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        if self.process:
            self.log.close()
        self.process = None

    def client(self):
        return vineyard.connect(str(self.socket))


class Node:
    """A driver instance ("node") whose vineyard socket root is one vineyardd's."""

    def __init__(self, workdir, label, socket_root, backend="auto", store_size="1Gi"):
        self.dir = workdir / f"node-{label}"
        self.dir.mkdir()
        self.driver = Driver(self.dir, node_id=f"node-{label}", extra_args=[
            "--vineyard-socket-root", str(socket_root), "--backend", backend, "--store-size", store_size])
        self.staging, self.target = self.dir / "staging", self.dir / "target"
        self.channel = None
        self.clients = None

    def start(self):
        self.driver.start()
        self.channel = self.driver.channel()
        self.clients = Clients(self.channel)
        return self

    def publish(self, volume):
        stage_and_publish(self.clients, volume, self.staging, self.target)
        return self.target

    def unpublish(self, volume):
        unpublish_and_unstage(self.clients, volume, self.staging, self.target)

    def publish_another(self, volume, label):
        """Publishes a second volume on this node, at paths of its own."""
        target = self.dir / f"target-{label}"
        stage_and_publish(self.clients, volume, self.dir / f"staging-{label}", target)
        return target

    def unpublish_another(self, volume, label):
        unpublish_and_unstage(self.clients, volume, self.dir / f"staging-{label}", self.dir / f"target-{label}")

    def stop(self):
        if self.channel:
            self.channel.close()
        self.driver.stop(signal.SIGTERM)
        lazy_unmount_all_under(self.dir)


def stop_all(started, workdir):
    """Stops what a fixture started, last first (drivers unmount), whatever fails."""
    for thing in reversed(started):
        try:
            thing.kill() if isinstance(thing, Vineyardd) else thing.stop()
        except Exception:
            pass
    lazy_unmount_all_under(workdir)


@contextlib.contextmanager
def two_node_cluster(workdir, vineyardd_size="256Mi", store_size="1Gi"):
    """etcd, vineyardd "a" and "b" on it (RPC on ports of their own), and a driver per vineyardd."""
    started = []
    try:
        etcd = Etcd(workdir).start()
        started.append(etcd)
        prefix = f"/vineyard-csi-test-{os.getpid()}-{time.monotonic_ns()}"
        # One at a time: two instances joining at once can race for an instance id.
        a = Vineyardd(workdir, etcd, prefix, "a", size=vineyardd_size).start()
        started.append(a)
        b = Vineyardd(workdir, etcd, prefix, "b", size=vineyardd_size).start()
        started.append(b)
        node_a = Node(workdir, "a", a.root, store_size=store_size).start()
        started.append(node_a)
        node_b = Node(workdir, "b", b.root, store_size=store_size).start()
        started.append(node_b)
        yield {"etcd": etcd, "a": a, "b": b, "node_a": node_a, "node_b": node_b}
    finally:
        stop_all(started, workdir)


def create_volume(clients, name, requirements=None, size=64 << 20, **parameters):
    request = csi_pb2.CreateVolumeRequest(
        name=name, volume_capabilities=[mount_capability()], parameters={**cluster_parameters(NAMESPACE, NAME), **parameters},
        capacity_range=csi_pb2.CapacityRange(required_bytes=size))
    if requirements:
        request.accessibility_requirements.CopyFrom(requirements)
    return clients.controller.CreateVolume(request).volume


def pin(node_id):
    topology = csi_pb2.Topology(segments={"topology.csi.vineyard.v6d.io/node": node_id})
    return csi_pb2.TopologyRequirement(requisite=[topology], preferred=[topology])


def probe_ready(clients):
    response = clients.identity.Probe(csi_pb2.ProbeRequest())
    return not response.HasField("ready") or response.ready.value
