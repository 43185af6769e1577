"""The node plugin under I/O: a descriptor holder, a driver using it, one volume published on one
pod target, and reader/writer processes (restart_io.py) streaming through that target.

Used by Tests/e2e/test_restart.py and by the restart benchmark (scripts/bench_restart.py).
"""

import hashlib
import json
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from .driver import BIN_DIR, Clients, Driver, cluster_parameters, csi_pb2, mount_capability
from .mounts import mounts_under

MiB = 1 << 20
Mode = csi_pb2.VolumeCapability.AccessMode
HOLDER = BIN_DIR / "vineyard-csi-fdholder"
IO = Path(__file__).resolve().parent / "restart_io.py"


def holder_pid_of(socket_path):
    """The PID of the process listening at a unix socket (SO_PEERCRED)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as client:
        client.connect(str(socket_path))
        pid, _, _ = struct.unpack("3i", client.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return pid


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(MiB), b""):
            digest.update(block)
    return digest.hexdigest()

class Holder:
    """vineyard-csi-fdholder, as its own process (its own DaemonSet in a cluster)."""

    def __init__(self, directory: Path):
        self.socket = directory / "fdholder.sock"
        self.log_path = directory.parent / "holder.log"
        self.process = None

    def start(self):
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen([str(HOLDER), "--socket", str(self.socket)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"vineyard-csi-fdholder exited: {self.log_path.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError("vineyard-csi-fdholder did not listen within 10 s")
            time.sleep(0.01)
        return self

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


class Rig:
    """A node plugin with a holder, one staged volume published on one pod target."""

    def __init__(self, workdir: Path, binary=None):
        self.workdir = workdir
        self.handover = workdir / "handover"
        self.holder = Holder(self.handover).start()
        self.driver = Driver(workdir, extra_args=["--handover-dir", str(self.handover)])
        if binary is not None:
            self.driver.command = self._command_with(binary)
        self.driver.start()
        self.workers = []

    def _command_with(self, binary):
        base = Driver.command

        def command():
            return [str(binary)] + base(self.driver)[1:]
        return command

    def use_binary(self, binary):
        self.driver.command = self._command_with(binary)

    def clients(self):
        return Clients(self.driver.channel())

    def publish_volume(self, name="pvc-restart"):
        clients = self.clients()
        request = csi_pb2.CreateVolumeRequest(
            name=name, volume_capabilities=[mount_capability(Mode.SINGLE_NODE_MULTI_WRITER)],
            parameters=cluster_parameters())
        request.capacity_range.required_bytes = 2048 * MiB
        volume = clients.controller.CreateVolume(request).volume
        self.volume = volume
        self.staging = self.workdir / "staging" / volume.volume_id
        self.target = self.workdir / "pods" / "p" / "vineyard"
        capability = mount_capability(Mode.SINGLE_NODE_MULTI_WRITER)
        clients.node.NodeStageVolume(csi_pb2.NodeStageVolumeRequest(
            volume_id=volume.volume_id, staging_target_path=str(self.staging), volume_capability=capability,
            volume_context=volume.volume_context))
        clients.node.NodePublishVolume(csi_pb2.NodePublishVolumeRequest(
            volume_id=volume.volume_id, staging_target_path=str(self.staging), target_path=str(self.target),
            volume_capability=capability, volume_context=volume.volume_context))
        clients.channel.close()
        return self.target

    def unpublish_volume(self):
        clients = self.clients()
        try:
            clients.node.NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(
                volume_id=self.volume.volume_id, target_path=str(self.target)))
            clients.node.NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(
                volume_id=self.volume.volume_id, staging_target_path=str(self.staging)))
        finally:
            clients.channel.close()

    def start_io(self, mode, *args):
        worker = subprocess.Popen([sys.executable, str(IO), mode, *map(str, args)], stdout=subprocess.PIPE, text=True)
        self.workers.append(worker)
        return worker

    @staticmethod
    def finish(worker, timeout=120):
        out, _ = worker.communicate(timeout=timeout)
        return json.loads(out.strip().splitlines()[-1]) if out.strip() else {"ok": False, "error": f"exit {worker.returncode}"}

    def close(self):
        print(self.driver.read_log()[-4000:])  # shown when the test failed
        for worker in self.workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        self.driver.stop(signal.SIGKILL)
        self.holder.kill()
        for point in sorted(mounts_under(self.workdir), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], check=False)

def fill(path, size):
    with open(path, "wb") as handle:
        for index in range(size // MiB):
            handle.write(hashlib.sha256(b"big%d" % index).digest() * (MiB // 32))
