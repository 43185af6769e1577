"""Plain file I/O on a published volume, the same assertions on both backends.

Pipelines use a volume like any directory: numpy/pandas files, overwrites, appends, truncation,
renames, directories, and a quota that says ENOSPC. Every test here runs once on a volume of the
embedded store and once on a volume of a real vineyardd (cluster mode, with real etcd), so the
two backends are held to one behaviour.

Everything started is killed by pid and every mount lazily detached, even when a test fails.
"""

import errno
import mmap
import os
import signal
import uuid

import numpy as np
import pandas as pd
import pytest

from conftest import Clients, Driver, cluster_parameters, csi_pb2, mount_capability, stage_and_publish, unpublish_and_unstage
from harness.cluster import ETCD, Etcd, Vineyardd, lazy_unmount_all_under

MiB = 1 << 20
QUOTA = 64 * MiB

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse") or os.geteuid() != 0, reason="needs /dev/fuse and root")


class PublishedVolume:
    """A driver, one volume of QUOTA bytes, staged and published at `target`."""

    def __init__(self, workdir, backend):
        self.workdir, self.backend = workdir, backend
        self.etcd = self.vineyardd = self.driver = self.volume = None

    def start(self):
        extra = ["--mode", "all"]
        if self.backend == "vineyardd":
            self.etcd = Etcd(self.workdir).start()
            self.vineyardd = Vineyardd(self.workdir, self.etcd, f"/files-{uuid.uuid4().hex[:8]}", "a").start()
            extra += ["--backend", "vineyardd", "--vineyard-socket-root", str(self.vineyardd.root)]
        self.driver = Driver(self.workdir / "driver", extra_args=extra)
        self.driver.workdir.mkdir()
        self.driver.start()
        self.channel = self.driver.channel()
        self.clients = Clients(self.channel)
        request = csi_pb2.CreateVolumeRequest(
            name=f"pvc-files-{self.backend}", volume_capabilities=[mount_capability()], parameters=cluster_parameters(),
            capacity_range=csi_pb2.CapacityRange(required_bytes=QUOTA))
        self.volume = self.clients.controller.CreateVolume(request).volume
        assert self.volume.volume_context["k8s.v6d.io/vineyard/backend"] == self.backend
        self.staging, self.target = self.workdir / "staging", self.workdir / "target"
        stage_and_publish(self.clients, self.volume, self.staging, self.target)
        return self

    def stop(self):
        try:
            if self.volume is not None:
                try:
                    unpublish_and_unstage(self.clients, self.volume, self.staging, self.target)
                except Exception:
                    pass
            if self.driver is not None:
                self.channel.close()
                self.driver.stop(signal.SIGKILL)
        finally:
            lazy_unmount_all_under(self.workdir)
            if self.vineyardd is not None:
                self.vineyardd.kill()
            if self.etcd is not None:
                self.etcd.stop()


@pytest.fixture(scope="module", params=["embedded", "vineyardd"])
def volume(request, tmp_path_factory):
    if request.param == "vineyardd" and ETCD is None:
        pytest.skip("etcd not installed (Debian package etcd-server; scripts/install-deps.sh)")
    published = PublishedVolume(tmp_path_factory.mktemp(f"files-{request.param}"), request.param)
    try:
        yield published.start()
    finally:
        published.stop()


@pytest.fixture
def directory(volume):
    """A fresh directory in the volume for one test, removed afterwards."""
    path = volume.target / f"t-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    yield path
    for root, dirs, files in os.walk(path, topdown=False):
        for name in files:
            os.unlink(os.path.join(root, name))
        for name in dirs:
            os.rmdir(os.path.join(root, name))
    os.rmdir(path)


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, MiB + 3, 9 * MiB])
def test_bytes_written_are_bytes_read(directory, size):
    payload = os.urandom(size)
    (directory / "f.bin").write_bytes(payload)
    assert (directory / "f.bin").stat().st_size == size
    assert (directory / "f.bin").read_bytes() == payload


def test_overwrite_in_the_middle_append_and_holes(directory):
    path = directory / "f.bin"
    base = bytearray(os.urandom(3 * MiB))
    path.write_bytes(base)
    with open(path, "r+b") as handle:
        handle.seek(MiB + 5)
        handle.write(b"x" * 100)
    base[MiB + 5:MiB + 105] = b"x" * 100
    assert path.read_bytes() == base
    with open(path, "ab") as handle:
        handle.write(b"tail")
    base += b"tail"
    assert path.read_bytes() == base
    with open(path, "r+b") as handle:  # past the end: a hole of zeros
        handle.seek(len(base) + 10_000)
        handle.write(b"end")
    base += bytes(10_000) + b"end"
    assert path.read_bytes() == base


