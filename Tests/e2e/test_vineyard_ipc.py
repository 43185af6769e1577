"""The vineyard socket of every volume, driven by the unmodified vineyard Python client.

Every test that speaks vineyard runs twice: against a volume's `vineyard.sock` served by the
driver ("ours") and against the real `vineyardd` shipped with the `vineyard` wheel, started
in local mode. The second run proves the assertions describe vineyard's behaviour rather than
ours. Tests about the file-system view, isolation between volumes and resource release are
about this driver only.

Fixtures are per module (one driver with two published volumes, one vineyardd); each test
uses names of its own. Teardown unpublishes and unstages through CSI, lazily unmounts anything
left under the work directory, and kills the processes it started by PID.
"""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc
import numpy as np
import pandas as pd
import pytest
import vineyard

from conftest import Driver, cluster_parameters, csi_pb2, mount_capability

MiB = 1 << 20
Mode = csi_pb2.VolumeCapability.AccessMode
VINEYARDD = Path(vineyard.__file__).parent / "bdist" / "vineyardd"

pytestmark = pytest.mark.skipif(
    not os.path.exists("/dev/fuse") or os.geteuid() != 0, reason="needs /dev/fuse and root to mount")


def unique(prefix="n"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def lazy_unmount_all_under(path):
    with open("/proc/self/mountinfo") as table:
        points = [line.split()[4] for line in table]
    for point in sorted((p for p in points if p == str(path) or p.startswith(str(path) + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


class Volume:
    def __init__(self, volume_id, staging, target):
        self.volume_id = volume_id
        self.staging = staging
        self.target = target

    @property
    def socket(self):
        return str(self.target / "vineyard.sock")


class OurDriver:
    """A vineyard-csi driver with two volumes of one vineyard cluster (one store), each staged
    and published the way kubelet does it."""

    def __init__(self):
        # Short: a Unix socket path must fit in 107 bytes.
        self.workdir = Path(tempfile.mkdtemp(prefix="vyipc-", dir="/tmp"))
        self.driver = Driver(self.workdir)
        self.volumes = []

    def start(self):
        self.driver.start()
        self.channel = self.driver.channel()
        from conftest import Clients
        self.clients = Clients(self.channel)
        for name in ("vol-a", "vol-b"):
            request = csi_pb2.CreateVolumeRequest(
                name=name, volume_capabilities=[mount_capability(Mode.SINGLE_NODE_MULTI_WRITER)],
                parameters=cluster_parameters())
            request.capacity_range.required_bytes = 2048 * MiB
            volume = self.clients.controller.CreateVolume(request).volume
            staging = self.workdir / "stg" / name
            self.clients.node.NodeStageVolume(csi_pb2.NodeStageVolumeRequest(
                volume_id=volume.volume_id, staging_target_path=str(staging),
                volume_capability=mount_capability(Mode.SINGLE_NODE_MULTI_WRITER),
                volume_context=volume.volume_context))
            target = self.workdir / "pods" / name / "vineyard"
            self.volumes.append(Volume(volume.volume_id, staging, target))
            self.clients.node.NodePublishVolume(csi_pb2.NodePublishVolumeRequest(
                volume_id=volume.volume_id, staging_target_path=str(staging), target_path=str(target),
                volume_capability=mount_capability(Mode.SINGLE_NODE_MULTI_WRITER),
                volume_context=volume.volume_context))
        return self

    def stop(self):
        try:
            for volume in reversed(self.volumes):
                for call, request in (
                    (self.clients.node.NodeUnpublishVolume,
                     csi_pb2.NodeUnpublishVolumeRequest(volume_id=volume.volume_id, target_path=str(volume.target))),
                    (self.clients.node.NodeUnstageVolume,
                     csi_pb2.NodeUnstageVolumeRequest(volume_id=volume.volume_id, staging_target_path=str(volume.staging))),
                ):
                    try:
                        call(request, timeout=30)
                    except grpc.RpcError:
                        pass
            self.channel.close()
        finally:
            lazy_unmount_all_under(self.workdir)
            self.driver.stop(signal.SIGKILL)
            lazy_unmount_all_under(self.workdir)
            shutil.rmtree(self.workdir, ignore_errors=True)


class RealVineyardd:
    """vineyardd from the vineyard wheel, with local metadata and no RPC (no etcd needed)."""

    def __init__(self):
        self.workdir = Path(tempfile.mkdtemp(prefix="vyd-", dir="/tmp"))
        self.socket = str(self.workdir / "vineyard.sock")
        self.process = None

    def start(self):
        self.log = open(self.workdir / "vineyardd.log", "wb")
        self.process = subprocess.Popen(
            [str(VINEYARDD), f"--socket={self.socket}", "--meta=local", "--rpc=false", "--size=4Gi"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"vineyardd exited: {(self.workdir / 'vineyardd.log').read_text(errors='replace')}")
            if os.path.exists(self.socket):
                try:
                    vineyard.connect(self.socket).close()
                    return self
                except Exception:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError("vineyardd did not start")
            time.sleep(0.05)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def our_driver():
    driver = OurDriver()
    try:
        driver.start()
        yield driver
    finally:
        driver.stop()


@pytest.fixture(scope="module")
def real_vineyardd():
    if not VINEYARDD.exists():
        pytest.skip(f"vineyardd not found at {VINEYARDD}")
    server = RealVineyardd()
    try:
        server.start()
        yield server
    finally:
        server.stop()


class Backend:
    def __init__(self, kind, socket_path, root):
        self.kind = kind
        self.socket = socket_path
        self.root = Path(root)  # the directory holding vineyard.sock (a volume's mount for ours)

    def connect(self):
        return vineyard.connect(self.socket)


@pytest.fixture(params=["ours", "vineyardd"])
def backend(request):
    if request.param == "ours":
        driver = request.getfixturevalue("our_driver")
        volume = driver.volumes[0]
        return Backend("ours", volume.socket, volume.target)
    server = request.getfixturevalue("real_vineyardd")
    return Backend("vineyardd", server.socket, server.workdir)


@pytest.fixture
def client(backend):
    c = backend.connect()
    try:
        yield c
    finally:
        c.close()


# MARK: - A raw protocol client, for what the Python client never sends


class RawClient:
    def __init__(self, path, register=True):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(path)
        if register:
            reply = self.call({"type": "register_request", "version": "0.24.2", "store_type": 1})
            assert reply["type"] == "register_reply"

    def send_raw(self, data):
        self.sock.sendall(data)

    def receive(self):
        header = self._exactly(8)
        if header is None:
            return None
        (length,) = struct.unpack("<Q", header)
        return json.loads(self._exactly(length))

    def _exactly(self, count):
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                return None if not data else data
            data += chunk
        return data

    def call(self, message):
        body = json.dumps(message).encode()
        self.send_raw(struct.pack("<Q", len(body)) + body)
        return self.receive()

    def receive_fd(self):
        _, fds, _, _ = socket.recv_fds(self.sock, 1, 1)
        assert len(fds) == 1
        return fds[0]

    def close(self):
        self.sock.close()


def memory_usage(socket_path):
    c = vineyard.connect(socket_path)
    try:
        return c.status.memory_usage
    finally:
        c.close()


# MARK: - Behaviour shared with vineyardd

DTYPES = [np.float64, np.float32, np.int64, np.int32, np.int16, np.int8, np.uint8, np.uint64, np.bool_, np.complex128]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_numpy_round_trip_by_name_and_id(client, dtype):
    rng = np.random.default_rng(7)
    for shape in [(7,), (3, 4), (2, 3, 5)]:
        array = (rng.random(shape) * 100).astype(dtype)
        name = unique("arr")
        object_id = client.put(array, persist=True, name=name)
        by_name = client.get(name=name)
        by_id = client.get(object_id)
        for value in (by_name, by_id):
            assert value.dtype == array.dtype and value.shape == array.shape
            assert np.array_equal(value, array)
        assert client.get_name(name) == object_id


def test_numpy_special_layouts(client):
    fortran = np.asfortranarray(np.arange(12, dtype=np.int64).reshape(3, 4))
    back = client.get(client.put(fortran))
    assert np.array_equal(back, fortran)
    empty = np.zeros((0,), dtype=np.float64)
    back = client.get(client.put(empty))
    assert back.shape == (0,) and back.dtype == np.float64
    scalar_like = np.array([3.25])
    assert client.get(client.put(scalar_like))[0] == 3.25


def test_get_is_zero_copy(client):
    array = np.arange(1 << 20, dtype=np.int64)
    value = client.get(client.put(array))
    assert np.array_equal(value, array)
    assert not value.flags["OWNDATA"], "the array must be a view of the shared mapping"
    address = value.__array_interface__["data"][0]
    with open("/proc/self/maps") as maps:
        for line in maps:
            span, perms = line.split()[:2]
            low, high = (int(x, 16) for x in span.split("-"))
            if low <= address < high:
                assert "s" in perms, f"the array lies in a private mapping: {line}"
                return
    pytest.fail("the array is not in any mapping")


def test_dataframes(client):
    frames = [
        pd.DataFrame({"a": np.arange(5, dtype=np.int64), "b": np.linspace(0, 1, 5)}),
        pd.DataFrame({"x": np.float32([1.5, 2.5]), "y": np.float32([3.5, 4.5]), "z": [True, False]}),
        pd.DataFrame({"v": [10, 20, 30]}, index=pd.Index([7, 8, 9], name="k")),
    ]
    for frame in frames:
        name = unique("df")
        object_id = client.put(frame, persist=True, name=name)
        for back in (client.get(name=name), client.get(object_id)):
            pd.testing.assert_frame_equal(back, frame, check_index_type=False)


def test_bytes_and_python_values(client):
    blob_id = client.put(b"hello vineyard")
    assert bytes(client.get(blob_id)) == b"hello vineyard"
    assert client.exists(blob_id)
    for value, expected in [(42, 42), (3.5, 3.5), ("text", "text"), ([1, 2, 3], (1, 2, 3)),
                            ({"k": 1}, {"k": 1}), (None, None)]:
        assert client.get(client.put(value)) == expected
    # vineyard refuses to persist (and so to name) a bare blob.
    with pytest.raises(Exception):
        client.put(b"named bytes", persist=True, name=unique("bytes"))


def test_names_exists_delete(client):
    name = unique("nm")
    object_id = client.put(np.arange(3), persist=True, name=name)
    assert client.exists(object_id)
    assert name in client.list_names(name)
    assert client.list_names(name + "*") == {name: object_id}
    assert client.list_names(name[:-2] + ".*", regex=True) == {name: object_id}
    other = unique("alias")
    client.put_name(object_id, other)
    assert client.get_name(other) == object_id
    client.drop_name(other)
    with pytest.raises(vineyard.ObjectNotExistsException):
        client.get_name(other)
    client.drop_name(other)  # dropping a missing name is fine
    meta = client.get_meta(object_id)
    assert meta.typename.startswith("vineyard::Tensor")
    client.delete(object_id)
    assert not client.exists(object_id)
    with pytest.raises(vineyard.ObjectNotExistsException):
        client.get(object_id)


def test_missing_names_and_objects(client):
    with pytest.raises(vineyard.ObjectNotExistsException):
        client.get(name=unique("missing"))
    with pytest.raises(vineyard.ObjectNotExistsException):
        client.get(vineyard.ObjectID(0x1234))


def test_list_objects_and_status(client):
    ids = {client.put(np.full(4, i, dtype=np.float32)) for i in range(3)}
    listed = {meta.id for meta in client.list_metadatas("vineyard::Tensor<float>", limit=100000)}
    assert ids <= listed
    assert client.list_metadatas("no::such::type*") == []
    status = client.status
    assert status.instance_id == client.instance_id
    assert status.memory_limit > 0 and status.memory_usage > 0 and status.ipc_connections >= 1


def test_deleting_what_a_connection_read_frees_it(client):
    # The Python client never sends release_request: a put/get/delete loop on one connection
    # must not keep every object it read until it disconnects.
    base = client.status.memory_usage
    for round in range(4):
        object_id = client.put(np.full(8 * MiB, round, dtype=np.int64))  # 64 MiB
        assert client.get(object_id)[-1] == round
        client.delete(object_id)
    assert client.status.memory_usage < base + 64 * MiB


def test_csi_write_and_read(backend):
    path = str(backend.root / unique("x_train"))
    frame = pd.DataFrame({"f": np.arange(4.0), "g": np.arange(4)})
    vineyard.csi.write(frame, path)
    pd.testing.assert_frame_equal(vineyard.csi.read(path), frame)
    array = np.arange(10, dtype=np.int32)
    vineyard.csi.write(array, path + "-array")
    assert np.array_equal(vineyard.csi.read(path + "-array"), array)


def test_protocol_errors_keep_the_connection(backend):
    raw = RawClient(backend.socket, register=False)
    try:
        reply = raw.call({"type": "get_name_request", "name": "x", "wait": False})
        assert reply["code"] == 1 and "not registered" in reply["message"]
        assert raw.call({"type": "register_request", "version": "0.24.2", "store_type": 1})["type"] == "register_reply"
        raw.send_raw(struct.pack("<Q", 9) + b"{not json")
        assert raw.receive()["code"] == 1
        assert raw.call({"type": "no_such_request"}) == {
            "code": 1, "message": "Got unexpected command: no_such_request"}
        assert raw.call({"type": "exists_request", "id": 123}) == {"exists": False, "type": "exists_reply"}
        assert raw.call({"type": "get_data_request", "id": [123], "sync_remote": True, "wait": False}) == {
            "content": None, "type": "get_data_reply"}
        reply = raw.call({"type": "persist_request", "id": (1 << 63) | 5})
        assert reply["code"] == 7
    finally:
        raw.close()


def test_buffers_and_descriptor_passing(backend):
    raw = RawClient(backend.socket)
    try:
        created = raw.call({"type": "create_buffer_request", "size": 4096})
        assert created["type"] == "create_buffer_reply" and created["created"]["data_size"] == 4096
        fd = raw.receive_fd()  # the store's memory, sent once per connection
        payload = created["created"]
        import mmap
        with mmap.mmap(fd, payload["map_size"] - 8, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as memory:
            memory[payload["data_offset"]:payload["data_offset"] + 5] = b"abcde"
        os.close(fd)
        assert raw.call({"type": "seal_request", "object_id": created["id"]}) == {"type": "seal_reply"}
        got = raw.call({"type": "get_buffers_request", "num": 1, "0": created["id"], "unsafe": False})
        assert got["num"] == 1 and got["fds"] == []  # already sent on this connection
        assert got["payloads"][0]["data_offset"] == payload["data_offset"]
        empty = raw.call({"type": "create_buffer_request", "size": 0})
        assert empty["id"] == 1 << 63 and empty["fd"] == -1
        reply = raw.call({"type": "create_buffer_request", "size": 1 << 50})
        assert reply["code"] == 41
    finally:
        raw.close()


# MARK: - The volume: file-system view, isolation, resources (ours only)


@pytest.fixture
def volume_a(our_driver):
    return our_driver.volumes[0]


@pytest.fixture
def volume_b(our_driver):
    return our_driver.volumes[1]


def test_socket_is_in_every_mount(our_driver):
    for volume in our_driver.volumes:
        for root in (volume.staging, volume.target):
            sock = root / "vineyard.sock"
            assert sock.is_socket()
            c = vineyard.connect(str(sock))
            c.close()
        assert "vineyard.sock" in os.listdir(volume.target)
        with pytest.raises(OSError):
            os.unlink(volume.target / "vineyard.sock")


def test_objects_appear_as_npy_files(volume_a):
    c = vineyard.connect(volume_a.socket)
    try:
        array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
        name = unique("tensor")
        c.put(array, persist=True, name=name)
        path = volume_a.target / name
        assert path.is_file()
        loaded = np.load(path)
        assert loaded.dtype == array.dtype and np.array_equal(loaded, array)
        assert path.stat().st_size == len(path.read_bytes())

        big = np.random.default_rng(1).random(3 * MiB // 8)
        c.put(big, persist=True, name=name + "-big")
        assert np.array_equal(np.load(volume_a.target / (name + "-big")), big)

        frame = pd.DataFrame({"a": np.arange(1000, dtype=np.int64), "b": np.linspace(0, 1, 1000), "c": np.ones(1000, np.int8)})
        c.put(frame, persist=True, name="frames/" + name)
        records = np.load(volume_a.target / "frames" / name)
        pd.testing.assert_frame_equal(pd.DataFrame(records), frame)

        vineyard.csi.write(np.arange(5), str(volume_a.target / "nested" / (name + "-csi")))
        assert np.array_equal(np.load(volume_a.target / "nested" / (name + "-csi")), np.arange(5))
        assert c.get(name="nested/" + name + "-csi").tolist() == list(range(5))
    finally:
        c.close()


def test_files_written_through_fuse_are_blobs(volume_a):
    payload = os.urandom(3 * MiB + 17)
    name = unique("file") + ".bin"
    (volume_a.target / "dir").mkdir(exist_ok=True)
    (volume_a.target / "dir" / name).write_bytes(payload)
    c = vineyard.connect(volume_a.socket)
    try:
        value = c.get(name="dir/" + name)
        assert bytes(value) == payload
        assert name not in c.list_names("*")  # directories and files: only full paths match
        assert ("dir/" + name) in c.list_names("dir/*")
        # Naming an object over a file replaces the file.
        c.put(np.arange(3), persist=True, name="dir/" + name)
        assert np.array_equal(np.load(volume_a.target / "dir" / name), np.arange(3))
    finally:
        c.close()


def test_removing_an_object_file_frees_its_members(volume_a):
    """A frame put through the socket is a tree of objects; `rm` of its file (and replacing it)
    frees every blob of the tree, as vineyard's deep delete does, not just the root."""
    frame = pd.DataFrame({f"c{i}": np.arange(2 * MiB // 8, dtype=np.int64) + i for i in range(4)})
    name = unique("frame")
    free_before = os.statvfs(volume_a.target).f_bavail
    # One connection throughout: vineyard.connect shares a client per socket, so closing a
    # second one would close this one too.
    c = vineyard.connect(volume_a.socket)
    try:
        before = c.status.memory_usage
        c.put(frame, persist=True, name=name)
        assert c.status.memory_usage >= before + 8 * MiB
        os.unlink(volume_a.target / name)
        assert c.status.memory_usage == before
        assert os.statvfs(volume_a.target).f_bavail == free_before
        # Replacing a frame's file by a plain file frees the frame too (the small file takes at
        # most one chunk of its own: a page in the embedded store, 1 MiB in vineyardd).
        c.put(frame, persist=True, name=name)
        (volume_a.target / name).write_bytes(b"plain")
        assert c.status.memory_usage <= before + MiB
    finally:
        c.close()
        (volume_a.target / name).unlink(missing_ok=True)


def test_volumes_are_isolated(volume_a, volume_b):
    a = vineyard.connect(volume_a.socket)
    b = vineyard.connect(volume_b.socket)
    try:
        name = unique("private")
        object_id = a.put(np.arange(8), persist=True, name=name)
        blob_id = a.put(b"secret")
        assert a.get(name=name).tolist() == list(range(8))
        with pytest.raises(vineyard.ObjectNotExistsException):
            b.get(name=name)
        with pytest.raises(vineyard.ObjectNotExistsException):
            b.get(object_id)
        with pytest.raises(vineyard.ObjectNotExistsException):
            b.get(blob_id)
        assert not b.exists(object_id)
        assert name not in b.list_names("*", limit=100000)
        assert object_id not in {m.id for m in b.list_metadatas("*", limit=100000)}
        b.delete(object_id)  # not b's: nothing happens
        assert a.exists(object_id)
        assert not (volume_b.target / name).exists() and (volume_a.target / name).exists()
        with pytest.raises(Exception):
            b.put_name(object_id, "stolen")
    finally:
        a.close()
        b.close()


READER_SCRIPT = """
import sys, numpy as np, vineyard
client = vineyard.connect(sys.argv[1])
held = client.get(vineyard.ObjectID(sys.argv[2]))
expected = np.arange(held.size, dtype=np.int64)
print("holding", flush=True)
sys.stdin.readline()
print("intact" if np.array_equal(held, expected) else "reused", flush=True)
"""


def test_unsealed_buffers_die_with_their_connection(volume_a):
    base = memory_usage(volume_a.socket)
    # Unsealed buffers die with their connection.
    raw = RawClient(volume_a.socket)
    created = raw.call({"type": "create_buffer_request", "size": 64 * MiB})
    assert created["type"] == "create_buffer_reply"
    os.close(raw.receive_fd())
    assert memory_usage(volume_a.socket) >= base + 64 * MiB
    raw.close()
    deadline = time.monotonic() + 10
    while memory_usage(volume_a.socket) > base and time.monotonic() < deadline:
        time.sleep(0.05)
    assert memory_usage(volume_a.socket) <= base


def test_readers_keep_deleted_memory_until_they_disconnect(volume_a):
    # A reader's mapping stays valid after another client deletes the object; the memory
    # returns when the reader disconnects. The reader is another process, as pods are (clients
    # in one process share vineyard's client-side buffer cache and ask for a blob only once).
    base = memory_usage(volume_a.socket)
    writer = vineyard.connect(volume_a.socket)
    big = np.arange(8 * MiB, dtype=np.int64)
    object_id = writer.put(big)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER_SCRIPT, str(volume_a.socket), repr(object_id)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "holding"
        writer.delete(object_id)
        assert not writer.exists(object_id)
        filler = writer.put(np.full(8 * MiB, -1, dtype=np.int64))
        reader.stdin.write("check\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "intact", "deleted memory was reused under a reader"
        writer.delete(filler)
    finally:
        reader.stdin.close()
        reader.wait(timeout=30)
    writer.close()
    deadline = time.monotonic() + 10
    while memory_usage(volume_a.socket) > base and time.monotonic() < deadline:
        time.sleep(0.05)
    assert memory_usage(volume_a.socket) <= base


def test_hostile_clients_do_not_hurt_the_server(volume_a):
    # An absurd length prefix: the connection is dropped.
    raw = RawClient(volume_a.socket)
    raw.send_raw(struct.pack("<Q", 1 << 40))
    reply = raw.receive()
    assert reply is None or reply["code"] == 1
    raw.close()
    # A client that leaves mid-frame, and one that leaves mid-request.
    raw = RawClient(volume_a.socket)
    raw.send_raw(struct.pack("<Q", 100) + b'{"type":')
    raw.close()
    raw = RawClient(volume_a.socket)
    raw.send_raw(struct.pack("<Q", 2))
    raw.close()
    # Wrong field types get errors, not crashes.
    raw = RawClient(volume_a.socket)
    for message in [
        {"type": "create_buffer_request", "size": -1},
        {"type": "create_buffer_request", "size": "big"},
        {"type": "get_buffers_request", "num": 1 << 40},
        {"type": "create_data_request", "content": {"typename": 5}},
        {"type": "create_data_request", "content": {"typename": "x"}},
        {"type": "put_name_request", "name": "", "object_id": 1},
        {"type": "list_name_request", "pattern": "(", "regex": True, "limit": 5},
        [1, 2, 3],
    ]:
        reply = raw.call(message)
        assert reply["code"] != 0, message
    raw.close()
    # Many connections at once, then all gone.
    clients = [vineyard.connect(volume_a.socket) for _ in range(50)]
    for c in clients:
        c.close()
    c = vineyard.connect(volume_a.socket)
    assert c.get(c.put(np.arange(3))).tolist() == [0, 1, 2]
    c.close()


def test_read_only_publication_refuses_changes(our_driver, volume_b):
    """A pod that mounts the volume read-only may read through the socket but not change it.
    The pod is a process in a mount namespace of its own that sees only the read-only target."""
    c = vineyard.connect(volume_b.socket)
    name = unique("shared")
    c.put(np.arange(4), persist=True, name=name)
    c.close()
    target = our_driver.workdir / "pods" / "ro-b" / "vineyard"
    node = our_driver.clients.node
    node.NodePublishVolume(csi_pb2.NodePublishVolumeRequest(
        volume_id=volume_b.volume_id, staging_target_path=str(volume_b.staging), target_path=str(target),
        readonly=True, volume_capability=mount_capability(Mode.SINGLE_NODE_MULTI_WRITER)))
    try:
        script = (
            "import vineyard, numpy as np, sys\n"
            f"c = vineyard.connect({str(target / 'vineyard.sock')!r})\n"
            f"assert c.get(name={name!r}).tolist() == [0, 1, 2, 3]\n"
            "try:\n"
            "    c.put(np.arange(3), persist=True, name='nope')\n"
            "except Exception as e:\n"
            "    print('refused:', e)\n"
            "    sys.exit(0)\n"
            "sys.exit('the read-only client could write')\n")
        hidden = [str(volume_b.staging), str(volume_b.target)] + [str(v.staging) for v in our_driver.volumes] + [
            str(v.target) for v in our_driver.volumes]
        unmounts = "; ".join(f"umount -l {p} 2>/dev/null" for p in sorted(set(hidden), key=len, reverse=True))
        result = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             f"{unmounts}; exec {os.sys.executable} -c \"$0\"", script],
            capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "read-only" in result.stdout
    finally:
        node.NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(volume_id=volume_b.volume_id, target_path=str(target)))
    c = vineyard.connect(volume_b.socket)
    with pytest.raises(vineyard.ObjectNotExistsException):
        c.get(name="nope")
    c.close()
