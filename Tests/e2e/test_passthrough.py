"""Files served by the kernel (FUSE passthrough) from the objects' own blob files.

A file of at least --blob-file-threshold (1 MiB by default) is a blob with a shared-memory file of
its own; read-only opens of it are answered with that file as the backing file, so reads and
mappings never reach the driver. Proven by stopping the driver (SIGSTOP) after the open: the bytes
still arrive. Without passthrough (--no-passthrough) the same read waits for the driver.
"""

import hashlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import vineyard

from conftest import Clients, Driver, cluster_parameters, csi_pb2, mount_capability, stage_and_publish, unpublish_and_unstage
from harness.restart import MiB, Rig
from test_node import node  # noqa: F401  (the fixture)
from test_snapshots import create_from, snapshot

Mode = csi_pb2.VolumeCapability.AccessMode

pytestmark = pytest.mark.skipif(
    not os.path.exists("/dev/fuse") or os.geteuid() != 0
    or tuple(int(n) for n in os.uname().release.split(".")[:2]) < (6, 9),
    reason="needs /dev/fuse, root and Linux 6.9+")

# A reader in its own process: opens and maps the file, says "ready", waits for a line on stdin,
# then reads the file with read(2) (no fstat, which could ask the driver for attributes) and
# through the mapping, and prints both digests; again for every "go", until another line.
READER = r"""
import hashlib, mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size = int(sys.argv[2])
mapping = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
print("ready", flush=True)
while sys.stdin.readline().strip() == "go":
    os.lseek(fd, 0, os.SEEK_SET)
    read = hashlib.sha256()
    while chunk := os.read(fd, 1 << 20):
        read.update(chunk)
    print(read.hexdigest(), hashlib.sha256(mapping).hexdigest(), flush=True)
"""

def digest(data):
    return hashlib.sha256(data).hexdigest()


def meminfo(*keys):
    values = {}
    with open("/proc/meminfo") as lines:
        for line in lines:
            name, value = line.split(":", 1)
            values[name] = int(value.split()[0]) * 1024
    return sum(values[key] for key in keys)


