"""End-to-end fixtures: the real vineyard-csi binary, driven over its real unix socket.

The gRPC client is Python's grpcio with stubs generated from Protos/csi.proto when the
session starts, so the tests share no code with the driver.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import pytest

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("VINEYARD_CSI_BIN_DIR", REPO / ".build" / "debug"))
DRIVER = BIN_DIR / "vineyard-csi"
VCTL = BIN_DIR / "vctl"
# Extra flags for every driver the tests start, e.g. to run a suite against a vineyardd backend:
# VINEYARD_CSI_E2E_DRIVER_ARGS="--backend vineyardd --vineyard-socket-root /tmp/sockets".
EXTRA_DRIVER_ARGS = os.environ.get("VINEYARD_CSI_E2E_DRIVER_ARGS", "").split()


def _generate_stubs() -> Path:
    from grpc_tools import protoc
    import grpc_tools

    out = Path(tempfile.mkdtemp(prefix="csi-stubs-"))
    include = Path(grpc_tools.__file__).parent / "_proto"
    code = protoc.main([
        "protoc", f"-I{REPO / 'Protos'}", f"-I{include}",
        f"--python_out={out}", f"--grpc_python_out={out}", str(REPO / "Protos" / "csi.proto"),
    ])
    if code != 0:
        raise RuntimeError("protoc failed to generate Python stubs from Protos/csi.proto")
    return out


sys.path.insert(0, str(_generate_stubs()))
import csi_pb2  # noqa: E402
import csi_pb2_grpc  # noqa: E402


class Driver:
    """One vineyard-csi process with its own socket and state directory."""

    def __init__(self, workdir: Path, node_id: str = "node-a", extra_args=()):
        self.workdir = workdir
        self.socket = workdir / "csi.sock"
        self.state_dir = workdir / "state"
        self.node_id = node_id
        self.extra_args = list(extra_args)
        self.process = None
        self.log_path = workdir / "driver.log"

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    def command(self):
        return [
            str(DRIVER), "--endpoint", self.endpoint, "--nodeid", self.node_id,
            "--state-dir", str(self.state_dir), "--store-dir", str(self.workdir / "shm"),
            "--store-size", "8Gi", *self.extra_args, *EXTRA_DRIVER_ARGS,
        ]

    def start(self, expect_ready=True):
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.command(), stdout=self.log, stderr=subprocess.STDOUT)
        if expect_ready:
            self.wait_until_serving()
        return self

    def wait_until_serving(self, timeout=30):
        """Waits until the driver answers Probe (a stale socket file alone does not count)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"driver exited with {self.process.returncode}: {self.read_log()}")
            if self.socket.exists():
                with self.channel() as channel:
                    try:
                        csi_pb2_grpc.IdentityStub(channel).Probe(csi_pb2.ProbeRequest(), timeout=1)
                        return
                    except grpc.RpcError:
                        pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"driver did not start serving: {self.read_log()}")
            time.sleep(0.02)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        self.log.close()
        return code

    def read_log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def channel(self):
        return grpc.insecure_channel(self.endpoint)


class Clients:
    def __init__(self, channel):
        self.channel = channel
        self.identity = csi_pb2_grpc.IdentityStub(channel)
        self.controller = csi_pb2_grpc.ControllerStub(channel)
        self.node = csi_pb2_grpc.NodeStub(channel)


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory(prefix="vineyard-csi-e2e-") as path:
        yield Path(path)


@pytest.fixture
def driver(workdir):
    d = Driver(workdir).start()
    try:
        yield d
    finally:
        d.stop(signal.SIGKILL)


@pytest.fixture
def csi(driver):
    channel = driver.channel()
    try:
        yield Clients(channel)
    finally:
        channel.close()


def mount_capability(mode=csi_pb2.VolumeCapability.AccessMode.SINGLE_NODE_WRITER, fs_type=""):
    return csi_pb2.VolumeCapability(
        mount=csi_pb2.VolumeCapability.MountVolume(fs_type=fs_type),
        access_mode=csi_pb2.VolumeCapability.AccessMode(mode=mode),
    )


def cluster_parameters(namespace="vineyard-system", name="vineyardd-sample"):
    return {"k8s.v6d.io/vineyard/namespace": namespace, "k8s.v6d.io/vineyard/name": name}


def expect_code(code, call, *args, **kwargs):
    """Calls and asserts the RPC fails with `code`; returns the error details."""
    with pytest.raises(grpc.RpcError) as failure:
        call(*args, **kwargs)
    assert failure.value.code() == code, f"expected {code}, got {failure.value.code()}: {failure.value.details()}"
    return failure.value.details()


def stage_and_publish(clients, volume, staging, target, capability=None):
    """NodeStageVolume then NodePublishVolume of `volume`, in the order kubelet calls them."""
    capability = capability or mount_capability()
    clients.node.NodeStageVolume(csi_pb2.NodeStageVolumeRequest(
        volume_id=volume.volume_id, staging_target_path=str(staging), volume_capability=capability,
        volume_context=volume.volume_context))
    clients.node.NodePublishVolume(csi_pb2.NodePublishVolumeRequest(
        volume_id=volume.volume_id, staging_target_path=str(staging), target_path=str(target),
        volume_capability=capability, volume_context=volume.volume_context))


def unpublish_and_unstage(clients, volume, staging, target):
    """NodeUnpublishVolume then NodeUnstageVolume: the reverse of `stage_and_publish`."""
    clients.node.NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(volume_id=volume.volume_id, target_path=str(target)))
    clients.node.NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(volume_id=volume.volume_id, staging_target_path=str(staging)))
