"""Node service over the real socket with real FUSE mounts and real bind mounts.

Every test unmounts what it mounted (lazily, innermost first) even when it fails, and the
driver fixture kills the driver by PID, so a failed run leaves no mount behind.
"""

import errno
import hashlib
import os
import signal
import subprocess
import sys
import time

import grpc
import pytest

from conftest import (
    Clients, Driver, cluster_parameters, csi_pb2, expect_code, mount_capability,
    stage_and_publish, unpublish_and_unstage)
from harness.mounts import mounts_under  # noqa: F401  (test_restart and test_snapshots import it from here)

MiB = 1 << 20
Mode = csi_pb2.VolumeCapability.AccessMode
# What the driver puts at the root of every volume, on either backend (test_cluster.py reruns
# this suite on the vineyardd backend).
ROOT_ENTRIES = ["vineyard-config.yaml", "vineyard.sock"]

pytestmark = pytest.mark.skipif(
    not os.path.exists("/dev/fuse") or os.geteuid() != 0, reason="needs /dev/fuse and root to mount")


@pytest.fixture
def node(driver, workdir):
    """A Clients object plus helpers that track and undo every stage/publish."""
    channel = driver.channel()
    clients = Clients(channel)
    published, staged = [], []

    def create(name, size=64 * MiB, parameters=None):
        request = csi_pb2.CreateVolumeRequest(
            name=name, volume_capabilities=[mount_capability(Mode.SINGLE_NODE_MULTI_WRITER)],
            parameters=cluster_parameters() if parameters is None else parameters)
        request.capacity_range.required_bytes = size
        return clients.controller.CreateVolume(request).volume

    def stage(volume):
        path = workdir / "staging" / volume.volume_id
        clients.node.NodeStageVolume(csi_pb2.NodeStageVolumeRequest(
            volume_id=volume.volume_id, staging_target_path=str(path),
            volume_capability=mount_capability(Mode.SINGLE_NODE_MULTI_WRITER), volume_context=volume.volume_context))
        staged.append((volume.volume_id, path))
        return path

    def publish(volume, name, readonly=False, staging=None):
        target = workdir / "pods" / name / "vineyard"
        clients.node.NodePublishVolume(csi_pb2.NodePublishVolumeRequest(
            volume_id=volume.volume_id, staging_target_path=str(staging or workdir / "staging" / volume.volume_id),
            target_path=str(target), readonly=readonly,
            volume_capability=mount_capability(Mode.SINGLE_NODE_MULTI_WRITER), volume_context=volume.volume_context))
        published.append((volume.volume_id, target))
        return target

    clients.create, clients.stage, clients.publish = create, stage, publish
    try:
        yield clients
    finally:
        for volume_id, target in reversed(published):
            try:
                clients.node.NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(volume_id=volume_id, target_path=str(target)))
            except grpc.RpcError:
                pass
        for volume_id, path in reversed(staged):
            try:
                clients.node.NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(volume_id=volume_id, staging_target_path=str(path)))
            except grpc.RpcError:
                pass
        channel.close()
        for point in sorted(mounts_under(workdir), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], check=False)


def test_node_capabilities_and_info(node, driver):
    caps = node.node.NodeGetCapabilities(csi_pb2.NodeGetCapabilitiesRequest())
    rpc = csi_pb2.NodeServiceCapability.RPC
    assert {c.rpc.type for c in caps.capabilities} >= {rpc.STAGE_UNSTAGE_VOLUME, rpc.GET_VOLUME_STATS, rpc.VOLUME_CONDITION}
    info = node.node.NodeGetInfo(csi_pb2.NodeGetInfoRequest())
    assert info.node_id == driver.node_id
    assert info.accessible_topology.segments["topology.csi.vineyard.v6d.io/node"] == driver.node_id
    assert info.accessible_topology.segments["kubernetes.io/hostname"] == driver.node_id