class Reader:
    def __init__(self, path, size):
        self.process = subprocess.Popen(
            [sys.executable, "-c", READER, str(path), str(size)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True)
        assert self.process.stdout.readline().strip() == "ready"

    def read(self, timeout=30):
        """Asks for the digests; `None` when they do not come within `timeout` seconds."""
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        import selectors
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return None
        return self.process.stdout.readline().split()

    def close(self):
        try:
            self.process.stdin.write("done\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def volume(request, workdir):
    """A published volume of 256 MiB; `request.param` adds driver flags."""
    extra = getattr(request, "param", [])
    driver = Driver(workdir, extra_args=["--mode", "all", *extra]).start()
    channel = driver.channel()
    clients = Clients(channel)
    create = csi_pb2.CreateVolumeRequest(
        name="pvc-passthrough", volume_capabilities=[mount_capability(Mode.SINGLE_NODE_MULTI_WRITER)],
        parameters=cluster_parameters())
    create.capacity_range.required_bytes = 256 * MiB
    volume = clients.controller.CreateVolume(create).volume
    staging, target = workdir / "staging", workdir / "pod" / "vineyard"
    capability = mount_capability(Mode.SINGLE_NODE_MULTI_WRITER)
    stage_and_publish(clients, volume, staging, target, capability)
    try:
        yield driver, clients, volume, staging, target
    finally:
        os.kill(driver.process.pid, signal.SIGCONT)
        unpublish_and_unstage(clients, volume, staging, target)
        channel.close()
        driver.stop(signal.SIGTERM)


def test_the_driver_says_how_files_are_served(volume):
    driver, clients, vol, staging, target = volume
    log = driver.read_log()
    assert "file passthrough: the kernel serves reads" in log
    assert '"files":"passthrough"' in log.replace(" ", "") or "files=passthrough" in log or "passthrough" in log
    stats = clients.node.NodeGetVolumeStats(
        csi_pb2.NodeGetVolumeStatsRequest(volume_id=vol.volume_id, volume_path=str(target)))
    assert "files: passthrough" in stats.volume_condition.message


def test_reads_and_mappings_do_not_reach_a_stopped_driver(volume):
    driver, _, _, _, target = volume
    data = np.random.default_rng(1).integers(0, 255, size=48 * MiB + 5, dtype=np.uint8).tobytes()
    (target / "frame.bin").write_bytes(data)
    reader = Reader(target / "frame.bin", len(data))
    os.kill(driver.process.pid, signal.SIGSTOP)
    try:
        digests = reader.read(timeout=30)
    finally:
        os.kill(driver.process.pid, signal.SIGCONT)
        reader.close()
    assert digests == [digest(data), digest(data)]


@pytest.mark.parametrize("volume", [["--no-passthrough"]], indirect=True)
def test_without_passthrough_reads_wait_for_the_driver(volume):
    driver, clients, vol, _, target = volume
    stats = clients.node.NodeGetVolumeStats(
        csi_pb2.NodeGetVolumeStatsRequest(volume_id=vol.volume_id, volume_path=str(target)))
    assert "files: driver" in stats.volume_condition.message
    data = os.urandom(8 * MiB)
    (target / "frame.bin").write_bytes(data)
    os.system(f"echo 1 > /proc/sys/vm/drop_caches")  # a reader must ask the driver for the bytes
    reader = Reader(target / "frame.bin", len(data))
    os.kill(driver.process.pid, signal.SIGSTOP)
    try:
        assert reader.read(timeout=3) is None, "a read came back while the driver was stopped"
    finally:
        os.kill(driver.process.pid, signal.SIGCONT)
    try:
        assert reader.process.stdout.readline().split() == [digest(data), digest(data)]
    finally:
        reader.close()


def test_two_mappings_share_the_stores_pages(volume):
    _, _, _, _, target = volume
    size = 192 * MiB
    data = np.random.default_rng(2).integers(0, 255, size=size, dtype=np.uint8).tobytes()
    (target / "big.bin").write_bytes(data)
    expected = [digest(data)] * 2
    del data
    growth = []
    # Other processes on the machine move these figures by tens of MiB: the least of three tries.
    for _ in range(3):
        readers = [Reader(target / "big.bin", size) for _ in range(2)]
        try:
            before = meminfo("Shmem", "Cached")
            for reader in readers:
                assert reader.read() == expected
            growth.append(meminfo("Shmem", "Cached") - before)
        finally:
            for reader in readers:
                reader.close()
    # Through the page cache the node would hold the file twice (store and page cache): +100 %.
    assert min(growth) < size // 10, f"Shmem+Cached grew by {min(growth) / size:.0%} of the file"


def test_quota_and_enospc_with_passthrough_readers(volume):
    _, _, _, _, target = volume
    first = os.urandom(100 * MiB)
    (target / "first.bin").write_bytes(first)
    reader = Reader(target / "first.bin", len(first))
    try:
        with pytest.raises(OSError) as failure:
            with open(target / "second.bin", "wb") as stream:
                for _ in range(20):
                    stream.write(os.urandom(10 * MiB))
        assert failure.value.errno == 28  # ENOSPC: 256 MiB quota
        assert not (target / "second.bin").exists(), "a half-written file became visible"
        # Replacing the open file: the reader keeps its version, new opens see the new one.
        (target / "first.bin").write_bytes(b"replaced" * (MiB // 4))
        assert reader.read() == [digest(first), digest(first)]
        assert (target / "first.bin").read_bytes() == b"replaced" * (MiB // 4)
    finally:
        reader.close()
    assert (target / "first.bin").read_bytes() == b"replaced" * (MiB // 4)


def test_writers_and_readers_of_one_passthrough_file(volume):
    """While a passthrough reader is open, writable opens share its backing file with direct I/O:
    writes go to the driver into a new version, never into the sealed object."""
    _, _, _, _, target = volume
    old = os.urandom(4 * MiB)
    (target / "f.bin").write_bytes(old)
    reader = Reader(target / "f.bin", len(old))
    try:
        with open(target / "f.bin", "r+b") as stream:
            stream.seek(MiB)
            stream.write(b"x" * 100)
        new = old[:MiB] + b"x" * 100 + old[MiB + 100:]
        assert (target / "f.bin").read_bytes() == new
        assert reader.read() == [digest(old), digest(old)]
    finally:
        reader.close()
    assert (target / "f.bin").read_bytes() == new


WRITER = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"a" * (3 << 20))  # past the blob-file threshold: the version has a file of its own
print("written", flush=True)
sys.stdin.readline()
os.write(fd, b"b" * (1 << 20))
os.close(fd)
print("closed", flush=True)
"""


def test_kill_9_with_passthrough_files_open_then_restart(workdir):
    """Readers keep reading through the kernel while no driver runs; a writer whose version has a
    file of its own goes on after the restart (the next driver adopts that file); blob files of
    versions nobody adopts are removed once the mounts are taken over."""
    r = Rig(workdir)
    try:
        target = r.publish_volume()
        data = os.urandom(64 * MiB)
        (target / "open.bin").write_bytes(data)
        reader = Reader(target / "open.bin", len(data))
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target / "written.bin")], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
        try:
            assert writer.stdout.readline().strip() == "written"
            r.driver.stop(signal.SIGKILL)
            assert reader.read() == [digest(data), digest(data)]  # served by the kernel meanwhile
            blobs = [path for path in (workdir / "shm").rglob("blobs") if path.is_dir()]
            assert len(blobs) == 1
            orphan = blobs[0] / "00000000deadbeef"  # a version no mount records
            orphan.write_bytes(b"x" * 8192)
            r.driver.start()
            assert reader.read() == [digest(data), digest(data)]
            writer.stdin.write("go\n")
            writer.stdin.flush()
            assert writer.stdout.readline().strip() == "closed"
            assert writer.wait(timeout=30) == 0
        finally:
            reader.close()
            if writer.poll() is None:
                writer.kill()
        assert (target / "written.bin").read_bytes() == b"a" * (3 << 20) + b"b" * (1 << 20)
        assert not orphan.exists(), "a blob file nobody adopted was kept"
        # The taken-over backing file was released with the reader's close: a writer can start
        # a new version and readers see it.
        (target / "open.bin").write_bytes(b"after" * MiB)
        assert (target / "open.bin").read_bytes() == b"after" * MiB
        second = Reader(target / "open.bin", 5 * MiB)
        try:
            assert second.read() == [digest(b"after" * MiB)] * 2
        finally:
            second.close()
        log = r.driver.read_log()
        assert "resumed staged volume" in log
    finally:
        r.close()


def test_vineyard_clients_get_and_put_objects_of_passthrough_files(volume):
    """A file's blob has a file of its own: the socket sends that file's descriptor (a key of its
    own per connection), and the client maps it; buffers the client creates stay in the arena."""
    _, _, _, _, target = volume
    data = os.urandom(5 * MiB + 3)
    (target / "v.bin").write_bytes(data)
    reader = Reader(target / "v.bin", len(data))
    client = vineyard.connect(str(target / "vineyard.sock"))
    try:
        assert bytes(client.get(name="v.bin")) == data
        assert bytes(client.get(name="v.bin")) == data  # mapped once, by its key
        (target / "v.bin").write_bytes(data[::-1])
        assert bytes(client.get(name="v.bin")) == data[::-1]
        assert reader.read() == [digest(data)] * 2
        array = np.random.default_rng(3).random(4 * MiB // 8)
        client.put(array, persist=True, name="array")
        assert np.array_equal(np.load(target / "array"), array)
        assert np.array_equal(client.get(name="array"), array)
    finally:
        client.close()
        reader.close()


def test_snapshots_and_clones_of_passthrough_files(node, driver):  # noqa: F811
    """A snapshot and a clone share the source's blob, file included: each mount registers that
    same file as its backing file, and writing in one volume never reaches another."""
    source = node.create("pvc-pt-source", 64 * MiB)
    node.stage(source)
    target = node.publish(source, "source")
    data = os.urandom(8 * MiB + 1)
    (target / "model.bin").write_bytes(data)
    source_reader = Reader(target / "model.bin", len(data))
    readers = [source_reader]
    try:
        snap = snapshot(node, source, "snap-pt")
        clone = create_from(node, "pvc-pt-clone", 64 * MiB, volume_id=source.volume_id)
        restored = create_from(node, "pvc-pt-restored", 64 * MiB, snapshot_id=snap.snapshot_id)
        views = []
        for volume, name in ((clone, "clone"), (restored, "restored")):
            node.stage(volume)
            views.append(node.publish(volume, name))
        readers += [Reader(view / "model.bin", len(data)) for view in views]
        os.kill(driver.process.pid, signal.SIGSTOP)
        try:
            served = [reader.read(timeout=30) for reader in readers]
        finally:
            os.kill(driver.process.pid, signal.SIGCONT)
        assert served == [[digest(data)] * 2] * 3

        (views[0] / "model.bin").write_bytes(b"clone")
        assert (target / "model.bin").read_bytes() == data
        assert (views[1] / "model.bin").read_bytes() == data
        assert [reader.read() for reader in readers] == [[digest(data)] * 2] * 3
    finally:
        for reader in readers:
            reader.close()
