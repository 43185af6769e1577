"""Snapshots, clones and expansion through the real socket and real mounts.

Snapshots and clones share the source's sealed objects. Their memory cost is read off the
store itself: statfs of a probe mount of the same store without a quota reports the store's
free bytes.
"""

import errno
import os
import signal
import subprocess

import grpc
import pytest

from conftest import (
    Clients, Driver, cluster_parameters, csi_pb2, expect_code, mount_capability, stage_and_publish,
    unpublish_and_unstage)
from test_node import mounts_under, node  # noqa: F401  (the fixture)

MiB = 1 << 20
GiB = 1 << 30
Code = grpc.StatusCode
Mode = csi_pb2.VolumeCapability.AccessMode

pytestmark = pytest.mark.skipif(
    not os.path.exists("/dev/fuse") or os.geteuid() != 0, reason="needs /dev/fuse and root to mount")


def snapshot(clients, volume, name):
    return clients.controller.CreateSnapshot(
        csi_pb2.CreateSnapshotRequest(name=name, source_volume_id=volume.volume_id)).snapshot


def create_from(clients, name, size, snapshot_id=None, volume_id=None):
    request = csi_pb2.CreateVolumeRequest(
        name=name, volume_capabilities=[mount_capability(Mode.SINGLE_NODE_MULTI_WRITER)],
        parameters=cluster_parameters())
    request.capacity_range.required_bytes = size
    if snapshot_id:
        request.volume_content_source.snapshot.snapshot_id = snapshot_id
    else:
        request.volume_content_source.volume.volume_id = volume_id
    return clients.controller.CreateVolume(request).volume


def test_capabilities_advertise_snapshots_clones_and_expansion(node):
    controller = {c.rpc.type for c in node.controller.ControllerGetCapabilities(
        csi_pb2.ControllerGetCapabilitiesRequest()).capabilities}
    rpc = csi_pb2.ControllerServiceCapability.RPC
    assert {rpc.CREATE_DELETE_SNAPSHOT, rpc.LIST_SNAPSHOTS, rpc.CLONE_VOLUME, rpc.EXPAND_VOLUME} <= controller
    assert rpc.GET_SNAPSHOT not in controller  # served, not advertised: see ControllerService
    node_caps = {c.rpc.type for c in node.node.NodeGetCapabilities(csi_pb2.NodeGetCapabilitiesRequest()).capabilities}
    assert csi_pb2.NodeServiceCapability.RPC.EXPAND_VOLUME in node_caps


def test_restored_snapshot_shows_the_old_bytes(node):
    source = node.create("pvc-source", 64 * MiB)
    node.stage(source)
    target = node.publish(source, "writer")
    old = os.urandom(3 * MiB + 17)
    (target / "model.bin").write_bytes(old)
    (target / "runs" / "1").mkdir(parents=True)
    (target / "runs" / "1" / "metrics.txt").write_text("loss=0.5\n")

    snap = snapshot(node, source, "snap-of-run-1")
    assert snap.ready_to_use and snap.source_volume_id == source.volume_id
    assert snap.size_bytes >= len(old)
    assert snap.creation_time.seconds > 0

    # Change the source after the snapshot: overwrite, remove, add.
    (target / "model.bin").write_bytes(b"retrained")
    (target / "runs" / "1" / "metrics.txt").unlink()
    (target / "later.txt").write_text("after the snapshot")

    restored = create_from(node, "pvc-restored", 64 * MiB, snapshot_id=snap.snapshot_id)
    assert restored.content_source.snapshot.snapshot_id == snap.snapshot_id
    node.stage(restored)
    view = node.publish(restored, "reader")
    assert (view / "model.bin").read_bytes() == old
    assert (view / "runs" / "1" / "metrics.txt").read_text() == "loss=0.5\n"
    assert not (view / "later.txt").exists()
    # The source kept its own changes.
    assert (target / "model.bin").read_bytes() == b"retrained"
    assert (target / "later.txt").exists()

    # Writing in the restored volume never reaches the snapshot: restore it again.
    (view / "model.bin").write_bytes(b"changed in the restored volume")
    again = create_from(node, "pvc-restored-again", 64 * MiB, snapshot_id=snap.snapshot_id)
    node.stage(again)
    assert (node.publish(again, "reader-2") / "model.bin").read_bytes() == old