def test_write_through_one_target_read_through_another(node, workdir):
    volume = node.create("pvc-share")
    node.stage(volume)
    writer_target = node.publish(volume, "writer")
    reader_target = node.publish(volume, "reader")
    payload = os.urandom(5 * MiB + 123)
    # Another process writes, another process reads: plain file I/O through two pod paths.
    subprocess.run([sys.executable, "-c",
                    f"open({str(writer_target / 'x_train.bin')!r}, 'wb').write(bytes.fromhex({payload[:64].hex()!r}) * 1)"],
                   check=True)
    with open(writer_target / "data.bin", "wb") as handle:
        handle.write(payload)
    digest = subprocess.run(["sha256sum", str(reader_target / "data.bin")], capture_output=True, text=True, check=True)
    assert digest.stdout.split()[0] == hashlib.sha256(payload).hexdigest()
    assert sorted(os.listdir(reader_target)) == sorted(["data.bin", "x_train.bin", *ROOT_ENTRIES])


def test_read_only_target_rejects_writes(node):
    volume = node.create("pvc-ro")
    node.stage(volume)
    rw = node.publish(volume, "rw")
    (rw / "keep.txt").write_text("kept")
    ro = node.publish(volume, "ro", readonly=True)
    assert (ro / "keep.txt").read_text() == "kept"
    with pytest.raises(OSError) as failure:
        (ro / "new.txt").write_text("nope")
    assert failure.value.errno == errno.EROFS
    with pytest.raises(OSError) as failure:
        os.unlink(ro / "keep.txt")
    assert failure.value.errno == errno.EROFS


def test_volumes_are_isolated_even_in_one_store(node):
    a, b = node.create("pvc-a"), node.create("pvc-b")
    node.stage(a)
    node.stage(b)
    target_a, target_b = node.publish(a, "a"), node.publish(b, "b")
    (target_a / "only-in-a.txt").write_text("a")
    (target_b / "only-in-b.txt").write_text("b")
    assert sorted(os.listdir(target_a)) == sorted(["only-in-a.txt", *ROOT_ENTRIES])
    assert sorted(os.listdir(target_b)) == sorted(["only-in-b.txt", *ROOT_ENTRIES])


def test_quota_gives_enospc_and_keeps_other_files(node):
    volume = node.create("pvc-small", size=8 * MiB)
    node.stage(volume)
    target = node.publish(volume, "small")
    kept = os.urandom(3 * MiB)
    (target / "kept.bin").write_bytes(kept)
    with pytest.raises(OSError) as failure:
        with open(target / "too-big.bin", "wb") as handle:
            for _ in range(8):
                handle.write(os.urandom(MiB))
    assert failure.value.errno == errno.ENOSPC
    assert (target / "kept.bin").read_bytes() == kept


def test_volume_stats_and_condition(node):
    volume = node.create("pvc-stats", size=32 * MiB)
    staging = node.stage(volume)
    target = node.publish(volume, "stats")
    (target / "f.bin").write_bytes(b"x" * MiB)
    stats = node.node.NodeGetVolumeStats(csi_pb2.NodeGetVolumeStatsRequest(volume_id=volume.volume_id, volume_path=str(target)))
    usage = {u.unit: u for u in stats.usage}
    bytes_usage = usage[csi_pb2.VolumeUsage.BYTES]
    assert bytes_usage.total == 32 * MiB
    assert bytes_usage.used >= MiB
    assert bytes_usage.available == bytes_usage.total - bytes_usage.used
    assert usage[csi_pb2.VolumeUsage.INODES].used >= 1
    assert stats.volume_condition.abnormal is False
    expect_code(grpc.StatusCode.NOT_FOUND, node.node.NodeGetVolumeStats,
                csi_pb2.NodeGetVolumeStatsRequest(volume_id="vol-unknown", volume_path=str(target)))
    expect_code(grpc.StatusCode.NOT_FOUND, node.node.NodeGetVolumeStats,
                csi_pb2.NodeGetVolumeStatsRequest(volume_id=volume.volume_id, volume_path="/elsewhere"))
    statvfs = os.statvfs(staging)
    assert statvfs.f_blocks * statvfs.f_frsize == 32 * MiB


