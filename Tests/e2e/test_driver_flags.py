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


def on_published_volume(driver, workdir, body, volume=None, name="pvc-flags"):
    """Publishes `volume` (a new one when None) at workdir/pod, runs body(target), unpublishes;
    returns the volume."""
    with driver.channel() as channel:
        clients = Clients(channel)
        if volume is None:
            request = csi_pb2.CreateVolumeRequest(
                name=name, volume_capabilities=[mount_capability()], parameters=cluster_parameters())
            volume = clients.controller.CreateVolume(request).volume
        staging, target = workdir / "staging", workdir / "pod"
        stage_and_publish(clients, volume, staging, target)
        try:
            body(target)
        finally:
            unpublish_and_unstage(clients, volume, staging, target)
    return volume


def holds(name, expected):
    """A body for on_published_volume that checks a file's bytes."""
    def check(target):
        assert (target / name).read_bytes() == expected
    return check


def backed_bytes(store_dir):
    """Bytes allocated to the stores' arena files (their shared memory on tmpfs)."""
    return sum(path.stat().st_blocks * 512 for path in store_dir.rglob("arena-*"))


@pytest.mark.skipif(not os.path.exists("/dev/fuse") or os.geteuid() != 0, reason="needs /dev/fuse and root")
def test_store_prefault_backs_the_store_when_it_opens(workdir):
    driver = Driver(workdir, extra_args=["--mode", "all", "--store-prefault", "512Mi"]).start()
    try:
        backed = []

        def write(target):
            backed.append(backed_bytes(workdir / "shm"))  # the store opens with its first volume
            (target / "a.bin").write_bytes(b"a" * 4096)
            assert (target / "a.bin").read_bytes() == b"a" * 4096

        on_published_volume(driver, workdir, write, name="pvc-prefault")
        backed = backed[0]
        assert backed >= 512 << 20, f"the store backs {backed >> 20} MiB"
    finally:
        driver.stop(signal.SIGKILL)


def store_tmpfs_options(store_dir):
    """The super options of a tmpfs mounted exactly on store_dir, or None."""
    with open("/proc/self/mountinfo") as table:
        found = None
        for line in table:
            fields = line.split()
            dash = fields.index("-")
            if fields[4] == str(store_dir) and fields[dash + 1] == "tmpfs":
                found = fields[dash + 3]
        return found


def shmem_pmd_mapped_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("ShmemPmdMapped:"):
                return int(line.split()[1])
    return 0


@pytest.mark.skipif(not os.path.exists("/dev/fuse") or os.geteuid() != 0, reason="needs /dev/fuse and root")
def test_store_huge_pages_mount_a_tmpfs_that_outlives_the_driver(workdir):
    """--store-huge-pages: the store directory becomes a tmpfs with huge=within_size, the
    driver's writes land in 2 MiB pages, and a restarted driver keeps using that tmpfs."""
    store_dir = workdir / "shm"
    payload = os.urandom(8 << 20)
    try:
        driver = Driver(workdir, extra_args=["--mode", "all", "--store-huge-pages"]).start()
        try:
            options = store_tmpfs_options(store_dir)
            assert options is not None and "huge=within_size" in options, options

            def write(target):
                (target / "big.bin").write_bytes(payload)
                assert (target / "big.bin").read_bytes() == payload
                assert shmem_pmd_mapped_kib(driver.process.pid) >= 2048, "no 2 MiB page maps the store"

            volume = on_published_volume(driver, workdir, write, name="pvc-huge")
        finally:
            driver.stop()
        # A restarted driver finds its tmpfs, and the store in it.
        driver = Driver(workdir, extra_args=["--mode", "all", "--store-huge-pages"]).start()
        try:
            assert "tmpfs=alreadyMounted" in driver.read_log(), driver.read_log()
            on_published_volume(driver, workdir, holds("big.bin", payload), volume=volume)
        finally:
            driver.stop(signal.SIGKILL)
    finally:
        os.system(f"umount -l {store_dir} 2>/dev/null")


@pytest.mark.skipif(not os.path.exists("/dev/fuse") or os.geteuid() != 0, reason="needs /dev/fuse and root")
def test_store_huge_pages_never_hides_existing_stores(workdir):
    """A node upgraded to --store-huge-pages with stores on /dev/shm keeps serving them on
    4 KiB pages and says why, instead of mounting a tmpfs over them."""
    store_dir = workdir / "shm"
    driver = Driver(workdir, extra_args=["--mode", "all"]).start()
    try:
        volume = on_published_volume(driver, workdir, lambda target: (target / "kept.txt").write_text("kept"),
                                     name="pvc-before")
    finally:
        driver.stop()
    driver = Driver(workdir, extra_args=["--mode", "all", "--store-huge-pages"]).start()
    try:
        assert f"the store directory {store_dir} holds vineyard-system: a tmpfs mounted over it would hide" \
            in driver.read_log(), driver.read_log()
        assert store_tmpfs_options(store_dir) is None
        on_published_volume(driver, workdir, holds("kept.txt", b"kept"), volume=volume)
    finally:
        driver.stop(signal.SIGKILL)
        os.system(f"umount -l {store_dir} 2>/dev/null")