def test_clone_and_source_are_independent(node):
    source = node.create("pvc-clone-source", 64 * MiB)
    node.stage(source)
    target = node.publish(source, "source")
    (target / "data.bin").write_bytes(b"a" * MiB)

    clone = create_from(node, "pvc-clone", 64 * MiB, volume_id=source.volume_id)
    assert clone.content_source.volume.volume_id == source.volume_id
    node.stage(clone)
    view = node.publish(clone, "clone")
    assert (view / "data.bin").read_bytes() == b"a" * MiB

    (view / "data.bin").write_bytes(b"clone")
    (view / "only-in-clone").write_text("x")
    assert (target / "data.bin").read_bytes() == b"a" * MiB
    assert not (target / "only-in-clone").exists()
    (target / "data.bin").write_bytes(b"source")
    assert (view / "data.bin").read_bytes() == b"clone"


def store_available(node, workdir):
    """Bytes the cluster's store has free, read through a real mount: a probe volume of the same
    store staged without a quota reports the store's own free space in statfs."""
    probe = workdir / "staging" / "store-probe"
    if not os.path.ismount(probe):
        context = {k: v for k, v in cluster_parameters().items()}  # no capacity: no quota
        node.node.NodeStageVolume(csi_pb2.NodeStageVolumeRequest(
            volume_id="vol-" + "e" * 32, staging_target_path=str(probe),
            volume_capability=mount_capability(Mode.SINGLE_NODE_MULTI_WRITER), volume_context=context))
    stats = os.statvfs(probe)
    return stats.f_bavail * stats.f_frsize


def test_snapshot_and_clone_of_a_gibibyte_take_no_memory(node, workdir):
    source = node.create("pvc-big", 2 * GiB)
    node.stage(source)
    target = node.publish(source, "big")
    chunk = os.urandom(64 * MiB)
    with open(target / "big.bin", "wb") as handle:
        for _ in range(16):
            handle.write(chunk)
    before = store_available(node, workdir)

    snap = snapshot(node, source, "snap-big")
    clone = create_from(node, "pvc-big-clone", 2 * GiB, volume_id=source.volume_id)
    create_from(node, "pvc-big-restored", 2 * GiB, snapshot_id=snap.snapshot_id)
    assert before - store_available(node, workdir) < MiB, "a snapshot or clone copied bytes"

    node.stage(clone)
    view = node.publish(clone, "big-clone")
    assert os.path.getsize(view / "big.bin") == GiB
    # Replacing the source's file leaves the shared object to the snapshot and the clones.
    (target / "big.bin").write_bytes(b"small now")
    with open(view / "big.bin", "rb") as handle:
        handle.seek(15 * 64 * MiB)
        assert handle.read() == chunk
    assert before - store_available(node, workdir) < MiB


def test_deleting_the_last_user_frees_the_memory(node, workdir):
    source = node.create("pvc-free", 512 * MiB)
    node.stage(source)
    target = node.publish(source, "free")
    (target / "blob.bin").write_bytes(os.urandom(256 * MiB))
    snap = snapshot(node, source, "snap-free")
    held = store_available(node, workdir)
    # Replaced in the source, the old object lives on in the snapshot.
    (target / "blob.bin").write_bytes(b"new")
    assert abs(store_available(node, workdir) - held) < MiB
    # Deleting the snapshot drops the object's last name: its memory is free again.
    node.controller.DeleteSnapshot(csi_pb2.DeleteSnapshotRequest(snapshot_id=snap.snapshot_id))
    assert store_available(node, workdir) - held >= 256 * MiB - MiB


def test_expansion_is_visible_in_statfs_and_lifts_the_quota(node):
    volume = node.create("pvc-grow", 64 * MiB)
    node.stage(volume)
    target = node.publish(volume, "grow")
    stats = os.statvfs(target)
    assert stats.f_blocks * stats.f_frsize == 64 * MiB
    with pytest.raises(OSError) as full:
        (target / "big.bin").write_bytes(b"x" * (96 * MiB))
    assert full.value.errno == errno.ENOSPC

    request = csi_pb2.ControllerExpandVolumeRequest(volume_id=volume.volume_id)
    request.capacity_range.required_bytes = 128 * MiB
    expanded = node.controller.ControllerExpandVolume(request)
    assert expanded.capacity_bytes == 128 * MiB and expanded.node_expansion_required
    node_request = csi_pb2.NodeExpandVolumeRequest(volume_id=volume.volume_id, volume_path=str(target))
    node_request.capacity_range.required_bytes = 128 * MiB
    assert node.node.NodeExpandVolume(node_request).capacity_bytes == 128 * MiB

    stats = os.statvfs(target)
    assert stats.f_blocks * stats.f_frsize == 128 * MiB
    (target / "big.bin").write_bytes(b"x" * (96 * MiB))
    assert os.path.getsize(target / "big.bin") == 96 * MiB
    got = node.controller.ControllerGetVolume(csi_pb2.ControllerGetVolumeRequest(volume_id=volume.volume_id))
    assert got.volume.capacity_bytes == 128 * MiB
    assert not got.status.volume_condition.abnormal

    # Asking for less than the volume has changes nothing.
    request.capacity_range.required_bytes = 32 * MiB
    assert node.controller.ControllerExpandVolume(request).capacity_bytes == 128 * MiB


