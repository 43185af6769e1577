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
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BIN_DIR, Clients, Driver, cluster_parameters, csi_pb2, mount_capability
from harness.restart import MiB, Mode, Rig, fill, holder_pid_of, sha256
from test_node import mounts_under

pytestmark = pytest.mark.skipif(
    not os.path.exists("/dev/fuse") or os.geteuid() != 0, reason="needs /dev/fuse and root to mount")


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
    # Below --blob-file-threshold: served by the plugin (larger files are served by the kernel).
    payload = os.urandom(MiB // 2)
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
