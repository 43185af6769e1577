"""The node-local deployment (`--node-deployment`), as deploy/ runs it on every node.

In a cluster, csi-provisioner and csi-snapshotter run beside each node plugin with
`--node-deployment`, csi-resizer (leader-elected) finds no ControllerExpandVolume and only
updates the PV, and kubelet then calls NodeExpandVolume on the volume's node. No kubelet or
sidecar runs here: this test makes the calls they make, in their order, over the real socket,
against real mounts (the one mock is the caller).
"""

import errno
import os
import signal

import grpc
import pytest

from conftest import Clients, Driver, cluster_parameters, csi_pb2, expect_code, mount_capability

MiB = 1 << 20
Code = grpc.StatusCode
Mode = csi_pb2.VolumeCapability.AccessMode
TOPOLOGY_KEY = "topology.csi.vineyard.v6d.io/node"

pytestmark = pytest.mark.skipif(
    not os.path.exists("/dev/fuse") or os.geteuid() != 0, reason="needs /dev/fuse and root to mount")


@pytest.fixture
def local(workdir):
    """A driver in --mode all --node-deployment on node-a, with tracked stage/publish."""
    driver = Driver(workdir, node_id="node-a", extra_args=["--mode", "all", "--node-deployment"]).start()
    channel = driver.channel()
    clients = Clients(channel)
    clients.driver = driver
    mounted = []

    def create(name, size, node=None):
        request = csi_pb2.CreateVolumeRequest(
            name=name, volume_capabilities=[mount_capability(Mode.SINGLE_NODE_MULTI_WRITER)],
            parameters=cluster_parameters())
        request.capacity_range.required_bytes = size
        if node:
            request.accessibility_requirements.preferred.add().segments[TOPOLOGY_KEY] = node
            request.accessibility_requirements.requisite.add().segments[TOPOLOGY_KEY] = node
        return clients.controller.CreateVolume(request).volume

    def mount(volume, pod):
        staging, target = workdir / "staging" / volume.volume_id, workdir / "pods" / pod / "vineyard"
        capability = mount_capability(Mode.SINGLE_NODE_MULTI_WRITER)
        clients.node.NodeStageVolume(csi_pb2.NodeStageVolumeRequest(
            volume_id=volume.volume_id, staging_target_path=str(staging), volume_capability=capability,
            volume_context=volume.volume_context))
        mounted.append((volume.volume_id, staging, None))
        clients.node.NodePublishVolume(csi_pb2.NodePublishVolumeRequest(
            volume_id=volume.volume_id, staging_target_path=str(staging), target_path=str(target),
            volume_capability=capability, volume_context=volume.volume_context))
        mounted.append((volume.volume_id, staging, target))
        return target

    clients.create, clients.mount = create, mount
    try:
        yield clients
    finally:
        for volume_id, staging, target in reversed(mounted):
            try:
                if target is None:
                    clients.node.NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(
                        volume_id=volume_id, staging_target_path=str(staging)))
                else:
                    clients.node.NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(
                        volume_id=volume_id, target_path=str(target)))
            except grpc.RpcError:
                pass
        channel.close()
        driver.stop(signal.SIGKILL)


def test_node_deployment_needs_mode_all(workdir):
    driver = Driver(workdir, extra_args=["--mode", "node", "--node-deployment"]).start(expect_ready=False)
    assert driver.process.wait(timeout=30) != 0
    driver.stop()
    assert "--node-deployment needs --mode all" in driver.read_log()


def test_capabilities_leave_expansion_to_the_node(local):
    controller = {c.rpc.type for c in local.controller.ControllerGetCapabilities(
        csi_pb2.ControllerGetCapabilitiesRequest()).capabilities}
    rpc = csi_pb2.ControllerServiceCapability.RPC
    # csi-resizer sees no EXPAND_VOLUME and takes its node-only path; snapshots stay.
    assert rpc.EXPAND_VOLUME not in controller
    assert {rpc.CREATE_DELETE_VOLUME, rpc.CREATE_DELETE_SNAPSHOT, rpc.LIST_SNAPSHOTS, rpc.CLONE_VOLUME} <= controller
    node_caps = {c.rpc.type for c in local.node.NodeGetCapabilities(csi_pb2.NodeGetCapabilitiesRequest()).capabilities}
    assert csi_pb2.NodeServiceCapability.RPC.EXPAND_VOLUME in node_caps
    plugin = local.identity.GetPluginCapabilities(csi_pb2.GetPluginCapabilitiesRequest())
    assert [c.volume_expansion.type for c in plugin.capabilities if c.HasField("volume_expansion")] == [
        csi_pb2.PluginCapability.VolumeExpansion.ONLINE]