def test_node_errors(node, workdir):
    cap = mount_capability()
    stage = node.node.NodeStageVolume
    S = csi_pb2.NodeStageVolumeRequest
    assert "volume_id" in expect_code(grpc.StatusCode.INVALID_ARGUMENT, stage, S(staging_target_path=str(workdir / "s"), volume_capability=cap))
    assert "staging_target_path" in expect_code(grpc.StatusCode.INVALID_ARGUMENT, stage, S(volume_id="v", volume_capability=cap))
    assert "volume_capability" in expect_code(grpc.StatusCode.INVALID_ARGUMENT, stage, S(volume_id="v", staging_target_path=str(workdir / "s")))
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, stage, S(volume_id="../../etc", staging_target_path=str(workdir / "s"), volume_capability=cap))
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, stage, S(volume_id="v", staging_target_path="relative/path", volume_capability=cap))
    P = csi_pb2.NodePublishVolumeRequest
    publish = node.node.NodePublishVolume
    assert "target_path" in expect_code(grpc.StatusCode.INVALID_ARGUMENT, publish, P(volume_id="v", volume_capability=cap))
    # Publishing a volume that was never staged.
    expect_code(grpc.StatusCode.FAILED_PRECONDITION, publish, P(
        volume_id="vol-never", staging_target_path=str(workdir / "s"), target_path=str(workdir / "t"), volume_capability=cap))
    U = csi_pb2.NodeUnpublishVolumeRequest
    assert "target_path" in expect_code(grpc.StatusCode.INVALID_ARGUMENT, node.node.NodeUnpublishVolume, U(volume_id="v"))
    # Unpublishing what is not published succeeds (idempotent) and leaves no directory behind.
    (workdir / "t2").mkdir()
    node.node.NodeUnpublishVolume(U(volume_id="v", target_path=str(workdir / "t2")))
    assert not (workdir / "t2").exists()


def test_lifecycle_is_idempotent_and_cleans_up(node, workdir):
    volume = node.create("pvc-idem")
    staging = node.stage(volume)
    node.stage(volume)
    target = node.publish(volume, "idem")
    node.publish(volume, "idem")
    # The volume once, and its vineyard.sock (see test_vineyard_ipc.py) once.
    assert sorted(mounts_under(target)) == [str(target), str(target / "vineyard.sock")]
    # Same target, different readonly: incompatible.
    with pytest.raises(grpc.RpcError) as failure:
        node.publish(volume, "idem", readonly=True)
    assert failure.value.code() == grpc.StatusCode.ALREADY_EXISTS
    U = csi_pb2.NodeUnpublishVolumeRequest(volume_id=volume.volume_id, target_path=str(target))
    node.node.NodeUnpublishVolume(U)
    node.node.NodeUnpublishVolume(U)
    assert not target.exists()
    US = csi_pb2.NodeUnstageVolumeRequest(volume_id=volume.volume_id, staging_target_path=str(staging))
    node.node.NodeUnstageVolume(US)
    node.node.NodeUnstageVolume(US)
    assert mounts_under(workdir / "staging") == []


