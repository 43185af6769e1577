"""The driver's command line: bad flags exit with a message naming the problem, good ones act."""

import os
import signal

import pytest

from conftest import Driver, cluster_parameters, csi_pb2, Clients, mount_capability, stage_and_publish, unpublish_and_unstage


def exits_with(workdir, args, message):
    driver = Driver(workdir, extra_args=args).start(expect_ready=False)
    assert driver.process.wait(timeout=30) != 0
    driver.stop()
    assert message in driver.read_log(), driver.read_log()


@pytest.mark.parametrize("args, message", [
    (["--store-prefault", "9Gi"], "--store-prefault 9Gi is not a size up to --store-size 8Gi"),
    (["--store-prefault", "lots"], "--store-prefault lots is not a size"),
    (["--read-mode", "fast"], "'fast' is invalid for '--read-mode"),
])
def test_bad_flags_name_the_problem(workdir, args, message):
    exits_with(workdir, args, message)


def backed_bytes(store_dir):
    """Bytes allocated to the stores' arena files (their shared memory on tmpfs)."""
    return sum(path.stat().st_blocks * 512 for path in store_dir.rglob("arena-*"))


@pytest.mark.skipif(not os.path.exists("/dev/fuse") or os.geteuid() != 0, reason="needs /dev/fuse and root")
def test_store_prefault_backs_the_store_when_it_opens(workdir):
    driver = Driver(workdir, extra_args=["--mode", "all", "--store-prefault", "512Mi"]).start()
    try:
        with driver.channel() as channel:
            clients = Clients(channel)
            request = csi_pb2.CreateVolumeRequest(
                name="pvc-prefault", volume_capabilities=[mount_capability()], parameters=cluster_parameters())
            volume = clients.controller.CreateVolume(request).volume
            staging, target = workdir / "staging", workdir / "pod"
            stage_and_publish(clients, volume, staging, target)  # the store opens with its first volume
            backed = backed_bytes(workdir / "shm")
            (target / "a.bin").write_bytes(b"a" * 4096)
            assert (target / "a.bin").read_bytes() == b"a" * 4096
            unpublish_and_unstage(clients, volume, staging, target)
        assert backed >= 512 << 20, f"the store backs {backed >> 20} MiB"
    finally:
        driver.stop(signal.SIGKILL)