def test_modes_owners_times_and_links_stick_and_leave_the_bytes(directory):
    path = directory / "f.bin"
    payload = os.urandom(MiB + 7)
    path.write_bytes(payload)
    os.chmod(path, 0o640)
    os.chown(path, 1234, 5678)
    os.utime(path, ns=(1_000_000_000_123, 2_000_000_000_456))
    os.chmod(directory, 0o750)
    status = path.stat()
    assert (status.st_mode & 0o7777, status.st_uid, status.st_gid) == (0o640, 1234, 5678)
    assert status.st_mtime_ns == 2_000_000_000_456
    assert directory.stat().st_mode & 0o7777 == 0o750
    assert path.read_bytes() == payload
    os.rename(path, directory / "moved.bin")
    assert (directory / "moved.bin").stat().st_mode & 0o7777 == 0o640
    assert (directory / "moved.bin").read_bytes() == payload
    os.symlink("moved.bin", directory / "link")
    assert os.readlink(directory / "link") == "moved.bin"
    assert (directory / "link").read_bytes() == payload


def test_truncate_shrinks_and_extends_with_zeros(directory):
    path = directory / "f.bin"
    payload = os.urandom(2 * MiB)
    path.write_bytes(payload)
    os.truncate(path, 1000)
    assert path.read_bytes() == payload[:1000]
    os.truncate(path, 5000)
    assert path.read_bytes() == payload[:1000] + bytes(4000)
    with open(path, "r+b") as handle:
        handle.truncate(10)
        handle.seek(0)
        assert handle.read() == payload[:10]
    with open(path, "wb") as handle:  # O_TRUNC
        handle.write(b"new")
    assert path.read_bytes() == b"new"


def test_rename_replaces_atomically_and_directories_behave(directory):
    (directory / "a").write_bytes(b"first")
    (directory / "b").write_bytes(b"second")
    os.rename(directory / "a", directory / "b")
    assert not (directory / "a").exists() and (directory / "b").read_bytes() == b"first"
    (directory / "sub" / "deeper").mkdir(parents=True)
    (directory / "sub" / "deeper" / "f").write_bytes(b"in a directory")
    os.rename(directory / "sub", directory / "moved")
    assert (directory / "moved" / "deeper" / "f").read_bytes() == b"in a directory"
    assert sorted(os.listdir(directory)) == ["b", "moved"]
    with pytest.raises(OSError) as failure:
        os.rmdir(directory / "moved")
    assert failure.value.errno == errno.ENOTEMPTY
    with pytest.raises(FileExistsError):
        os.mkdir(directory / "moved")
    with pytest.raises(FileExistsError):
        os.open(directory / "b", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    os.unlink(directory / "b")
    with pytest.raises(FileNotFoundError):
        (directory / "b").read_bytes()


def test_numpy_and_pandas_files(directory):
    array = np.random.default_rng(7).random((512, 300))
    np.save(directory / "a.npy", array)
    assert np.array_equal(np.load(directory / "a.npy"), array)
    mapped = np.load(directory / "a.npy", mmap_mode="r")
    assert np.array_equal(mapped, array)
    del mapped
    frame = pd.DataFrame({"x": np.arange(200_000), "y": np.linspace(0, 1, 200_000)})
    frame.to_pickle(directory / "frame.pkl")
    pd.testing.assert_frame_equal(pd.read_pickle(directory / "frame.pkl"), frame)


def test_shared_mapping_reads_what_was_written(directory):
    payload = os.urandom(3 * MiB)
    (directory / "m.bin").write_bytes(payload)
    with open(directory / "m.bin", "rb") as handle, mmap.mmap(handle.fileno(), 0, prot=mmap.PROT_READ) as view:
        assert view[:] == payload


def test_quota_says_enospc_and_loses_nothing(volume, directory):
    stats = os.statvfs(volume.target)
    assert stats.f_blocks * stats.f_frsize == QUOTA
    kept = os.urandom(MiB)
    (directory / "kept.bin").write_bytes(kept)
    with pytest.raises(OSError) as failure:
        with open(directory / "too-big.bin", "wb") as handle:
            for _ in range(QUOTA // MiB + 1):
                handle.write(os.urandom(MiB))
                # statfs while the file is being written counts it too (on vineyardd it counts
                # the volume's names again) and never makes room for more.
                os.statvfs(volume.target)
    assert failure.value.errno in (errno.ENOSPC, errno.EDQUOT)
    (directory / "too-big.bin").unlink(missing_ok=True)
    assert (directory / "kept.bin").read_bytes() == kept
    (directory / "after.bin").write_bytes(b"room again")
    assert (directory / "after.bin").read_bytes() == b"room again"
