"""Mounts that survive the node plugin: restarts, crashes and upgrades never break a pod's volume.

A reader streams a large file and a writer writes another through a published target (both
separate processes, like pods) while the node plugin is stopped with SIGTERM, killed with
SIGKILL, or replaced by another binary, and started again. Neither may see an I/O error; the
written file must be byte-identical; files written before must be unchanged. Without the
descriptor holder the plugin falls back to mounting again and re-binding targets; and a dead
(ENOTCONN) mount can always be unpublished and unstaged.

Every test kills what it started by PID and lazily unmounts what is left, even on failure.
"""

import errno
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BIN_DIR, Clients, Driver, cluster_parameters, csi_pb2, mount_capability
from test_node import mounts_under

MiB = 1 << 20
Mode = csi_pb2.VolumeCapability.AccessMode
HOLDER = BIN_DIR / "vineyard-csi-fdholder"
IO = Path(__file__).resolve().parent / "restart_io.py"

pytestmark = pytest.mark.skipif(
    not os.path.exists("/dev/fuse") or os.geteuid() != 0, reason="needs /dev/fuse and root to mount")


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
            assert self.process.poll() is None, self.log_path.read_text()
            assert time.monotonic() < deadline, "holder did not listen"
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


@pytest.fixture
def rig(workdir):
    made = []

    def make(binary=None):
        made.append(Rig(workdir, binary))
        return made[-1]
    try:
        yield make
    finally:
        for r in made:
            r.close()


