"""The driver's signal policy, with its output piped as an operator pipes it.

A daemon that serves mounts must outlive its log reader: `vineyard-csi ... 2>&1 | head -n 1`
closes the pipe after one line, and Ctrl-C on `vineyard-csi ... | tee log` stops tee at the same
moment as the driver, so every log line of the driver's shutdown goes to a closed pipe.
"""

import os
import signal
import subprocess
import time

import pytest

from conftest import Clients, Driver, cluster_parameters, csi_pb2, mount_capability
from harness.mounts import mounts_under, unmount_all_under

pytestmark = pytest.mark.skipif(
    not os.path.exists("/dev/fuse") or os.geteuid() != 0, reason="needs /dev/fuse and root to mount")


def start_piped(driver, reader):
    """Starts `driver` in a process group of its own with stdout and stderr piped into `reader`
    (a command), which joins the group, as a shell runs `driver 2>&1 | reader`."""
    process = subprocess.Popen(driver.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               process_group=0)
    consumer = subprocess.Popen(reader, stdin=process.stdout, stdout=subprocess.DEVNULL,
                                process_group=process.pid)
    process.stdout.close()  # the reader holds the only read end
    return process, consumer


def stop(process, consumer, workdir):
    for child in (process, consumer):
        if child.poll() is None:
            child.kill()
            child.wait()
    unmount_all_under(workdir)


def test_driver_keeps_serving_after_its_log_pipe_closed(workdir):
    driver = Driver(workdir, extra_args=["--verbose"])
    process, head = start_piped(driver, ["head", "-n", "1"])
    driver.process = process
    try:
        assert head.wait(timeout=30) == 0
        # Every call below logs a line (--verbose) into the pipe nobody reads any more.
        driver.wait_until_serving()
        with driver.channel() as channel:
            clients = Clients(channel)
            for name in ("pvc-after-head-1", "pvc-after-head-2"):
                request = csi_pb2.CreateVolumeRequest(
                    name=name, volume_capabilities=[mount_capability()], parameters=cluster_parameters())
                request.capacity_range.required_bytes = 1 << 20
                assert clients.controller.CreateVolume(request, timeout=10).volume.volume_id
            assert clients.identity.Probe(csi_pb2.ProbeRequest(), timeout=5).ready.value
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        stop(process, head, workdir)


def test_ctrl_c_under_tee_unmounts_everything(workdir):
    target = workdir / "local"
    log = workdir / "tee.log"
    driver = Driver(workdir, extra_args=["--local-volume", str(target)])
    process, tee = start_piped(driver, ["tee", str(log)])
    try:
        deadline = time.monotonic() + 60
        while "local volume ready" not in (log.read_text(errors="replace") if log.exists() else ""):
            assert process.poll() is None, f"driver exited with {process.returncode}: {log.read_text()}"
            assert time.monotonic() < deadline, f"the local volume was not published: {log.read_text()}"
            time.sleep(0.05)
        assert str(target) in mounts_under(workdir)
        (target / "kept.txt").write_text("written before Ctrl-C")

        os.killpg(process.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        assert tee.wait(timeout=10) == -signal.SIGINT
        assert process.wait(timeout=60) == 0, "the driver did not finish its shutdown"
        assert mounts_under(workdir) == []
    finally:
        stop(process, tee, workdir)
