"""A `vineyard-csi --mode all` process for the pipeline and the CSI calls kubelet makes, over the
driver's real socket (its stubs from scripts/harness).
"""

import subprocess
import time
from pathlib import Path

from harness.driver import wait_for_probe
from harness.stubs import csi_stubs as stubs

from . import processes


class Driver:
    """One `vineyard-csi --mode all` process with its own socket, state and store directories."""

    def __init__(self, binary, workdir, store_dir, store_size, read_mode="page-cache", prefault=False, huge_pages=False):
        self.binary = Path(binary)
        self.read_mode = read_mode
        self.prefault = prefault
        self.huge_pages = huge_pages
        self.workdir = Path(workdir)
        self.store_dir = Path(store_dir)
        self.store_size = store_size
        self.socket = self.workdir / "csi.sock"
        self.log_path = self.workdir / "driver.log"
        self.process = None
        self.channel = None

    def start(self, timeout=60):
        import grpc

        _, pb2_grpc = stubs()
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([
            str(self.binary), "--mode", "all", "--endpoint", f"unix://{self.socket}", "--nodeid", "pipeline-node",
            "--state-dir", str(self.workdir / "state"), "--store-dir", str(self.store_dir),
            "--store-size", self.store_size, "--default-volume-size", self.store_size,
            "--read-mode", self.read_mode, "--store-prefault", self.store_size if self.prefault else "0",
            *(["--store-huge-pages"] if self.huge_pages else []),
        ], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        endpoint = f"unix://{self.socket}"
        wait_for_probe(self.process, self.socket, lambda: grpc.insecure_channel(endpoint), self.log, timeout,
                       name="vineyard-csi")
        self.channel = grpc.insecure_channel(endpoint)
        self.controller = pb2_grpc.ControllerStub(self.channel)
        self.node = pb2_grpc.NodeStub(self.channel)
        return self

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self):
        """SIGTERM (the driver unmounts what it serves), SIGKILL after 20 s; always by PID."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        processes.stop(self.process)
        self.process = None


class Volume:
    """One volume created, staged once, and published to a target per pipeline step."""

    def __init__(self, driver, name, size_bytes, staging_path):
        pb2, _ = stubs()
        self.pb2 = pb2
        self.driver = driver
        self.staging_path = Path(staging_path)
        self.capability = pb2.VolumeCapability(
            mount=pb2.VolumeCapability.MountVolume(),
            access_mode=pb2.VolumeCapability.AccessMode(mode=pb2.VolumeCapability.AccessMode.SINGLE_NODE_MULTI_WRITER))
        request = pb2.CreateVolumeRequest(
            name=name, volume_capabilities=[self.capability],
            parameters={"k8s.v6d.io/vineyard/namespace": "vineyard-system", "k8s.v6d.io/vineyard/name": "vineyardd-sample"})
        request.capacity_range.required_bytes = size_bytes
        self.volume = driver.controller.CreateVolume(request, timeout=30).volume
        self.published = []
        self.staged = False

    @property
    def volume_id(self):
        return self.volume.volume_id

    def stage(self):
        self.driver.node.NodeStageVolume(self.pb2.NodeStageVolumeRequest(
            volume_id=self.volume_id, staging_target_path=str(self.staging_path),
            volume_capability=self.capability, volume_context=self.volume.volume_context), timeout=60)
        self.staged = True

    def publish(self, target):
        self.driver.node.NodePublishVolume(self.pb2.NodePublishVolumeRequest(
            volume_id=self.volume_id, staging_target_path=str(self.staging_path), target_path=str(target),
            volume_capability=self.capability, volume_context=self.volume.volume_context), timeout=60)
        self.published.append(Path(target))
        return Path(target)

    def unpublish(self, target):
        self.driver.node.NodeUnpublishVolume(
            self.pb2.NodeUnpublishVolumeRequest(volume_id=self.volume_id, target_path=str(target)), timeout=60)
        self.published.remove(Path(target))

    def release(self):
        """Unpublishes every target, unstages and deletes the volume; errors do not stop the cleanup."""
        import grpc

        for target in list(reversed(self.published)):
            try:
                self.unpublish(target)
            except grpc.RpcError:
                self.published.remove(target)
        if self.staged:
            try:
                self.driver.node.NodeUnstageVolume(self.pb2.NodeUnstageVolumeRequest(
                    volume_id=self.volume_id, staging_target_path=str(self.staging_path)), timeout=60)
            except grpc.RpcError:
                pass
            self.staged = False
        try:
            self.driver.controller.DeleteVolume(self.pb2.DeleteVolumeRequest(volume_id=self.volume_id), timeout=30)
        except grpc.RpcError:
            pass