def fill(path, size):
    with open(path, "wb") as handle:
        for index in range(size // MiB):
            handle.write(hashlib.sha256(b"big%d" % index).digest() * (MiB // 32))


def restart_under_io(r, restart, settle=0.7):
    """Streams a read and a write through the pod target across `restart()`; checks both."""
    target = r.publish_volume()
    fill(target / "big.bin", 256 * MiB)
    (target / "keep.txt").write_text("written before the restart\n")
    kept = {name: sha256(target / name) for name in ("big.bin", "keep.txt")}
    stop = r.workdir / "stop"
    reader = r.start_io("read", target / "big.bin", stop, kept["big.bin"])
    writer = r.start_io("write", target / "out.bin", stop)
    time.sleep(settle)
    restart()
    time.sleep(settle)
    stop.touch()
    read, written = Rig.finish(reader), Rig.finish(writer)
    assert read["ok"], read
    assert written["ok"], written
    assert read["passes"] >= 1
    assert written["bytes"] >= 8 * MiB
    assert os.path.getsize(target / "out.bin") == written["bytes"]
    assert sha256(target / "out.bin") == written["sha256"]
    for name, digest in kept.items():
        assert sha256(target / name) == digest, name
    # The target was never re-bound: it is the same mount, and it answers.
    assert os.path.ismount(target)
    return read, written


def test_sigterm_restart_keeps_io_going(rig):
    r = rig()

    def restart():
        assert r.driver.stop(signal.SIGTERM) == 0
        r.driver.start()
    restart_under_io(r, restart)
    assert "handed mounts over" in r.driver.read_log()
    assert "resumed staged volume" in r.driver.read_log()
    r.unpublish_volume()
    assert mounts_under(r.workdir) == []


def test_sigkill_restart_resends_and_keeps_io_going(rig):
    r = rig()

    def restart():
        r.driver.stop(signal.SIGKILL)
        r.driver.start()
    restart_under_io(r, restart)
    assert "resumed staged volume" in r.driver.read_log()
    r.unpublish_volume()
    assert mounts_under(r.workdir) == []


def test_requests_a_killed_plugin_read_but_never_answered_are_resent(rig):
    """The plugin takes READs off the connection and never answers them (fault injection, as if
    killed in the middle of them): the reader hangs until the plugin is killed and restarted;
    then FUSE_NOTIFY_RESEND gives the READs to the new plugin and the reader gets its bytes."""
    r = rig()
    target = r.publish_volume()
    payload = os.urandom(4 * MiB)
    (target / "data.bin").write_bytes(payload)
    r.driver.stop(signal.SIGTERM)
    r.driver.extra_args.append("--verbose")
    os.environ["FUSEKIT_FAULT_UNANSWERED_OPCODE"] = "15"  # FUSE_READ
    try:
        r.driver.start()
    finally:
        del os.environ["FUSEKIT_FAULT_UNANSWERED_OPCODE"]
    script = (f"import sys, hashlib; data = open({str(target / 'data.bin')!r}, 'rb').read(); "
              "print(len(data), hashlib.sha256(data).hexdigest(), flush=True)")
    reader = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    r.workers.append(reader)
    with pytest.raises(subprocess.TimeoutExpired):
        reader.wait(timeout=1.5)  # its READ was taken and is not answered
    r.driver.stop(signal.SIGKILL)
    r.driver.start()
    out, _ = reader.communicate(timeout=30)
    assert out.split() == [str(len(payload)), hashlib.sha256(payload).hexdigest()]
    assert "FUSE_NOTIFY_RESEND" in r.holder.log_path.read_text()
    r.unpublish_volume()


def test_upgrade_to_another_binary_keeps_io_going(rig, workdir):
    upgraded = workdir / "v2" / "vineyard-csi"
    upgraded.parent.mkdir()
    shutil.copy2(BIN_DIR / "vineyard-csi", upgraded)
    r = rig()

    def restart():
        assert r.driver.stop(signal.SIGTERM) == 0
        r.use_binary(upgraded)
        r.driver.start()
    restart_under_io(r, restart)
    assert r.driver.process.args[0] == str(upgraded)
    r.unpublish_volume()


def test_holder_killed_falls_back_to_mounting_again(rig):
    r = rig()
    target = r.publish_volume()
    payload = os.urandom(3 * MiB)
    (target / "before.bin").write_bytes(payload)
    # Without the holder the plugin's own descriptor is the last one: killing it ends the connection.
    r.holder.kill()
    r.driver.stop(signal.SIGKILL)
    with pytest.raises(OSError) as failure:
        os.stat(target / "before.bin")
    assert failure.value.errno == errno.ENOTCONN
    r.holder.start()
    r.driver.start()
    log = r.driver.read_log()
    assert "re-staged volume" in log and "re-published volume" in log
    # The target was re-bound to a new session over the same store: the files are there.
    assert (target / "before.bin").read_bytes() == payload
    (target / "after.txt").write_text("new pods work")
    assert (r.staging / "after.txt").read_text() == "new pods work"
    r.unpublish_volume()
    assert mounts_under(r.workdir) == []


def test_unpublish_and_unstage_of_a_dead_mount_succeed(rig):
    r = rig()
    target = r.publish_volume()
    (target / "f").write_text("x")
    # Abort the connection: the staging mount and the pod's bind mount answer ENOTCONN.
    connections = Path("/sys/fs/fuse/connections")
    if not any(connections.iterdir()):
        subprocess.run(["mount", "-t", "fusectl", "fusectl", str(connections)], check=False)
    minor = os.minor(os.stat(r.staging).st_dev)
    with open(connections / str(minor) / "abort", "w") as abort:
        abort.write("1")
    with pytest.raises(OSError) as failure:
        os.stat(target / "f")
    assert failure.value.errno == errno.ENOTCONN
    r.unpublish_volume()
    assert mounts_under(r.workdir) == []


def test_spawned_holder_keeps_mounts_across_a_crash(workdir):
    """--spawn-fd-holder starts the holder in its own session; it outlives a killed plugin."""
    handover = workdir / "handover"
    driver = Driver(workdir, extra_args=["--handover-dir", str(handover), "--spawn-fd-holder"]).start()
    holder_pid = None
    try:
        channel = driver.channel()
        clients = Clients(channel)
        request = csi_pb2.CreateVolumeRequest(name="pvc-spawn", volume_capabilities=[mount_capability()],
                                              parameters=cluster_parameters())
        volume = clients.controller.CreateVolume(request).volume
        staging = workdir / "staging"
        clients.node.NodeStageVolume(csi_pb2.NodeStageVolumeRequest(
            volume_id=volume.volume_id, staging_target_path=str(staging), volume_capability=mount_capability(),
            volume_context=volume.volume_context))
        channel.close()
        (staging / "a.txt").write_text("alive")
        holder_pid = holder_pid_of(handover / "fdholder.sock")
        assert holder_pid != driver.process.pid
        handle = open(staging / "a.txt")
        driver.stop(signal.SIGKILL)
        driver.start()
        assert handle.read() == "alive"
        handle.close()
        assert (staging / "a.txt").read_text() == "alive"
        with driver.channel() as channel:
            Clients(channel).node.NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(
                volume_id=volume.volume_id, staging_target_path=str(staging)))
    finally:
        driver.stop(signal.SIGKILL)
        if holder_pid is not None:
            os.kill(holder_pid, signal.SIGKILL)
        for point in sorted(mounts_under(workdir), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], check=False)
