"""--read-mode direct: read-only opens bypass the page cache, and mappings still work.

The page cache is observed through /proc/meminfo: reading a 256 MiB file through a
page-cache volume adds about that much to `Cached`, through a direct volume next to nothing.
"""

import os
import signal

import numpy as np
import pytest

from conftest import Clients, Driver, cluster_parameters, csi_pb2, mount_capability, stage_and_publish, unpublish_and_unstage

MiB = 1 << 20
Mode = csi_pb2.VolumeCapability.AccessMode

pytestmark = pytest.mark.skipif(
    not os.path.exists("/dev/fuse") or os.geteuid() != 0, reason="needs /dev/fuse and root to mount")


def cached_bytes():
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("Cached:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no Cached: line in /proc/meminfo")


@pytest.fixture(params=["page-cache", "direct"])
def volume(request, workdir):
    # Without passthrough: these are the modes of files the driver serves.
    driver = Driver(workdir, extra_args=["--mode", "all", "--read-mode", request.param, "--no-passthrough"]).start()
    channel = driver.channel()
    clients = Clients(channel)
    create = csi_pb2.CreateVolumeRequest(
        name="pvc-read", volume_capabilities=[mount_capability(Mode.SINGLE_NODE_MULTI_WRITER)],
        parameters=cluster_parameters())
    create.capacity_range.required_bytes = 1 << 30
    volume = clients.controller.CreateVolume(create).volume
    staging, target = workdir / "staging", workdir / "pod" / "vineyard"
    capability = mount_capability(Mode.SINGLE_NODE_MULTI_WRITER)
    stage_and_publish(clients, volume, staging, target, capability)
    try:
        yield request.param, target
    finally:
        unpublish_and_unstage(clients, volume, staging, target)
        channel.close()
        driver.stop(signal.SIGTERM)


def test_reads_are_correct_and_cache_only_in_page_cache_mode(volume):
    mode, target = volume
    data = np.random.default_rng(7).integers(0, 255, size=256 * MiB, dtype=np.uint8).tobytes()
    (target / "frame.bin").write_bytes(data)  # write-only open: direct I/O in both modes
    before = cached_bytes()
    with open(target / "frame.bin", "rb", buffering=0) as stream:
        chunks = []
        while chunk := stream.read(4 * MiB + 123):  # odd sizes: requests need not be aligned
            chunks.append(chunk)
    grown = cached_bytes() - before
    assert b"".join(chunks) == data
    if mode == "direct":
        assert grown < 64 * MiB, f"page cache grew by {grown >> 20} MiB"
    else:
        assert grown > 128 * MiB, f"page cache grew by only {grown >> 20} MiB"

    # Small reads at odd offsets, and reads past the end.
    with open(target / "frame.bin", "rb", buffering=0) as stream:
        for offset in (0, 1, 4095, 4097, 200 * MiB + 17, len(data) - 5):
            stream.seek(offset)
            assert stream.read(100) == data[offset:offset + 100]
        stream.seek(len(data) + 10)
        assert stream.read(10) == b""


def test_shared_mappings_of_read_only_files_work_in_both_modes(volume):
    _, target = volume
    array = np.arange(3 * MiB, dtype=np.int64)
    np.save(target / "x.npy", array)
    mapped = np.load(target / "x.npy", mmap_mode="r")  # MAP_SHARED, PROT_READ
    assert np.array_equal(mapped, array)
    raw = np.memmap(target / "x.npy", dtype=np.uint8, mode="r")
    assert raw.size == os.path.getsize(target / "x.npy")
    del mapped, raw