def test_snapshot_errors_filters_and_idempotency(node):
    one = node.create("pvc-one", 16 * MiB)
    two = node.create("pvc-two", 16 * MiB)
    controller = node.controller
    expect_code(Code.INVALID_ARGUMENT, controller.CreateSnapshot, csi_pb2.CreateSnapshotRequest(source_volume_id=one.volume_id))
    expect_code(Code.INVALID_ARGUMENT, controller.CreateSnapshot, csi_pb2.CreateSnapshotRequest(name="s"))
    expect_code(Code.NOT_FOUND, controller.CreateSnapshot,
                csi_pb2.CreateSnapshotRequest(name="s", source_volume_id="vol-" + "0" * 32))
    first = snapshot(node, one, "s1")
    assert snapshot(node, one, "s1").snapshot_id == first.snapshot_id  # idempotent
    details = expect_code(Code.ALREADY_EXISTS, controller.CreateSnapshot,
                          csi_pb2.CreateSnapshotRequest(name="s1", source_volume_id=two.volume_id))
    assert one.volume_id in details
    second = snapshot(node, two, "s2")
    third = snapshot(node, one, "s3")

    listed = controller.ListSnapshots(csi_pb2.ListSnapshotsRequest()).entries
    assert {e.snapshot.snapshot_id for e in listed} == {first.snapshot_id, second.snapshot_id, third.snapshot_id}
    by_source = controller.ListSnapshots(csi_pb2.ListSnapshotsRequest(source_volume_id=one.volume_id)).entries
    assert {e.snapshot.snapshot_id for e in by_source} == {first.snapshot_id, third.snapshot_id}
    by_id = controller.ListSnapshots(csi_pb2.ListSnapshotsRequest(snapshot_id=second.snapshot_id)).entries
    assert [e.snapshot.snapshot_id for e in by_id] == [second.snapshot_id]
    assert not controller.ListSnapshots(csi_pb2.ListSnapshotsRequest(snapshot_id="snap-" + "f" * 32)).entries
    seen, token = [], ""
    while True:
        page = controller.ListSnapshots(csi_pb2.ListSnapshotsRequest(max_entries=2, starting_token=token))
        assert len(page.entries) <= 2
        seen += [e.snapshot.snapshot_id for e in page.entries]
        token = page.next_token
        if not token:
            break
    assert sorted(seen) == sorted([first.snapshot_id, second.snapshot_id, third.snapshot_id])
    expect_code(Code.ABORTED, controller.ListSnapshots, csi_pb2.ListSnapshotsRequest(starting_token="bogus"))

    expect_code(Code.NOT_FOUND, create_from, node, "pvc-x", 16 * MiB, snapshot_id="snap-" + "0" * 32)
    expect_code(Code.NOT_FOUND, create_from, node, "pvc-y", 16 * MiB, volume_id="vol-" + "0" * 32)
    restored = create_from(node, "pvc-z", 16 * MiB, snapshot_id=first.snapshot_id)
    assert create_from(node, "pvc-z", 16 * MiB, snapshot_id=first.snapshot_id).volume_id == restored.volume_id
    expect_code(Code.ALREADY_EXISTS, create_from, node, "pvc-z", 16 * MiB, snapshot_id=second.snapshot_id)

    expect_code(Code.INVALID_ARGUMENT, controller.DeleteSnapshot, csi_pb2.DeleteSnapshotRequest())
    controller.DeleteSnapshot(csi_pb2.DeleteSnapshotRequest(snapshot_id=first.snapshot_id))
    controller.DeleteSnapshot(csi_pb2.DeleteSnapshotRequest(snapshot_id=first.snapshot_id))  # idempotent
    assert first.snapshot_id not in {e.snapshot.snapshot_id for e in controller.ListSnapshots(
        csi_pb2.ListSnapshotsRequest()).entries}
    expect_code(Code.INVALID_ARGUMENT, controller.ControllerExpandVolume,
                csi_pb2.ControllerExpandVolumeRequest(volume_id=one.volume_id))
    grow = csi_pb2.ControllerExpandVolumeRequest(volume_id="vol-" + "0" * 32)
    grow.capacity_range.required_bytes = MiB
    expect_code(Code.NOT_FOUND, controller.ControllerExpandVolume, grow)
    expect_code(Code.NOT_FOUND, node.node.NodeExpandVolume,
                csi_pb2.NodeExpandVolumeRequest(volume_id=one.volume_id, volume_path="/nowhere"))


