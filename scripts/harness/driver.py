"""One vineyard-csi process on its own socket and state directory, and the CSI calls kubelet makes.

VINEYARD_CSI_BIN_DIR names the directory holding the built binaries (default .build/debug).
VINEYARD_CSI_E2E_DRIVER_ARGS adds flags to every driver started here, e.g. to run a suite against
a vineyardd backend: "--backend vineyardd --vineyard-socket-root /tmp/sockets".
"""

import os
import signal
import subprocess
import time
from pathlib import Path

import grpc

from .stubs import REPO, csi_stubs

csi_pb2, csi_pb2_grpc = csi_stubs()

BIN_DIR = Path(os.environ.get("VINEYARD_CSI_BIN_DIR", REPO / ".build" / "debug"))
DRIVER = BIN_DIR / "vineyard-csi"
VCTL = BIN_DIR / "vctl"
EXTRA_DRIVER_ARGS = os.environ.get("VINEYARD_CSI_E2E_DRIVER_ARGS", "").split()


def wait_for_probe(process, socket_path, open_channel, read_log, timeout, name="driver"):
    """Waits until the driver `process` answers Probe on `socket_path` (a stale socket file alone
    does not count); raises RuntimeError with its log when it exits or does not answer in time.
    Each attempt opens a fresh channel with `open_channel()`, so a channel that failed to connect
    before the socket existed does not hold later attempts back with its reconnect backoff."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}: {read_log()}")
        if Path(socket_path).exists():
            with open_channel() as channel:
                try:
                    csi_pb2_grpc.IdentityStub(channel).Probe(csi_pb2.ProbeRequest(), timeout=1)
                    return
                except grpc.RpcError:
                    pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start serving: {read_log()}")
        time.sleep(0.02)


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
        wait_for_probe(self.process, self.socket, self.channel, self.read_log, timeout)

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


def mount_capability(mode=csi_pb2.VolumeCapability.AccessMode.SINGLE_NODE_WRITER, fs_type=""):
    return csi_pb2.VolumeCapability(
        mount=csi_pb2.VolumeCapability.MountVolume(fs_type=fs_type),
        access_mode=csi_pb2.VolumeCapability.AccessMode(mode=mode),
    )


def cluster_parameters(namespace="vineyard-system", name="vineyardd-sample"):
    return {"k8s.v6d.io/vineyard/namespace": namespace, "k8s.v6d.io/vineyard/name": name}


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