def test_volumes_are_placed_on_this_node_only(local):
    here = local.create("pvc-here", 16 * MiB, node="node-a")
    assert [dict(t.segments) for t in here.accessible_topology] == [{TOPOLOGY_KEY: "node-a"}]
    unconstrained = local.create("pvc-anywhere", 16 * MiB)
    assert [dict(t.segments) for t in unconstrained.accessible_topology] == [{TOPOLOGY_KEY: "node-a"}]
    details = expect_code(Code.RESOURCE_EXHAUSTED, local.create, "pvc-elsewhere", 16 * MiB, node="node-b")
    assert "node-a" in details
    listed = {entry.volume.volume_id for entry in local.controller.ListVolumes(csi_pb2.ListVolumesRequest()).entries}
    assert listed == {here.volume_id, unconstrained.volume_id}  # the refused request left nothing behind


def test_expansion_through_node_expand_volume_updates_quota_and_records(local, workdir):
    volume = local.create("pvc-grow", 64 * MiB, node="node-a")
    target = local.mount(volume, "grow")
    (target / "kept.bin").write_bytes(b"k" * (40 * MiB))
    with pytest.raises(OSError) as full:
        (target / "big.bin").write_bytes(b"x" * (40 * MiB))
    assert full.value.errno == errno.ENOSPC

    # kubelet, after csi-resizer's node-only path raised the PV to 128 MiB.
    request = csi_pb2.NodeExpandVolumeRequest(volume_id=volume.volume_id, volume_path=str(target))
    request.capacity_range.required_bytes = 128 * MiB
    assert local.node.NodeExpandVolume(request).capacity_bytes == 128 * MiB
    stats = os.statvfs(target)
    assert stats.f_blocks * stats.f_frsize == 128 * MiB
    (target / "big.bin").write_bytes(b"x" * (40 * MiB))
    assert (target / "kept.bin").read_bytes() == b"k" * (40 * MiB)
    got = local.controller.ControllerGetVolume(csi_pb2.ControllerGetVolumeRequest(volume_id=volume.volume_id))
    assert got.volume.capacity_bytes == 128 * MiB

    # More than the store holds (the fixture's store is 8 GiB): refused, nothing changes.
    request.capacity_range.required_bytes = 9 << 30
    expect_code(Code.OUT_OF_RANGE, local.node.NodeExpandVolume, request)
    stats = os.statvfs(target)
    assert stats.f_blocks * stats.f_frsize == 128 * MiB
    got = local.controller.ControllerGetVolume(csi_pb2.ControllerGetVolumeRequest(volume_id=volume.volume_id))
    assert got.volume.capacity_bytes == 128 * MiB

    # The new capacity is durable: a restarted plugin reports and enforces it.
    local.driver.stop(signal.SIGTERM)
    local.driver.start()
    with local.driver.channel() as channel:
        again = Clients(channel)
        got = again.controller.ControllerGetVolume(csi_pb2.ControllerGetVolumeRequest(volume_id=volume.volume_id))
        assert got.volume.capacity_bytes == 128 * MiB
        stats = os.statvfs(target)
        assert stats.f_blocks * stats.f_frsize == 128 * MiB
        assert (target / "big.bin").stat().st_size == 40 * MiB


def test_snapshot_and_restore_on_the_node(local):
    source = local.create("pvc-run-1", 32 * MiB, node="node-a")
    target = local.mount(source, "run-1")
    (target / "x_train.pkl").write_bytes(b"frame-v1")
    snap = local.controller.CreateSnapshot(
        csi_pb2.CreateSnapshotRequest(name="snapshot-run-1", source_volume_id=source.volume_id)).snapshot
    assert snap.ready_to_use
    (target / "x_train.pkl").write_bytes(b"frame-v2")

    request = csi_pb2.CreateVolumeRequest(
        name="pvc-run-2", volume_capabilities=[mount_capability(Mode.SINGLE_NODE_MULTI_WRITER)],
        parameters=cluster_parameters())
    request.capacity_range.required_bytes = 32 * MiB
    request.volume_content_source.snapshot.snapshot_id = snap.snapshot_id
    request.accessibility_requirements.preferred.add().segments[TOPOLOGY_KEY] = "node-a"
    restored = local.controller.CreateVolume(request).volume
    view = local.mount(restored, "run-2")
    assert (view / "x_train.pkl").read_bytes() == b"frame-v1"
    assert (target / "x_train.pkl").read_bytes() == b"frame-v2"