def test_killed_writer_leaves_no_half_file_visible_while_writing(node):
    volume = node.create("pvc-kill")
    node.stage(volume)
    target = node.publish(volume, "kill")
    script = (
        "import os, sys, time\n"
        f"f = open({str(target / 'partial.bin')!r}, 'wb')\n"
        "f.write(b'x' * (1 << 20)); f.flush()\n"
        "print('written', flush=True)\n"
        "time.sleep(60)\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "written"
        # While the writer holds the file open, other processes do not see a half-written object.
        other = subprocess.run([sys.executable, "-c", f"import os; print(os.path.exists({str(target / 'partial.bin')!r}) and os.path.getsize({str(target / 'partial.bin')!r}))"],
                               capture_output=True, text=True, check=True)
        assert other.stdout.strip() in ("False", "0", str(1 << 20))
    finally:
        writer.kill()
        writer.wait()
    # The kernel closes a killed writer's file: what it wrote is what the file holds.
    time.sleep(0.2)
    assert not (target / "partial.bin").exists() or (target / "partial.bin").stat().st_size in (0, 1 << 20)


def test_restart_of_driver_with_volume_published(workdir):
    driver = Driver(workdir).start()
    published = []
    try:
        with driver.channel() as channel:
            clients = Clients(channel)
            request = csi_pb2.CreateVolumeRequest(name="pvc-restart", volume_capabilities=[mount_capability()],
                                                  parameters=cluster_parameters())
            volume = clients.controller.CreateVolume(request).volume
            staging, target = workdir / "staging" / "v", workdir / "pods" / "p" / "vineyard"
            stage_and_publish(clients, volume, staging, target)
            published.append(target)
            payload = os.urandom(2 * MiB)
            (target / "before.bin").write_bytes(payload)
        driver.stop(signal.SIGKILL)
        driver.start()
        # The restarted plugin re-established the session and re-bound the target.
        assert (target / "before.bin").read_bytes() == payload
        (target / "after.txt").write_text("new pods work")
        assert (staging / "after.txt").read_text() == "new pods work"
        with driver.channel() as channel:
            clients = Clients(channel)
            unpublish_and_unstage(clients, volume, staging, target)
    finally:
        driver.stop(signal.SIGKILL)
        for point in sorted(mounts_under(workdir), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], check=False)


def test_pandas_and_numpy_round_trips(node):
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    volume = node.create("pvc-ml", size=256 * MiB)
    node.stage(volume)
    prepare, train = node.publish(volume, "prepare"), node.publish(volume, "train")
    frame = pd.DataFrame({"a": np.arange(100_000), "b": np.random.rand(100_000), "c": ["x"] * 100_000})
    frame.to_pickle(prepare / "x_train.pkl")
    array = np.random.rand(1000, 250)
    np.save(prepare / "y.npy", array)
    pd.testing.assert_frame_equal(pd.read_pickle(train / "x_train.pkl"), frame)
    np.testing.assert_array_equal(np.load(train / "y.npy"), array)
    mapped = np.load(train / "y.npy", mmap_mode="r")
    np.testing.assert_array_equal(mapped, array)
    memmap = np.memmap(train / "y.npy", dtype=np.uint8, mode="r")
    assert memmap.size == os.path.getsize(prepare / "y.npy")


def test_mount_flags_apply_to_the_pod_mount(node, workdir):
    volume = node.create("pvc-flags")
    staging = node.stage(volume)
    target = workdir / "pods" / "flags" / "vineyard"
    capability = mount_capability(Mode.SINGLE_NODE_MULTI_WRITER)
    capability.mount.mount_flags.extend(["noexec", "nosuid"])
    request = csi_pb2.NodePublishVolumeRequest(
        volume_id=volume.volume_id, staging_target_path=str(staging), target_path=str(target),
        volume_capability=capability, volume_context=volume.volume_context)
    node.node.NodePublishVolume(request)
    try:
        with open("/proc/self/mountinfo") as table:
            options = next(line.split()[5] for line in table if line.split()[4] == str(target))
        assert "noexec" in options.split(",") and "nosuid" in options.split(",")
    finally:
        node.node.NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(volume_id=volume.volume_id, target_path=str(target)))
    request.volume_capability.mount.mount_flags[:] = ["discard"]
    details = expect_code(grpc.StatusCode.INVALID_ARGUMENT, node.node.NodePublishVolume, request)
    assert "discard" in details