def test_snapshots_survive_a_restart(workdir):
    driver = Driver(workdir).start()
    try:
        with driver.channel() as channel:
            clients = Clients(channel)
            request = csi_pb2.CreateVolumeRequest(name="pvc-keep", volume_capabilities=[mount_capability()],
                                                  parameters=cluster_parameters())
            request.capacity_range.required_bytes = 16 * MiB
            volume = clients.controller.CreateVolume(request).volume
            staging, target = workdir / "staging" / "keep", workdir / "pods" / "keep" / "vineyard"
            stage_and_publish(clients, volume, staging, target)
            (target / "kept.txt").write_text("from before the restart")
            snap = snapshot(clients, volume, "snap-keep")
            unpublish_and_unstage(clients, volume, staging, target)
            clients.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id))
        driver.stop(signal.SIGKILL)
        driver.start()
        with driver.channel() as channel:
            clients = Clients(channel)
            listed = clients.controller.ListSnapshots(csi_pb2.ListSnapshotsRequest(snapshot_id=snap.snapshot_id)).entries
            assert [e.snapshot.source_volume_id for e in listed] == [volume.volume_id]
            restored = create_from(clients, "pvc-after-restart", 16 * MiB, snapshot_id=snap.snapshot_id)
            staging, target = workdir / "staging" / "after", workdir / "pods" / "after" / "vineyard"
            stage_and_publish(clients, restored, staging, target)
            assert (target / "kept.txt").read_text() == "from before the restart"
            unpublish_and_unstage(clients, restored, staging, target)
    finally:
        driver.stop(signal.SIGKILL)
        for point in sorted(mounts_under(workdir), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], check=False)


def test_objects_put_through_the_socket_are_kept_by_snapshots(node):
    vineyard = pytest.importorskip("vineyard")
    np = pytest.importorskip("numpy")
    source = node.create("pvc-socket", 64 * MiB)
    node.stage(source)
    target = node.publish(source, "socket")
    client = vineyard.connect(str(target / "vineyard.sock"))
    try:
        array = np.arange(100_000, dtype=np.float64)
        object_id = client.put(array, persist=True, name="features")
        snap = snapshot(node, source, "snap-socket")
        client.delete(object_id, force=True)
        client.drop_name("features")
        assert not (target / "features.npy").exists() and not (target / "features").exists()
    finally:
        client.close()
    restored = create_from(node, "pvc-socket-restored", 64 * MiB, snapshot_id=snap.snapshot_id)
    node.stage(restored)
    view = node.publish(restored, "socket-restored")
    files = [p for p in os.listdir(view) if p.startswith("features")]
    assert files, os.listdir(view)
    assert np.array_equal(np.load(view / files[0]), array)
    reader = vineyard.connect(str(view / "vineyard.sock"))
    try:
        assert np.array_equal(reader.get(name="features"), array)
    finally:
        reader.close()


def test_get_snapshot_returns_one_snapshot_until_it_is_deleted(node):
    volume = node.create("pvc-get", 16 * MiB)
    target = node.publish(volume, "get", staging=node.stage(volume))
    (target / "a.bin").write_bytes(b"a" * 1000)
    snap = snapshot(node, volume, "snap-get")
    got = node.controller.GetSnapshot(csi_pb2.GetSnapshotRequest(snapshot_id=snap.snapshot_id)).snapshot
    assert got == snap
    expect_code(Code.INVALID_ARGUMENT, node.controller.GetSnapshot, csi_pb2.GetSnapshotRequest())
    expect_code(Code.NOT_FOUND, node.controller.GetSnapshot, csi_pb2.GetSnapshotRequest(snapshot_id="snap-" + "0" * 32))
    node.controller.DeleteSnapshot(csi_pb2.DeleteSnapshotRequest(snapshot_id=snap.snapshot_id))
    expect_code(Code.NOT_FOUND, node.controller.GetSnapshot, csi_pb2.GetSnapshotRequest(snapshot_id=snap.snapshot_id))
